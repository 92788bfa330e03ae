/**
 * What this node knows of the others: built from Lease and ConfigMap events,
 * indexed endpoint → nodes, with Lease expiry judged on time by a timer and
 * frozen while the Lease watch is down (docs/registry-design.md §5).
 */
import type { NodeRecord } from '../cluster-registry';
import type { ConfigMapObject, LeaseObject } from './objects';
import { parseLease, parseShard, type LeaseRecord } from './objects';
import type { RecordSigner } from './record-signature';
import { clampDelay } from '../../time/timer';

export interface ClusterViewOptions {
  /** This node's key: left out of lookups and of `others()`. */
  selfKey: string;
  /** Records it cannot verify are ignored: they are not from a pod of this cluster. */
  signer: RecordSigner;
  /** A record was ignored for its signature (name of the object). */
  onUnsigned?: (kind: 'Lease' | 'ConfigMap', name: string) => void;
  now?: () => number;
  /** After any change of what lookups or `others()` return, expiries included. */
  onChange?: () => void;
}

export interface Holder {
  node: NodeRecord;
  upstreams: number;
}

interface NodeState {
  lease?: LeaseRecord;
  /** Our clock when a renewal was observed (not at the first sighting). */
  lastRenewalSeenMs?: number;
  /** Our clock: a grace given after our Lease watch recovered from an outage. */
  graceUntilMs?: number;
  shards: Map<number, ReadonlyMap<string, number>>;
  /** Merged over shards (the larger count wins while shards are being rewritten). */
  endpoints: Map<string, number>;
  endpointsObject?: Readonly<Record<string, number>>;
}

interface Waiter {
  resolve(found: boolean): void;
  timer: NodeJS.Timeout;
}

const EMPTY: ReadonlyMap<string, number> = new Map();

export class ClusterView {
  private readonly selfKey: string;
  private readonly signer: RecordSigner;
  private readonly onUnsigned: (kind: 'Lease' | 'ConfigMap', name: string) => void;
  private readonly now: () => number;
  private readonly onChange: () => void;
  private readonly nodes = new Map<string, NodeState>();
  /** endpointId → nodeKey → count, every node included. */
  private readonly index = new Map<string, Map<string, number>>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Whether expiry is judged now; false until the first sync and while frozen. */
  private judging = false;
  /** While frozen after having judged: liveness is as of this instant. */
  private frozenAtMs: number | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAtMs: number | undefined;
  private closed = false;

  constructor(options: ClusterViewOptions) {
    this.selfKey = options.selfKey;
    this.signer = options.signer;
    this.onUnsigned = options.onUnsigned ?? (() => undefined);
    this.now = options.now ?? Date.now;
    this.onChange = options.onChange ?? (() => undefined);
  }

  upsertLease(obj: LeaseObject): void {
    const lease = parseLease(obj);
    if (!lease || !this.trusted('Lease', obj, this.signer.leaseValid(obj))) return;
    const node = this.node(lease.nodeKey);
    const prev = node.lease;
    const now = this.now();
    const wasLive = this.isLive(node, now);
    if (prev && prev.renewTimeMs !== lease.renewTimeMs) node.lastRenewalSeenMs = now;
    node.lease = lease;
    // A renewal of a live node changes where nothing is routed: only its deadline moves. Telling
    // listeners would wake every waiting request and status page once per node per renew interval.
    if (prev && wasLive && this.isLive(node, now) && sameHolder(prev, lease)) {
      this.armExpiry();
      return;
    }
    this.changed();
  }

  removeLease(obj: LeaseObject): void {
    const lease = parseLease(obj);
    if (!lease || !this.signer.leaseValid(obj)) return;
    const node = this.nodes.get(lease.nodeKey);
    if (!node?.lease) return;
    delete node.lease;
    delete node.lastRenewalSeenMs;
    delete node.graceUntilMs;
    this.dropIfEmpty(lease.nodeKey, node);
    this.changed();
  }

  upsertShard(obj: ConfigMapObject): void {
    const shard = parseShard(obj);
    if (!shard || !this.trusted('ConfigMap', obj, this.signer.shardValid(obj))) return;
    this.setShard(shard.nodeKey, shard.index, shard.endpoints);
  }

