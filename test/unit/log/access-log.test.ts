import { PassThrough } from 'node:stream';
import {
  REDACTED,
  canonicalHeaderKey,
  createAccessLogger,
  formatGoDuration,
  type AccessLogConfig,
  type AccessLogRecord,
} from '../../../dataplane/log/access-log';
import { createLogger, type LogLevel } from '../../../dataplane/log/logger';

interface Line {
  level: string;
  message: string;
  endpointId?: string;
  request: {
    proto: string;
    method: string;
    host: string;
    path: string;
    request_headers: Record<string, string[]>;
    response_headers: Record<string, string[]>;
    status: number;
    duration: string;
  };
}

function config(overrides: Partial<AccessLogConfig> = {}): AccessLogConfig {
  return {
    level: 'info',
    disable: false,
    requestHeaders: { allowList: [], blockList: [] },
    responseHeaders: { allowList: [], blockList: [] },
    ...overrides,
  };
}

function record(overrides: Partial<AccessLogRecord> = {}): AccessLogRecord {
  return {
    method: 'GET',
    host: 'my-endpoint.example.com',
    path: '/foo',
    proto: 'HTTP/1.1',
    status: 200,
    durationMs: 1.234,
    requestHeaders: { 'user-agent': 'curl/8', accept: '*/*' },
    responseHeaders: { 'content-type': 'text/plain', 'content-length': 2 },
    ...overrides,
  };
}

/**
 * Logs through a real winston logger into memory; winston writes on its own
 * schedule, so lines are read once the logger has flushed and ended.
 */
async function capture(cfg: AccessLogConfig, records: AccessLogRecord[], loggerLevel: LogLevel = 'debug'): Promise<Line[]> {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const logger = createLogger({ level: loggerLevel, stream });
  const access = createAccessLogger(logger.child({ subsystem: 'proxy.access' }), cfg);
  for (const r of records) access.log(r);
  await new Promise<void>((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
  });
  return Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
}

