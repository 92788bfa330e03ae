/**
 * `GET /status/overview`: what the status page shows, in one answer. Endpoints are the whole
 * cluster's (every node's registry record, this node's own table for itself), each with the pods
 * holding it; `?q=` keeps those whose ID contains it. The list is cut at MAX_ENDPOINTS, largest
 * first, and says how many it left out, so a cluster with 100,000 endpoints answers in bounded
 * size and time.
 */
import type { NodeState, StatusProvider } from './status-provider';

export const MAX_ENDPOINTS = 500;
/** Longer searches cannot match an endpoint ID (at most 128 characters). */
const MAX_QUERY = 128;

export interface OverviewEndpoint {
  id: string;
  upstreams: number;
  /** Pods holding it, with their upstream counts, most first. */
  nodes: { id: string; upstreams: number }[];
}

export interface Overview {
  node: { id: string; uptime_seconds: number; tunnels: number };
  endpoints: OverviewEndpoint[];
  /** Endpoints matching the query that the cut left out. */
  endpoints_omitted: number;
  nodes: { id: string; status: NodeState; proxy_addr: string; admin_addr: string; endpoints: number; upstreams: number; local: boolean }[];
  limits_tripped: Record<string, number>;
}

export async function buildOverview(status: StatusProvider, query: string, uptimeSeconds: number): Promise<Overview> {
  const q = query.slice(0, MAX_QUERY);
  const localId = status.localNodeId();
  const byEndpoint = new Map<string, OverviewEndpoint>();
  const nodes = status.nodes();
  for (const n of nodes) {
    const detail = status.node(n.id === localId ? 'local' : n.id);
    for (const [id, upstreams] of Object.entries(detail?.endpoints ?? {})) {
      if (upstreams <= 0 || (q !== '' && !id.includes(q))) continue;
      let entry = byEndpoint.get(id);
      if (entry === undefined) {
        entry = { id, upstreams: 0, nodes: [] };
        byEndpoint.set(id, entry);
      }
      entry.upstreams += upstreams;
      entry.nodes.push({ id: n.id, upstreams });
    }
  }
  const all = [...byEndpoint.values()].sort((a, b) => b.upstreams - a.upstreams || (a.id < b.id ? -1 : 1));
  for (const e of all) e.nodes.sort((a, b) => b.upstreams - a.upstreams || (a.id < b.id ? -1 : 1));
  const tripped = await status.limitsTripped();
  return {
    node: { id: localId, uptime_seconds: Math.floor(uptimeSeconds), tunnels: status.tunnels() },
    endpoints: all.slice(0, MAX_ENDPOINTS),
    endpoints_omitted: Math.max(0, all.length - MAX_ENDPOINTS),
    nodes: nodes
      .map((n) => ({
        id: n.id,
        status: n.status,
        proxy_addr: n.proxyAddr,
        admin_addr: n.adminAddr,
        endpoints: n.endpoints,
        upstreams: n.upstreams,
        local: n.id === localId,
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
    limits_tripped: Object.fromEntries(Object.entries(tripped).filter(([, n]) => n > 0)),
  };
}
