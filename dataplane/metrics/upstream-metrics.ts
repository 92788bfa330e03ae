import { Counter, Gauge, type Registry } from 'prom-client';

/** Piko's `piko_upstreams_*` metrics, owned by the upstream registry. */
export interface UpstreamMetrics {
  /** Upstream sessions connected to this node. */
  readonly connectedUpstreams: Gauge;
  /** Endpoints with at least one upstream on this node. */
  readonly registeredEndpoints: Gauge;
  /** Requests sent to an upstream connected to this node. */
  readonly upstreamRequestsTotal: Counter;
  /** Requests forwarded to another node, by target node ID. */
  readonly remoteRequestsTotal: Counter<'node_id'>;
}

export function createUpstreamMetrics(registry: Registry): UpstreamMetrics {
  const registers = [registry];
  return {
    connectedUpstreams: new Gauge({
      name: 'piko_upstreams_connected_upstreams',
      help: 'Number of upstreams connected to this node',
      registers,
    }),
    registeredEndpoints: new Gauge({
      name: 'piko_upstreams_registered_endpoints',
      help: 'Number of endpoints registered to this node',
      registers,
    }),
    upstreamRequestsTotal: new Counter({
      name: 'piko_upstreams_upstream_requests_total',
      help: 'Number of requests sent to an upstream connected to the local node',
      registers,
    }),
    remoteRequestsTotal: new Counter({
      name: 'piko_upstreams_remote_requests_total',
      help: 'Number of requests sent to a remote node',
      labelNames: ['node_id'],
      registers,
    }),
  };
}
