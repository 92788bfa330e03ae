import { Counter, Gauge, type Registry } from 'prom-client';

export type WriteKind = 'Lease' | 'ConfigMap';
export type WriteOperation = 'apply' | 'delete';
export type WriteResult = 'success' | 'not_found' | 'conflict' | 'error';

/** Metrics of the Kubernetes registry, on the process registry. */
export interface KubernetesRegistryMetrics {
  /** Every write request to the apiserver: the figure the write-rate bound is about. */
  readonly apiserverWritesTotal: Counter<'kind' | 'operation' | 'result'>;
  /** Informer restarts after an error. */
  readonly watchRestartsTotal: Counter<'kind'>;
  /** This node's endpoint shards (ConfigMaps). */
  readonly endpointShards: Gauge;
  /** Other nodes in the view, by status. */
  readonly nodes: Gauge<'status'>;
  /** Registry records ignored for a missing or wrong signature: someone else writes our objects. */
  readonly unsignedRecordsTotal: Counter<'kind'>;
}

export function createKubernetesRegistryMetrics(registry: Registry): KubernetesRegistryMetrics {
  const registers = [registry];
  return {
    apiserverWritesTotal: new Counter({
      name: 'piko_registry_apiserver_writes_total',
      help: 'Write requests sent to the Kubernetes apiserver, by object kind, operation and result',
      labelNames: ['kind', 'operation', 'result'],
      registers,
    }),
    watchRestartsTotal: new Counter({
      name: 'piko_registry_watch_restarts_total',
      help: 'Restarts of a registry informer after an error, by object kind',
      labelNames: ['kind'],
      registers,
    }),
    endpointShards: new Gauge({
      name: 'piko_registry_endpoint_shards',
      help: "Number of ConfigMaps holding this node's endpoints",
      registers,
    }),
    nodes: new Gauge({
      name: 'piko_registry_nodes',
      help: 'Other nodes known to the registry, by status',
      labelNames: ['status'],
      registers,
    }),
    unsignedRecordsTotal: new Counter({
      name: 'piko_registry_unsigned_records_total',
      help: 'Registry objects ignored because they are not signed with the cluster secret, by object kind',
      labelNames: ['kind'],
      registers,
    }),
  };
}

/** The result label of a failed write. */
export function resultOf(err: unknown): WriteResult {
  return (err as { code?: unknown } | null)?.code === 'CONFLICT' ? 'conflict' : 'error';
}
