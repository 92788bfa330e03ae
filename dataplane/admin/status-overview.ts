/**
 * `GET /status/overview`: what the status page shows, in one answer. Endpoints are the whole
 * cluster's (every node's registry record, this node's own table for itself), each with the pods
 * holding it; `?q=` keeps those whose ID contains it. The list is cut at MAX_ENDPOINTS, largest
 * first, and says how many it left out, so a cluster with 100,000 endpoints answers in bounded
 * size and time. Traffic figures are this node's: where clients' requests came in.
 *
 * `?since=<version>` makes it a long poll: while the version is still the one the page last
 * got, the answer waits for the next change (or LONG_POLL_MS), so a page shows an agent within
 * a request's time of its connecting and an open page with nothing changing costs one parked
 * request. At most MAX_WAITERS wait at once; more are answered at once.
 */
import type http from 'node:http';
import { SLOT_MS, WINDOW_MS } from '../metrics/endpoint-traffic';
import type { StatusProvider } from './status-provider';

/** As long as a slot of the traffic window: an open page's figures are at most that old. */
export const LONG_POLL_MS = SLOT_MS;
export const MAX_WAITERS = 64;

/** A version number bumped at each change of the endpoints, and the long polls waiting on it. */
export class ChangeFeed {
  private current = 0;
  private readonly waiters = new Set<() => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly status: Pick<StatusProvider, 'onChange'>) {}

  get version(): number {
    return this.current;
  }

  /** Resolves at once unless `since` is the current version; then at the next change, the timeout, or the client going. */
  async wait(since: string | null, res: http.ServerResponse): Promise<void> {
    // Subscribed only once someone watches: a node nobody looks at pays nothing per change.
    this.unsubscribe ??= this.status.onChange(() => this.bump());
    if (since === null || Number(since) !== this.current || this.waiters.size >= MAX_WAITERS) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        res.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, LONG_POLL_MS);
      this.waiters.add(done);
      res.once('close', done);
    });
  }

  private bump(): void {
    this.current++;
    for (const wake of [...this.waiters]) wake();
  }
}

export const MAX_ENDPOINTS = 500;
/** Longer searches cannot match an endpoint ID (at most 128 characters). */
const MAX_QUERY = 128;

// The JSON's shape is declared once, in status-overview-json.d.ts, for this and the page's script.
export type OverviewEndpoint = StatusOverviewJson.Endpoint;
export type Overview = StatusOverviewJson.Overview;

export async function buildOverview(status: StatusProvider, query: string, uptimeSeconds: number): Promise<Overview> {
  const nowMs = Date.now();
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
  const listed = all.slice(0, MAX_ENDPOINTS);
  for (const e of listed) {
    e.nodes.sort((a, b) => b.upstreams - a.upstreams || (a.id < b.id ? -1 : 1));
    const traffic = status.traffic(e.id);
    if (traffic !== undefined) e.traffic = traffic;
  }
  const tripped = await status.limitsTripped();
  return {
    node: { id: localId, uptime_seconds: Math.floor(uptimeSeconds), tunnels: status.tunnels() },
    endpoints: listed,
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
        ...(n.leaseRenewedAtMs !== undefined
          ? { lease_age_seconds: Math.max(0, Math.round((nowMs - n.leaseRenewedAtMs) / 100) / 10) }
          : {}),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
    limits_tripped: Object.fromEntries(Object.entries(tripped).filter(([, n]) => n > 0)),
    traffic_window_seconds: WINDOW_MS / 1000,
  };
}