describe('createAccessLogger', () => {
  it("writes Piko's request record", async () => {
    const [line, ...rest] = await capture(config(), [record({ endpointId: 'my-endpoint' })]);
    expect(rest).toHaveLength(0);
    expect(line).toMatchObject({
      level: 'info',
      message: 'request',
      subsystem: 'proxy.access',
      endpointId: 'my-endpoint',
      request: {
        proto: 'HTTP/1.1',
        method: 'GET',
        host: 'my-endpoint.example.com',
        path: '/foo',
        request_headers: { 'User-Agent': ['curl/8'], Accept: ['*/*'] },
        response_headers: { 'Content-Type': ['text/plain'], 'Content-Length': ['2'] },
        status: 200,
        duration: '1.234ms',
      },
    });
    expect(Object.keys(line!.request).sort()).toEqual(
      ['duration', 'host', 'method', 'path', 'proto', 'request_headers', 'response_headers', 'status'].sort(),
    );
  });

  it('logs at the configured level', async () => {
    const [line] = await capture(config({ level: 'debug' }), [record()]);
    expect(line!.level).toBe('debug');
  });

  it('raises 5xx records to warn', async () => {
    const lines = await capture(config({ level: 'debug' }), [record({ status: 502 }), record({ status: 499 })]);
    expect(lines.map((l) => [l.request.status, l.level])).toEqual([
      [502, 'warn'],
      [499, 'debug'],
    ]);
  });

  it('keeps error level for 5xx when configured above warn', async () => {
    const [line] = await capture(config({ level: 'error' }), [record({ status: 504 })]);
    expect(line!.level).toBe('error');
  });

  it('is dropped by the process log level like any other record', async () => {
    const lines = await capture(config({ level: 'debug' }), [record()], 'info');
    expect(lines).toEqual([]);
  });

  it('logs nothing when disabled, even 5xx', async () => {
    const lines = await capture(config({ disable: true }), [record(), record({ status: 500 })]);
    expect(lines).toEqual([]);
  });

  it('skips /_piko paths', async () => {
    const lines = await capture(config(), [record({ path: '/_piko/v1/upstream/foo' }), record({ path: '/_pikox' })]);
    expect(lines).toEqual([]);
  });

  it('drops the query string from the path', async () => {
    const [line] = await capture(config(), [record({ path: '/search?q=secret' })]);
    expect(line!.request.path).toBe('/search');
  });

  it('always redacts authorization headers', async () => {
    const [line] = await capture(config({ requestHeaders: { allowList: ['Authorization', 'x-piko-authorization'], blockList: [] } }), [
      record({
        requestHeaders: {
          authorization: 'Bearer secret-1',
          'x-piko-authorization': 'Bearer secret-2',
          'user-agent': 'curl/8',
        },
      }),
    ]);
    expect(line!.request.request_headers).toEqual({
      Authorization: [REDACTED],
      'X-Piko-Authorization': [REDACTED],
    });
    expect(JSON.stringify(line)).not.toContain('secret');
  });

  it('redacts authorization headers without any list configured', async () => {
    const [line] = await capture(config(), [
      record({ requestHeaders: { authorization: 'Bearer secret-1', 'proxy-authorization': 'Basic secret-3' } }),
    ]);
    expect(JSON.stringify(line)).not.toContain('secret');
    expect(line!.request.request_headers['Authorization']).toEqual([REDACTED]);
  });

  it('redacts cookies both ways, since a session cookie is a credential', async () => {
    const [line] = await capture(config(), [
      record({ requestHeaders: { cookie: 'session=secret-4' }, responseHeaders: { 'set-cookie': ['session=secret-5', 'b=secret-6'] } }),
    ]);
    expect(JSON.stringify(line)).not.toContain('secret');
    expect(line!.request.request_headers['Cookie']).toEqual([REDACTED]);
    expect(line!.request.response_headers['Set-Cookie']).toEqual([REDACTED, REDACTED]);
  });

  it('keeps only allow-listed headers, matched case-insensitively', async () => {
    const [line] = await capture(
      config({
        requestHeaders: { allowList: ['USER-AGENT'], blockList: [] },
        responseHeaders: { allowList: ['content-TYPE'], blockList: [] },
      }),
      [record()],
    );
    expect(line!.request.request_headers).toEqual({ 'User-Agent': ['curl/8'] });
    expect(line!.request.response_headers).toEqual({ 'Content-Type': ['text/plain'] });
  });

  it('removes block-listed headers, matched case-insensitively', async () => {
    const [line] = await capture(
      config({
        requestHeaders: { allowList: [], blockList: ['User-Agent'] },
        responseHeaders: { allowList: [], blockList: ['CONTENT-LENGTH'] },
      }),
      [record()],
    );
    expect(line!.request.request_headers).toEqual({ Accept: ['*/*'] });
    expect(line!.request.response_headers).toEqual({ 'Content-Type': ['text/plain'] });
  });

  it('lets the allow list win when both lists are set', async () => {
    const [line] = await capture(config({ requestHeaders: { allowList: ['accept'], blockList: ['accept'] } }), [record()]);
    expect(line!.request.request_headers).toEqual({ Accept: ['*/*'] });
  });

  it('keeps every value of a repeated header', async () => {
    const [line] = await capture(config(), [record({ responseHeaders: { 'x-multi': ['accept', 'origin'] } })]);
    expect(line!.request.response_headers).toEqual({ 'X-Multi': ['accept', 'origin'] });
  });
});

describe('formatGoDuration', () => {
  it.each([
    [0, '0s'],
    [0.000_000_4, '0s'],
    [0.000_85, '850ns'],
    [0.0015, '1.5µs'],
    [0.001, '1µs'],
    [1, '1ms'],
    [1.234_567, '1.234567ms'],
    [999.999_999, '999.999999ms'],
    [1000, '1s'],
    [2500, '2.5s'],
    [60_000, '1m0s'],
    [90_000.5, '1m30.0005s'],
    [3_600_000, '1h0m0s'],
    [3_723_500, '1h2m3.5s'],
    [-1.5, '-1.5ms'],
  ])('formats %p ms as %p', (ms, expected) => {
    expect(formatGoDuration(ms)).toBe(expected);
  });
});

describe('canonicalHeaderKey', () => {
  it.each([
    ['content-type', 'Content-Type'],
    ['X-PIKO-ENDPOINT', 'X-Piko-Endpoint'],
    ['accept', 'Accept'],
    ['bad header', 'bad header'],
  ])('canonicalises %p as %p', (name, expected) => {
    expect(canonicalHeaderKey(name)).toBe(expected);
  });
});
