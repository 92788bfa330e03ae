/**
 * What the data plane's registry objects of one cluster say, for status and
 * for garbage collection. Pure: the reconciler hands in the cached Leases,
 * shard ConfigMaps and pod names, and the time.
 *
 * - Live nodes (Lease renewed within its duration) report their endpoint
 *   counts, merged over shards as the data plane's readers merge them.
 * - A node's objects are garbage when its Lease has expired (or it has
 *   none) AND no Pod of its name exists. Pods own their registry objects,
 *   so the Kubernetes garbage collector normally removes them with the pod;
 *   this catches what it cannot: objects written without an owner, or left
 *   when the owner reference could not be set. A node whose pod still
 *   exists is left alone even when its Lease expired: the pod may be
 *   restarting, and it rewrites its objects when it comes back.
 */
import type { ConfigMapObject, LeaseObject } from '../../dataplane/registry/kubernetes/objects';
import { ANNOTATION_NODE_ID, parseLease, parseShard, type LeaseRecord } from '../../dataplane/registry/kubernetes/objects';
import type { RegistryNodeView } from '../status/derive-status';

export interface RegistryGarbage {
  kind: 'Lease' | 'ConfigMap';
  name: string;
  /** The delete is conditional on it, so an object rewritten meanwhile is kept. */
  resourceVersion?: string;
}

export interface RegistryAnalysis {
  /** Nodes with a live Lease, sorted by ID. */
  nodes: RegistryNodeView[];
  garbage: RegistryGarbage[];
  /** When the answer changes by time alone: a live Lease expires, or an expired one becomes garbage. */
  nextChangeAtMs?: number;
}

export interface RegistryInput {
  leases: readonly LeaseObject[];
  shards: readonly ConfigMapObject[];
  /** Names of the Pods of this cluster (the node IDs of a StatefulSet's pods). */
  podNames: ReadonlySet<string>;
  nowMs: number;
  /** How long past its expiry a Lease is kept before it counts as garbage; absorbs clock skew between pods and us. */
  graceMs: number;
}

interface NodeObjects {
  lease?: { record: LeaseRecord; object: LeaseObject };
  shards: { object: ConfigMapObject; endpoints: ReadonlyMap<string, number> }[];
  nodeId?: string;
}

export function analyseRegistry(input: RegistryInput): RegistryAnalysis {
  const byKey = new Map<string, NodeObjects>();
  const node = (key: string): NodeObjects => {
    let n = byKey.get(key);
    if (n === undefined) {
      n = { shards: [] };
      byKey.set(key, n);
    }
    return n;
  };
  for (const object of input.leases) {
    const record = parseLease(object);
    if (record !== undefined) node(record.nodeKey).lease = { record, object };
  }
  for (const object of input.shards) {
    const shard = parseShard(object);
    if (shard === undefined) continue;
    const n = node(shard.nodeKey);
    n.shards.push({ object, endpoints: shard.endpoints });
    n.nodeId ??= object.metadata.annotations?.[ANNOTATION_NODE_ID];
  }

  const out: RegistryAnalysis = { nodes: [], garbage: [] };
  const later = (atMs: number): void => {
    if (out.nextChangeAtMs === undefined || atMs < out.nextChangeAtMs) out.nextChangeAtMs = atMs;
  };
  for (const [key, n] of byKey) {
    const id = n.lease?.record.nodeId ?? n.nodeId ?? key;
    const renewed = n.lease?.record.renewTimeMs;
    const expiresAtMs = renewed === undefined || n.lease === undefined ? undefined : renewed + n.lease.record.durationMs;
    if (expiresAtMs !== undefined && input.nowMs < expiresAtMs) {
      out.nodes.push({ id, endpoints: mergeShards(n.shards.map((s) => s.endpoints)) });
      later(expiresAtMs);
      continue;
    }
    if (input.podNames.has(id)) continue;
    if (expiresAtMs !== undefined && input.nowMs < expiresAtMs + input.graceMs) {
      later(expiresAtMs + input.graceMs);
      continue;
    }
    if (n.lease !== undefined) out.garbage.push(garbage('Lease', n.lease.object));
    for (const s of n.shards) out.garbage.push(garbage('ConfigMap', s.object));
  }
  out.nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

function garbage(kind: RegistryGarbage['kind'], object: LeaseObject | ConfigMapObject): RegistryGarbage {
  const rv = object.metadata.resourceVersion;
  return { kind, name: object.metadata.name, ...(rv === undefined ? {} : { resourceVersion: rv }) };
}

/** While shards are being rewritten an endpoint can sit in two of them: the larger count wins, as in the data plane. */
function mergeShards(shards: readonly ReadonlyMap<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const shard of shards) {
    for (const [id, count] of shard) out[id] = Math.max(out[id] ?? 0, count);
  }
  return out;
}
