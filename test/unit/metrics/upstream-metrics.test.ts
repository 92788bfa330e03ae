import { Registry } from 'prom-client';
import { createUpstreamMetrics } from '../../../dataplane/metrics/upstream-metrics';

describe('createUpstreamMetrics', () => {
  it("registers Piko's upstream metrics on the given registry", async () => {
    const registry = new Registry();
    const metrics = createUpstreamMetrics(registry);
    metrics.connectedUpstreams.inc();
    metrics.registeredEndpoints.set(3);
    metrics.upstreamRequestsTotal.inc();
    metrics.remoteRequestsTotal.inc({ node_id: 'abc1234' });

    const text = await registry.metrics();
    expect(text).toContain('# TYPE piko_upstreams_connected_upstreams gauge');
    expect(text).toContain('piko_upstreams_connected_upstreams 1');
    expect(text).toContain('# TYPE piko_upstreams_registered_endpoints gauge');
    expect(text).toContain('piko_upstreams_registered_endpoints 3');
    expect(text).toContain('# TYPE piko_upstreams_upstream_requests_total counter');
    expect(text).toContain('piko_upstreams_upstream_requests_total 1');
    expect(text).toContain('# TYPE piko_upstreams_remote_requests_total counter');
    expect(text).toContain('piko_upstreams_remote_requests_total{node_id="abc1234"} 1');
  });
});
