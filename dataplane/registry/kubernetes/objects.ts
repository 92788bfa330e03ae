/**
 * Names, labels and the shape of the registry's Kubernetes objects, as pure
 * functions (see docs/registry-design.md §3).
 */
import { createHash } from 'node:crypto';
import { microTime, timeMs, type ObjectMeta, type OwnerReference } from '../../kube/client';

/** The field manager of every registry write. */
export const FIELD_MANAGER = 'piko-dataplane';

/** Registry objects always have a name; everything else as the apiserver sends it. */
export type NamedMeta = ObjectMeta & { name: string };

export interface LeaseObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: NamedMeta;
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
  };
}

export interface ConfigMapObject {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: NamedMeta;
  data?: Record<string, string>;
}

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_CLUSTER = 'piko.dev/cluster';
export const LABEL_NODE = 'piko.dev/node';
export const LABEL_SHARD = 'piko.dev/shard';
export const ANNOTATION_NODE_ID = 'piko.dev/node-id';
export const ANNOTATION_PROXY_ADDR = 'piko.dev/proxy-addr';
export const ANNOTATION_ADMIN_ADDR = 'piko.dev/admin-addr';

const APP_NAME = 'piko';
const COMPONENT = 'registry';
export const SHARD_DATA_KEY = 'endpoints.json';
export const SHARD_FORMAT_VERSION = 1;

const MAX_LABEL_VALUE = 63;
const HASH_HEX_DIGITS = 8;
const SAFE_NODE_KEY = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * A form of the node ID usable in object names and label values: the ID
 * itself when it already is (pod names are), else a sanitised prefix plus a
 * hash, so distinct IDs keep distinct keys.
 */
export function nodeKey(nodeId: string): string {
  if (nodeId.length <= MAX_LABEL_VALUE && SAFE_NODE_KEY.test(nodeId)) return nodeId;
  const hash = createHash('sha256').update(nodeId).digest('hex').slice(0, HASH_HEX_DIGITS);
  const prefix = nodeId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, MAX_LABEL_VALUE - HASH_HEX_DIGITS - 1)
    .replace(/^-+|-+$/g, '');
  return prefix === '' ? hash : `${prefix}-${hash}`;
}

export function leaseName(cluster: string, key: string): string {
  return `${cluster}-node-${key}`;
}

export function shardName(cluster: string, key: string, index: number): string {
  return `${cluster}-endpoints-${key}-${index}`;
}

/** The label selector of every registry object of a cluster. */
export function clusterSelector(cluster: string): string {
  return `${LABEL_COMPONENT}=${COMPONENT},${LABEL_CLUSTER}=${cluster}`;
}

function baseLabels(cluster: string, key: string): Record<string, string> {
  return { [LABEL_NAME]: APP_NAME, [LABEL_COMPONENT]: COMPONENT, [LABEL_CLUSTER]: cluster, [LABEL_NODE]: key };
}

/** The Pod, when the downward API tells us who we are. */
export interface PodIdentity {
  name: string;
  uid: string;
}

export function podOwner(pod: PodIdentity): OwnerReference {
  return { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid };
}

export function leaseOwner(name: string, uid: string): OwnerReference {
  return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name, uid };
}

export interface LeaseSpec {
  /** Where the Lease lives; absent for a test's hand-made object. */
  namespace?: string | undefined;
  cluster: string;
  nodeId: string;
  proxyAddr: string;
  adminAddr: string;
  durationMs: number;
  acquireTimeMs: number;
  renewTimeMs: number;
  owner?: OwnerReference | undefined;
}

export function buildLease(spec: LeaseSpec): LeaseObject {
  const key = nodeKey(spec.nodeId);
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: leaseName(spec.cluster, key),
      namespace: spec.namespace,
      labels: baseLabels(spec.cluster, key),
      annotations: {
        [ANNOTATION_NODE_ID]: spec.nodeId,
        [ANNOTATION_PROXY_ADDR]: spec.proxyAddr,
        [ANNOTATION_ADMIN_ADDR]: spec.adminAddr,
      },
      ...(spec.owner ? { ownerReferences: [spec.owner] } : {}),
    },
    spec: {
      holderIdentity: spec.nodeId,
      leaseDurationSeconds: leaseDurationSeconds(spec.durationMs),
      acquireTime: microTime(spec.acquireTimeMs),
      renewTime: microTime(spec.renewTimeMs),
    },
  };
}

/** The API counts in whole seconds; rounding up never makes a live node look dead. */
export function leaseDurationSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

