import { EndpointTraffic, MAX_TRACKED, SLOT_MS, WINDOW_MS } from '../../../dataplane/metrics/endpoint-traffic';

function clock(startMs = 1_000_000 * SLOT_MS) {
  const c = { ms: startMs, now: () => c.ms };
  return c;
}

describe('EndpointTraffic', () => {
  it('gives the rate, the 5xx share and latency percentiles of the window', () => {
    const t = clock();
    const traffic = new EndpointTraffic(t.now);
    // 10 s of traffic: 100 requests a second, 1 in 20 a 503; 90% take 2 ms, 9% 20 ms, 1% 400 ms.
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 100; i++) {
        traffic.record('api', i % 20 === 0 ? 503 : 200, i < 90 ? 2 : i < 99 ? 20 : 400);
      }
      t.ms += 1_000;
    }
    const summary = traffic.summary('api');
    expect(summary?.requests).toBe(1_000);
    expect(summary?.rps).toBeCloseTo(100, 5);
    expect(summary?.error_rate).toBeCloseTo(0.05, 5);
    // Log buckets a factor √2 wide: within 41% of the truth.
    expect(summary?.p50_ms).toBeGreaterThan(2 / Math.SQRT2);
    expect(summary?.p50_ms).toBeLessThanOrEqual(2 * Math.SQRT2);
    expect(summary?.p95_ms).toBeGreaterThan(20 / Math.SQRT2);
    expect(summary?.p95_ms).toBeLessThanOrEqual(20 * Math.SQRT2);
    expect(summary?.p99_ms).toBeGreaterThan(20 / Math.SQRT2);
    expect(summary?.p99_ms).toBeLessThanOrEqual(400 * Math.SQRT2);
    expect(traffic.summary('other')).toBeUndefined();
  });

  it('forgets requests older than the window, and the endpoint once it is idle for one', () => {
    const t = clock();
    const traffic = new EndpointTraffic(t.now);
    traffic.record('old', 500, 1);
    traffic.record('api', 200, 1);
    t.ms += WINDOW_MS - SLOT_MS;
    traffic.record('api', 200, 1);
    expect(traffic.summary('api')?.requests).toBe(2);
    expect(traffic.summary('old')?.requests).toBe(1);
    t.ms += SLOT_MS;
    traffic.record('api', 200, 1);
    // The first slot has left the window: its request is gone, and 'old' with it.
    expect(traffic.summary('api')?.requests).toBe(2);
    expect(traffic.summary('old')).toBeUndefined();
    expect(traffic.tracked).toBe(1);
    t.ms += 2 * WINDOW_MS;
    expect(traffic.summary('api')).toBeUndefined();
  });

  it('does not report a burst for one request just seen', () => {
    const t = clock();
    const traffic = new EndpointTraffic(t.now);
    traffic.record('api', 200, 1);
    expect(traffic.summary('api')?.rps).toBe(1);
  });

  it('tracks at most MAX_TRACKED endpoints, counting the requests it could not place', () => {
    const t = clock();
    const traffic = new EndpointTraffic(t.now);
    for (let i = 0; i < MAX_TRACKED + 10; i++) traffic.record(`ep-${i}`, 200, 1);
    expect(traffic.tracked).toBe(MAX_TRACKED);
    expect(traffic.untracked).toBe(10);
    expect(traffic.summary(`ep-${MAX_TRACKED}`)).toBeUndefined();
    // Once the idle ones are swept, new endpoints find room again.
    t.ms += WINDOW_MS;
    traffic.record('late', 200, 1);
    expect(traffic.summary('late')?.requests).toBe(1);
    expect(traffic.tracked).toBe(1);
  });

  it('puts latencies outside the buckets in the end ones', () => {
    const t = clock();
    const traffic = new EndpointTraffic(t.now);
    traffic.record('api', 200, 0);
    traffic.record('api', 200, Number.NaN);
    expect(traffic.summary('api')?.p99_ms).toBeLessThanOrEqual(0.1);
    traffic.record('big', 200, 1e12);
    expect(traffic.summary('big')?.p50_ms).toBeGreaterThan(1e6);
    expect(Number.isFinite(traffic.summary('big')?.p50_ms)).toBe(true);
  });
});
