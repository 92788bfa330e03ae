import { register as globalRegistry } from 'prom-client';
import { createMetricsRegistry } from '../../../dataplane/metrics/registry';

describe('createMetricsRegistry', () => {
  it('collects Node default metrics on its own registry, not the global one', async () => {
    const registry = createMetricsRegistry();
    const text = await registry.metrics();
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('nodejs_heap_size_used_bytes');
    expect(text).toContain('process_cpu_seconds_total');
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);
  });

  it('gives each call an independent registry', () => {
    const a = createMetricsRegistry();
    const b = createMetricsRegistry();
    expect(a).not.toBe(b);
    expect(a.getMetricsAsArray().length).toBe(b.getMetricsAsArray().length);
  });
});
