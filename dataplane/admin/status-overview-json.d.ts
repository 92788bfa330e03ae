/**
 * The JSON of `GET /status/overview`, written once for the server that builds it
 * (status-overview.ts) and the page that draws it (ui/status.ts). The page is a classic
 * script, which cannot import, so this is a global declaration both refer to; it holds
 * types only and emits nothing.
 */
declare namespace StatusOverviewJson {
  /** An endpoint's requests through this node over the traffic window. */
  interface Traffic {
    /** Requests per second over the window (or since the node first saw the endpoint, if later). */
    rps: number;
    /** Share of requests answered with a 5xx, 0 to 1. */
    error_rate: number;
    p50_ms: number;
    p95_ms: number;
    p99_ms: number;
    /** Requests in the window. */
    requests: number;
  }

  interface Endpoint {
    id: string;
    upstreams: number;
    /** Pods holding it, with their upstream counts, most first. */
    nodes: { id: string; upstreams: number }[];
    /** Absent with no request in the window. */
    traffic?: Traffic;
  }

  interface Node {
    id: string;
    status: 'active' | 'unreachable' | 'left';
    proxy_addr: string;
    admin_addr: string;
    endpoints: number;
    upstreams: number;
    local: boolean;
    /** Seconds since its Lease was last renewed; absent without Leases (the in-memory registry). */
    lease_age_seconds?: number;
  }

  interface Overview {
    node: { id: string; uptime_seconds: number; tunnels: number };
    endpoints: Endpoint[];
    /** Endpoints matching the query that the cut left out. */
    endpoints_omitted: number;
    nodes: Node[];
    limits_tripped: Record<string, number>;
    /** The window traffic figures cover. */
    traffic_window_seconds: number;
  }

  /** What the route answers: the overview and the version a long poll waits past. */
  interface Answer extends Overview {
    version: number;
  }
}
