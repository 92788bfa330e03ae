import { EventEmitter } from 'node:events';
import type { Upstream } from './upstream';

export interface LocalUpstreamsEvents {
  /** The number of upstreams serving `endpointId` on this node changed. */
  change: [endpointId: string, count: number];
}

interface EndpointSet {
  upstreams: Upstream[];
  next: number;
}

/**
 * The upstreams connected to this node, by endpoint, each set served round
 * robin. Removal is idempotent: Piko decrements its counts twice when an
 * upstream leaves after a GoAway, we do not.
 */
export class LocalUpstreams extends EventEmitter<LocalUpstreamsEvents> {
  private readonly endpoints = new Map<string, EndpointSet>();
  private total = 0;

  constructor() {
    super();
    // Every request held for an upstream to appear listens for a while.
    this.setMaxListeners(0);
  }

  add(upstream: Upstream): void {
    let set = this.endpoints.get(upstream.endpointId);
    if (!set) {
      set = { upstreams: [], next: 0 };
      this.endpoints.set(upstream.endpointId, set);
    }
    if (set.upstreams.includes(upstream)) return;
    set.upstreams.push(upstream);
    this.total++;
    this.emit('change', upstream.endpointId, set.upstreams.length);
  }

  remove(upstream: Upstream): void {
    const set = this.endpoints.get(upstream.endpointId);
    if (!set) return;
    const index = set.upstreams.indexOf(upstream);
    if (index < 0) return;
    set.upstreams.splice(index, 1);
    this.total--;
    if (set.next > index) set.next--;
    if (set.upstreams.length === 0) this.endpoints.delete(upstream.endpointId);
    this.emit('change', upstream.endpointId, set.upstreams.length);
  }

  /**
   * The endpoint's upstreams in the order to try them: round robin, so each
   * call starts one further along. Callers try the next on failure.
   */
  candidates(endpointId: string): Upstream[] {
    const set = this.endpoints.get(endpointId);
    if (!set) return [];
    const list = set.upstreams;
    const start = set.next % list.length;
    set.next = (start + 1) % list.length;
    return start === 0 ? list.slice() : [...list.slice(start), ...list.slice(0, start)];
  }

  count(endpointId: string): number {
    return this.endpoints.get(endpointId)?.upstreams.length ?? 0;
  }

  /** endpointId → number of local upstreams. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, set] of this.endpoints) out[id] = set.upstreams.length;
    return out;
  }

  all(): Upstream[] {
    return [...this.endpoints.values()].flatMap((set) => set.upstreams);
  }

  get upstreamCount(): number {
    return this.total;
  }

  get endpointCount(): number {
    return this.endpoints.size;
  }
}