  removeShard(obj: ConfigMapObject): void {
    const shard = parseShard(obj);
    if (!shard || !this.signer.shardValid(obj)) return;
    this.setShard(shard.nodeKey, shard.index, undefined);
  }

  // An update that breaks the signature of a record we hold leaves the
  // record as it was: the last version its node signed.
  private trusted(kind: 'Lease' | 'ConfigMap', obj: LeaseObject | ConfigMapObject, valid: boolean): boolean {
    if (!valid) this.onUnsigned(kind, obj.metadata?.name ?? '');
    return valid;
  }

  /**
   * Stops judging expiry, as of `atMs`: while the apiserver is unreachable
   * nobody can renew, so renewals not arriving prove nothing. The instant
   * may lie in the past (our last successful renewal), since an apiserver
   * going down can keep open watches alive for a while after refusing
   * writes. Freezing again keeps the earlier instant.
   */
  freeze(atMs: number): void {
    if (this.judging) {
      this.judging = false;
      this.frozenAtMs = atMs;
    } else if (this.frozenAtMs !== undefined) {
      this.frozenAtMs = Math.min(this.frozenAtMs, atMs);
    }
    this.changed();
  }

  /**
   * Judges expiry again. After a freeze every node live at the freeze gets
   * one lease duration from now to be seen renewing; the first call (the
   * first sync) gives none, so a stale Lease found at start expires at once.
   */
  thaw(): void {
    if (this.judging) return;
    const now = this.now();
    if (this.frozenAtMs !== undefined) {
      const frozenAt = this.frozenAtMs;
      for (const node of this.nodes.values()) {
        if (node.lease && this.deadline(node) > frozenAt) node.graceUntilMs = now + node.lease.durationMs;
      }
    }
    this.frozenAtMs = undefined;
    this.judging = true;
    this.changed();
  }

  /** Other live nodes holding the endpoint, with their counts. */
  lookup(endpointId: string): Holder[] {
    const holders = this.index.get(endpointId);
    if (!holders) return [];
    const now = this.now();
    const out: Holder[] = [];
    for (const [key, upstreams] of holders) {
      if (key === this.selfKey) continue;
      const node = this.nodes.get(key);
      if (!node?.lease?.proxyAddr || !this.isLive(node, now)) continue;
      out.push({ node: this.record(node, 'active'), upstreams });
    }
    return out;
  }

  /** Every other node with a Lease: active when live, unreachable when expired. */
  others(): NodeRecord[] {
    const now = this.now();
    const out: NodeRecord[] = [];
    for (const [key, node] of this.nodes) {
      if (key === this.selfKey || !node.lease) continue;
      out.push(this.record(node, this.isLive(node, now) ? 'active' : 'unreachable'));
    }
    return out;
  }

  /** Other nodes with a Lease, by status, without building records. */
  statusCounts(): { active: number; unreachable: number } {
    const now = this.now();
    let active = 0;
    let unreachable = 0;
    for (const [key, node] of this.nodes) {
      if (key === this.selfKey || !node.lease) continue;
      if (this.isLive(node, now)) active++;
      else unreachable++;
    }
    return { active, unreachable };
  }

