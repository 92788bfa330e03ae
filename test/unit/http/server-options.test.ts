import { httpServerOptions } from '../../../dataplane/http/server-options';
import { MAX_TIMER_DELAY_MS } from '../../../dataplane/time/timer';

const base = { readTimeoutMs: 10_000, readHeaderTimeoutMs: 10_000, idleTimeoutMs: 300_000, maxHeaderBytes: 1 << 20 };

describe('httpServerOptions', () => {
  it('keeps the header timeout within the request timeout, as Node requires', () => {
    const opts = httpServerOptions({ ...base, readTimeoutMs: 5_000 });
    expect(opts).toMatchObject({ requestTimeout: 5_000, headersTimeout: 5_000 });
  });

  it('bounds the headers by the request timeout when only the latter is set', () => {
    expect(httpServerOptions({ ...base, readHeaderTimeoutMs: 0 })).toMatchObject({ requestTimeout: 10_000, headersTimeout: 10_000 });
  });

  it('checks deadlines at a tenth of the shortest, within [250 ms, 30 s]', () => {
    expect(httpServerOptions(base).connectionsCheckingInterval).toBe(1_000);
    expect(httpServerOptions({ ...base, readTimeoutMs: 300, readHeaderTimeoutMs: 300 }).connectionsCheckingInterval).toBe(250);
    expect(httpServerOptions({ ...base, readTimeoutMs: 0, readHeaderTimeoutMs: 0 }).connectionsCheckingInterval).toBe(30_000);
  });

  it('clamps durations past what a Node timer holds', () => {
    const opts = httpServerOptions({ ...base, readTimeoutMs: 0, readHeaderTimeoutMs: 0, idleTimeoutMs: 40 * 24 * 3600 * 1000 });
    expect(opts.keepAliveTimeout).toBe(MAX_TIMER_DELAY_MS);
    expect(opts).toMatchObject({ requestTimeout: 0, headersTimeout: 0 });
  });
});