export interface ShardSpec {
  namespace?: string | undefined;
  cluster: string;
  nodeId: string;
  index: number;
  /** The serialised table, from `serializeShard`. */
  json: string;
  owner?: OwnerReference | undefined;
}

export function buildShard(spec: ShardSpec): ConfigMapObject {
  const key = nodeKey(spec.nodeId);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: shardName(spec.cluster, key, spec.index),
      namespace: spec.namespace,
      labels: { ...baseLabels(spec.cluster, key), [LABEL_SHARD]: String(spec.index) },
      annotations: { [ANNOTATION_NODE_ID]: spec.nodeId },
      ...(spec.owner ? { ownerReferences: [spec.owner] } : {}),
    },
    data: { [SHARD_DATA_KEY]: spec.json },
  };
}

/** Sorted keys, so equal tables serialise to equal strings and unchanged shards are not rewritten. */
export function serializeShard(endpoints: ReadonlyMap<string, number>): string {
  const sorted: Record<string, number> = {};
  for (const id of [...endpoints.keys()].sort()) sorted[id] = endpoints.get(id) as number;
  return JSON.stringify({ version: SHARD_FORMAT_VERSION, endpoints: sorted });
}

/** A Lease as the view needs it; undefined when it is not one of ours. */
export interface LeaseRecord {
  nodeKey: string;
  nodeId: string;
  proxyAddr?: string;
  adminAddr?: string;
  /** Undefined for a Lease never renewed: it counts as expired. */
  renewTimeMs?: number;
  durationMs: number;
  uid?: string;
}

export function parseLease(lease: LeaseObject): LeaseRecord | undefined {
  const meta = lease.metadata;
  const key = meta?.labels?.[LABEL_NODE];
  if (!key) return undefined;
  const nodeId = lease.spec?.holderIdentity || meta.annotations?.[ANNOTATION_NODE_ID] || key;
  const seconds = lease.spec?.leaseDurationSeconds;
  const renewTimeMs = timeMs(lease.spec?.renewTime);
  return {
    nodeKey: key,
    nodeId,
    ...(meta.annotations?.[ANNOTATION_PROXY_ADDR] ? { proxyAddr: meta.annotations[ANNOTATION_PROXY_ADDR] } : {}),
    ...(meta.annotations?.[ANNOTATION_ADMIN_ADDR] ? { adminAddr: meta.annotations[ANNOTATION_ADMIN_ADDR] } : {}),
    ...(renewTimeMs !== undefined ? { renewTimeMs } : {}),
    durationMs: typeof seconds === 'number' && seconds > 0 ? seconds * 1000 : 0,
    ...(meta.uid ? { uid: meta.uid } : {}),
  };
}

/** A shard as readers need it; undefined when it is not one of ours or unreadable. */
export interface ShardRecord {
  nodeKey: string;
  index: number;
  name: string;
  endpoints: ReadonlyMap<string, number>;
  /** The raw document, compared by the writer with what it meant to publish. */
  json: string;
  ownerUid?: string;
}

export function parseShard(cm: ConfigMapObject): ShardRecord | undefined {
  const meta = cm.metadata;
  const key = meta?.labels?.[LABEL_NODE];
  const indexLabel = meta?.labels?.[LABEL_SHARD];
  if (!key || indexLabel === undefined || !/^(0|[1-9][0-9]{0,5})$/.test(indexLabel)) return undefined;
  const json = cm.data?.[SHARD_DATA_KEY] ?? '';
  const ownerUid = meta.ownerReferences?.[0]?.uid;
  return {
    nodeKey: key,
    index: Number(indexLabel),
    name: meta.name,
    endpoints: parseShardJson(json),
    json,
    ...(ownerUid ? { ownerUid } : {}),
  };
}

/**
 * The table of a shard document. Anything unreadable (another format
 * version, hand edits) yields an empty table: the shard's owner rewrites it.
 */
export function parseShardJson(json: string): ReadonlyMap<string, number> {
  const out = new Map<string, number>();
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return out;
  }
  if (typeof doc !== 'object' || doc === null) return out;
  const { version, endpoints } = doc as { version?: unknown; endpoints?: unknown };
  if (version !== SHARD_FORMAT_VERSION || typeof endpoints !== 'object' || endpoints === null) return out;
  for (const [id, count] of Object.entries(endpoints)) {
    if (typeof count === 'number' && Number.isInteger(count) && count > 0) out.set(id, count);
  }
  return out;
}