  /** Resolves true as soon as another live node holds the endpoint; false at the timeout or close. */
  waitFor(endpointId: string, timeoutMs: number): Promise<boolean> {
    if (this.lookup(endpointId).length > 0) return Promise.resolve(true);
    if (this.closed || !(timeoutMs > 0)) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let set = this.waiters.get(endpointId);
      if (!set) {
        set = new Set();
        this.waiters.set(endpointId, set);
      }
      const waiters = set;
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          waiters.delete(waiter);
          if (waiters.size === 0) this.waiters.delete(endpointId);
          resolve(false);
        }, clampDelay(timeoutMs)),
      };
      waiters.add(waiter);
    });
  }

  /** Resolves every waiter with false and stops the expiry timer. */
  close(): void {
    this.closed = true;
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    for (const set of this.waiters.values()) {
      for (const w of set) {
        clearTimeout(w.timer);
        w.resolve(false);
      }
    }
    this.waiters.clear();
  }

  private node(key: string): NodeState {
    let node = this.nodes.get(key);
    if (!node) {
      node = { shards: new Map(), endpoints: new Map() };
      this.nodes.set(key, node);
    }
    return node;
  }

  private dropIfEmpty(key: string, node: NodeState): void {
    if (!node.lease && node.shards.size === 0) this.nodes.delete(key);
  }

  private setShard(key: string, index: number, endpoints: ReadonlyMap<string, number> | undefined): void {
    const node = this.node(key);
    const old = node.shards.get(index) ?? EMPTY;
    if (endpoints) node.shards.set(index, endpoints);
    else node.shards.delete(index);
    const affected = new Set<string>([...old.keys(), ...(endpoints ?? EMPTY).keys()]);
    for (const id of affected) {
      let count = 0;
      for (const shard of node.shards.values()) count = Math.max(count, shard.get(id) ?? 0);
      if (count === (node.endpoints.get(id) ?? 0)) continue;
      let holders = this.index.get(id);
      if (count > 0) {
        node.endpoints.set(id, count);
        if (!holders) {
          holders = new Map();
          this.index.set(id, holders);
        }
        holders.set(key, count);
      } else {
        node.endpoints.delete(id);
        holders?.delete(key);
        if (holders?.size === 0) this.index.delete(id);
      }
    }
    delete node.endpointsObject;
    this.dropIfEmpty(key, node);
    this.changed();
  }

  private deadline(node: NodeState): number {
    const lease = node.lease;
    if (!lease) return -Infinity;
    const d = lease.durationMs;
    return Math.max(
      lease.renewTimeMs !== undefined ? lease.renewTimeMs + d : -Infinity,
      node.lastRenewalSeenMs !== undefined ? node.lastRenewalSeenMs + d : -Infinity,
      node.graceUntilMs ?? -Infinity,
    );
  }

  private isLive(node: NodeState, now: number): boolean {
    if (!node.lease) return false;
    // While frozen, renewals cannot reach us: judge as of the freeze.
    const at = this.frozenAtMs ?? now;
    return at < this.deadline(node);
  }

  private record(node: NodeState, status: NodeRecord['status']): NodeRecord {
    const lease = node.lease as LeaseRecord;
    node.endpointsObject ??= Object.freeze(Object.fromEntries(node.endpoints));
    return {
      id: lease.nodeId,
      proxyAddr: lease.proxyAddr ?? '',
      adminAddr: lease.adminAddr ?? '',
      status,
      endpoints: node.endpointsObject,
      // Our clock once we have seen a renewal arrive; until then the holder's, as written.
      leaseRenewedAtMs: node.lastRenewalSeenMs ?? lease.renewTimeMs,
    };
  }

  private changed(): void {
    if (this.closed) return;
    this.armExpiry();
    this.wakeWaiters();
    this.onChange();
  }

  private wakeWaiters(): void {
    for (const [endpointId, set] of this.waiters) {
      if (this.lookup(endpointId).length === 0) continue;
      this.waiters.delete(endpointId);
      for (const w of set) {
        clearTimeout(w.timer);
        w.resolve(true);
      }
    }
  }

  /** One timer at the earliest future deadline, so nodes expire on time without any event. */
  private armExpiry(): void {
    let next: number | undefined;
    if (this.judging) {
      const now = this.now();
      for (const [key, node] of this.nodes) {
        if (key === this.selfKey) continue;
        const d = this.deadline(node);
        if (d > now && (next === undefined || d < next)) next = d;
      }
    }
    if (next === this.expiryAtMs) return;
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiryAtMs = next;
    if (next === undefined) return;
    this.expiryTimer = setTimeout(
      () => {
        this.expiryTimer = undefined;
        this.expiryAtMs = undefined;
        this.changed();
      },
      clampDelay(Math.max(0, next - this.now()) + 1),
    );
  }
}

/** The same node at the same addresses, whatever its renewal time. */
function sameHolder(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    a.nodeId === b.nodeId && a.proxyAddr === b.proxyAddr && a.adminAddr === b.adminAddr && a.durationMs === b.durationMs && a.uid === b.uid
  );
}
