import { EventEmitter } from 'node:events';
/**
 * The cluster registry kept in Kubernetes: this node's liveness in a Lease,
 * its endpoints in ConfigMap shards, and every other node's read through
 * informers (docs/registry-design.md).
 */
import type { Registry } from 'prom-client';
import { sleep } from '../../time/backoff';
import { silentLogger, type Logger } from '../../log/logger';
import type { ClusterRegistry, NodeRecord } from '../cluster-registry';
import { RESOURCES, type KubeClient } from '../../kube/client';
import { ClientNodeKubeClient, loadKubeConfig, resolveNamespace } from '../../kube/client-node';
import { ResilientInformer } from '../../kube/informer';
import { ListWatch } from '../../kube/list-watch';
import { ClusterView } from './cluster-view';
import { EndpointWriter } from './endpoint-writer';
import { LeaseKeeper } from './lease-keeper';
import { createKubernetesRegistryMetrics, type KubernetesRegistryMetrics } from './metrics';
import {
  clusterSelector,
  FIELD_MANAGER,
  LABEL_NODE,
  leaseOwner,
  nodeKey,
  parseShard,
  podOwner,
  type ConfigMapObject,
  type LeaseObject,
  type PodIdentity,
} from './objects';
import { RecordSigner } from './record-signature';
import { clampDelay } from '../../time/timer';

export const DEFAULT_CLUSTER_NAME = 'piko';
export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_INTERVAL_MS = 5_000;
export const DEFAULT_FLUSH_INTERVAL_MS = 500;
export const DEFAULT_MAX_SHARD_BYTES = 256 * 1024;
export const DEFAULT_START_TIMEOUT_MS = 30_000;
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
// Capped at 5 s: after an apiserver outage a pod catches up within seconds; with
// jitter, 25 pods retrying every 5 s is a trickle for the apiserver.
const DEFAULT_RETRY_BACKOFF = { minMs: 500, maxMs: 5_000 };

export type KubernetesRegistryErrorCode = 'START_TIMEOUT' | 'ALREADY_STARTED' | 'STOPPED' | 'INVALID_OPTIONS';

export class KubernetesRegistryError extends Error {
  override readonly name = 'KubernetesRegistryError';

  constructor(
    readonly code: KubernetesRegistryErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface KubernetesRegistryOptions {
  nodeId: string;
  /** host:port other nodes forward proxied requests to. */
  proxyAddr: string;
  adminAddr: string;
  client: KubeClient;
  /** Where the registry's objects live: the data plane's own namespace. */
  namespace: string;
  /** Called last by stop() and abandon(): closes a client the registry owns (createKubernetesRegistry's). */
  closeClient?: () => Promise<void>;
  /** cluster.secret: signs this node's records; records not signed with it are ignored. */
  secret: string;
  /** Prefix of object names and value of the piko.dev/cluster label; default 'piko'. */
  clusterName?: string;
  /** cluster.kubernetes.lease-duration; default 15 s. */
  leaseDurationMs?: number;
  /** cluster.kubernetes.renew-interval; default 5 s. */
  renewIntervalMs?: number;
  /** Minimum spacing of endpoint shard writes; default 500 ms (≤ 2 writes/s). */
  flushIntervalMs?: number;
  /** Cap of one endpoint shard's JSON; default 256 KiB. */
  maxShardBytes?: number;
  /** The pod (downward API), owner of the Lease and shards; without it the Lease owns the shards. */
  pod?: PodIdentity;
  /** Where the registry's metrics go; none when absent. */
  metricsRegistry?: Registry;
  logger?: Logger;
  /** start() gives up after this long without the Lease written and both informers listed; default 30 s. */
  startTimeoutMs?: number;
  /** stop() stops waiting for its deletes after this long; default 5 s. */
  stopTimeoutMs?: number;
  /** Retry of informer restarts and shard writes; default 500 ms doubling to 5 s, +10 % jitter. */
  retryBackoff?: { minMs: number; maxMs: number };
  /** After any change of what lookup() or nodes() return for other nodes (an event or a Lease expiry). */
  onChange?(): void;
}

type State = 'new' | 'starting' | 'running' | 'stopped';

export class KubernetesRegistry implements ClusterRegistry {
  readonly nodeId: string;
  readonly clusterName: string;
  private readonly proxyAddr: string;
  private readonly adminAddr: string;
  private readonly selfKey: string;
  private readonly pod: PodIdentity | undefined;
  private readonly log: Logger;
  private readonly metrics: KubernetesRegistryMetrics | undefined;
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly retryBackoff: { minMs: number; maxMs: number };
  // Held requests in the router wait on this; one listener each.
  private readonly changes = new EventEmitter<{ change: [] }>().setMaxListeners(0);
  private readonly view: ClusterView;
  private readonly writer: EndpointWriter;
  private readonly keeper: LeaseKeeper;
  private readonly leases: ResilientInformer<LeaseObject>;
  private readonly configMaps: ResilientInformer<ConfigMapObject>;
  private readonly startAbort = new AbortController();
  private readonly closeClient: (() => Promise<void>) | undefined;
  private state: State = 'new';
  private leaseWritten = false;
  private lastStartError: unknown;
  private stopping: Promise<void> | undefined;
  /** Failure streaks, so an outage logs one line per subsystem rather than one per retry. */
  private readonly failing = { writer: false, lease: false };
  private readonly informerFailing = { Lease: false, ConfigMap: false };
  /**
   * Expiry is judged only while both hold: our Lease watch delivers, and our
   * own renewals succeed (when we cannot write, others likely cannot either).
   */
  private leaseWatchOk = false;
  private renewOk = true;
  private lastRenewOkAt = 0;

  constructor(options: KubernetesRegistryOptions) {
    this.nodeId = options.nodeId;
    this.clusterName = options.clusterName ?? DEFAULT_CLUSTER_NAME;
    this.proxyAddr = options.proxyAddr;
    this.adminAddr = options.adminAddr;
    this.selfKey = nodeKey(options.nodeId);
    this.pod = options.pod;
    this.log = (options.logger ?? silentLogger()).child({ subsystem: 'registry' });
    this.metrics = options.metricsRegistry ? createKubernetesRegistryMetrics(options.metricsRegistry) : undefined;
    this.startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.retryBackoff = options.retryBackoff ?? DEFAULT_RETRY_BACKOFF;
    const leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    const renewIntervalMs = options.renewIntervalMs ?? DEFAULT_RENEW_INTERVAL_MS;
    if (!(renewIntervalMs > 0 && renewIntervalMs < leaseDurationMs)) {
      throw new KubernetesRegistryError(
        'INVALID_OPTIONS',
        `renew interval (${renewIntervalMs} ms) must be positive and shorter than the lease duration (${leaseDurationMs} ms)`,
      );
    }
    const { client, namespace } = options;
    this.closeClient = options.closeClient;
    const metrics = this.metrics;
    const onChange = options.onChange;
    const signer = new RecordSigner(options.secret);
    // Once per object: whoever writes forged records must not flood the log too.
    const reported = new Set<string>();

    this.view = new ClusterView({
      selfKey: this.selfKey,
      signer,
      onUnsigned: (kind, name) => {
        metrics?.unsignedRecordsTotal.inc({ kind });
        if (reported.size >= 1000 || reported.has(`${kind}/${name}`)) return;
        reported.add(`${kind}/${name}`);
        this.log.warn('ignoring a registry record not signed with the cluster secret', { kind, name });
      },
      onChange: () => {
        if (metrics) {
          const counts = this.view.statusCounts();
          metrics.nodes.set({ status: 'active' }, counts.active);
          metrics.nodes.set({ status: 'unreachable' }, counts.unreachable);
        }
        onChange?.();
        this.changes.emit('change');
      },
    });

    this.writer = new EndpointWriter({
      client,
      namespace,
      cluster: this.clusterName,
      nodeId: this.nodeId,
      signer,
      flushIntervalMs: options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      maxShardBytes: options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES,
      metrics,
      backoff: { minMs: Math.max(this.retryBackoff.minMs, options.flushIntervalMs ?? 0), maxMs: this.retryBackoff.maxMs },
      // One line per failure streak: an outage must not flood the log.
      onWriteError: (err, retryInMs) => this.warnOnce('writer', 'endpoint write failed; retrying', err, retryInMs),
      onWriteRecovered: () => this.recovered('writer', 'endpoint writes recovered'),
    });

    this.keeper = new LeaseKeeper({
      client,
      namespace,
      cluster: this.clusterName,
      nodeId: this.nodeId,
      signer,
      proxyAddr: this.proxyAddr,
      adminAddr: this.adminAddr,
      durationMs: leaseDurationMs,
      renewIntervalMs,
      owner: this.pod && podOwner(this.pod),
      metrics,
      onRenewed: (uid) => {
        this.leaseWritten = true;
        this.lastRenewOkAt = Date.now();
        if (!this.renewOk) {
          this.renewOk = true;
          this.updateJudging();
        }
        // Without a pod the Lease owns the shards; a recreated Lease has a new UID.
        if (!this.pod && uid) this.writer.setOwner(leaseOwner(this.keeper.name, uid));
      },
      onRenewError: (err, retryInMs) => {
        this.warnOnce('lease', 'lease renewal failed; retrying', err, retryInMs);
        if (this.renewOk) {
          this.renewOk = false;
          // As of our last good renewal: an apiserver shutting down refuses
          // writes at once but may keep watches open for seconds.
          this.view.freeze(this.lastRenewOkAt);
        }
      },
      onRenewRecovered: () => this.recovered('lease', 'lease renewals recovered'),
    });

    const selector = clusterSelector(this.clusterName);
    this.leases = new ResilientInformer<LeaseObject>({
      create: (handlers) => new ListWatch<LeaseObject>({ client, type: RESOURCES.leases, namespace, labelSelector: selector, handlers }),
      upsert: (obj) => this.view.upsertLease(obj),
      remove: (obj) => this.view.removeLease(obj),
      onHealthChange: (healthy) => {
        this.leaseWatchOk = healthy;
        if (healthy) this.informerRecovered('Lease');
        this.updateJudging();
      },
      onError: (err, retryInMs) => this.informerError('Lease', err, retryInMs),
      onRestart: () => metrics?.watchRestartsTotal.inc({ kind: 'Lease' }),
      backoff: this.retryBackoff,
    });
    this.configMaps = new ResilientInformer<ConfigMapObject>({
      create: (handlers) =>
        new ListWatch<ConfigMapObject>({ client, type: RESOURCES.configMaps, namespace, labelSelector: selector, handlers }),
      upsert: (obj) => {
        this.view.upsertShard(obj);
        this.observeOwn(obj, true);
      },
      remove: (obj) => {
        this.view.removeShard(obj);
        this.observeOwn(obj, false);
      },
      onHealthChange: (healthy) => {
        if (healthy) this.informerRecovered('ConfigMap');
      },
      onError: (err, retryInMs) => this.informerError('ConfigMap', err, retryInMs),
      onRestart: () => metrics?.watchRestartsTotal.inc({ kind: 'ConfigMap' }),
      backoff: this.retryBackoff,
    });
  }

  /**
   * Writes the Lease and waits for both informers' first list, retrying
   * with backoff, then starts renewing and publishing. Rejects with
   * START_TIMEOUT (cause: the last error) when that takes longer than the
   * start timeout, having stopped everything it started.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') {
      throw new KubernetesRegistryError('ALREADY_STARTED', 'the registry can be started once');
    }
    this.state = 'starting';
    this.leases.start();
    this.configMaps.start();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const cause = this.lastStartError ?? this.leases.lastError ?? this.configMaps.lastError;
        reject(
          new KubernetesRegistryError(
            'START_TIMEOUT',
            `registry not ready within ${this.startTimeoutMs} ms` + (cause instanceof Error ? `: ${cause.message}` : ''),
            { cause },
          ),
        );
      }, clampDelay(this.startTimeoutMs));
    });
    const stopped = new Promise<never>((_, reject) => {
      this.startAbort.signal.addEventListener('abort', () =>
        reject(new KubernetesRegistryError('STOPPED', 'the registry was stopped while starting')),
      );
    });
    try {
      await Promise.race([Promise.all([this.acquireLease(), this.leases.synced, this.configMaps.synced]), timeout, stopped]);
    } catch (err) {
      this.startAbort.abort();
      await this.stopQuietly();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (this.pod) this.writer.setOwner(podOwner(this.pod));
    this.writer.start();
    this.keeper.start();
    this.state = 'running';
    this.log.info('registry started', { nodeId: this.nodeId, cluster: this.clusterName });
  }

  setLocalEndpoint(endpointId: string, count: number): void {
    if (this.state === 'stopped') return;
    this.writer.set(endpointId, count);
  }

  lookup(endpointId: string): readonly { node: NodeRecord; upstreams: number }[] {
    return this.view.lookup(endpointId);
  }

  waitForEndpoint(endpointId: string, timeoutMs: number): Promise<boolean> {
    return this.view.waitFor(endpointId, timeoutMs);
  }

  onChange(listener: () => void): () => void {
    this.changes.on('change', listener);
    return () => this.changes.off('change', listener);
  }

  nodes(): readonly NodeRecord[] {
    const self: NodeRecord = {
      id: this.nodeId,
      proxyAddr: this.proxyAddr,
      adminAddr: this.adminAddr,
      status: 'active',
      endpoints: Object.fromEntries(this.writer.snapshot()),
      ...(this.keeper.lastRenewedAtMs !== undefined ? { leaseRenewedAtMs: this.keeper.lastRenewedAtMs } : {}),
    };
    return [self, ...this.view.others()];
  }

  /**
   * Deletes this node's Lease and shards (in parallel: either alone takes
   * the node out of every reader's routing), bounded by the stop timeout,
   * then stops watching. Never rejects.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopAndRelease();
    return this.stopping;
  }

  private async stopAndRelease(): Promise<void> {
    const wasStarted = this.state !== 'new';
    this.state = 'stopped';
    this.startAbort.abort();
    this.view.close();
    await Promise.all([this.keeper.stop(), this.writer.stop()]);
    if (wasStarted && this.leaseWritten) {
      let timer: NodeJS.Timeout | undefined;
      const deletes = Promise.allSettled([this.keeper.release(), this.writer.deleteAll()]).then(([lease]) => {
        if (lease.status === 'rejected') this.log.warn('lease delete failed', { error: String(lease.reason) });
      });
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.log.warn('registry records not deleted within the stop timeout', { timeoutMs: this.stopTimeoutMs });
          resolve();
        }, clampDelay(this.stopTimeoutMs));
      });
      await Promise.race([deletes, timedOut]);
      clearTimeout(timer);
    }
    await Promise.all([this.leases.stop(), this.configMaps.stop()]);
    await this.closeClient?.();
    this.log.info('registry stopped', { nodeId: this.nodeId });
  }

  /**
   * Stops every timer and watch without deleting anything: what the other
   * nodes see when this process is SIGKILLed. For tests of crash handling.
   */
  abandon(): Promise<void> {
    this.stopping ??= this.stopQuietly();
    return this.stopping;
  }

  private async stopQuietly(): Promise<void> {
    this.startAbort.abort();
    this.state = 'stopped';
    this.view.close();
    await Promise.all([this.keeper.stop(), this.writer.stop(), this.leases.stop(), this.configMaps.stop()]);
    await this.closeClient?.();
  }

  private async acquireLease(): Promise<void> {
    const signal = this.startAbort.signal;
    let delay = this.retryBackoff.minMs;
    for (;;) {
      try {
        await this.keeper.renewOnce();
        return;
      } catch (err) {
        this.lastStartError = err;
        if (signal.aborted) throw err;
        this.log.debug('lease write failed at start; retrying', { error: String(err), retryInMs: delay });
        await sleep(delay, signal);
        delay = Math.min(delay * 2, this.retryBackoff.maxMs);
      }
    }
  }

  private updateJudging(): void {
    if (this.leaseWatchOk && this.renewOk) this.view.thaw();
    else this.view.freeze(Date.now());
  }

  private observeOwn(obj: ConfigMapObject, present: boolean): void {
    if (obj.metadata?.labels?.[LABEL_NODE] !== this.selfKey) return;
    const shard = parseShard(obj);
    if (!shard) return;
    this.writer.observed(shard.index, present ? shard : undefined, obj.metadata.resourceVersion);
  }

  private warnOnce(what: 'writer' | 'lease', message: string, err: unknown, retryInMs: number): void {
    if (this.failing[what]) return;
    this.failing[what] = true;
    this.log.warn(message, { error: String(err), retryInMs });
  }

  private recovered(what: 'writer' | 'lease', message: string): void {
    this.failing[what] = false;
    this.log.info(message);
  }

  private informerError(kind: 'Lease' | 'ConfigMap', err: unknown, retryInMs: number): void {
    if (this.informerFailing[kind]) return;
    this.informerFailing[kind] = true;
    this.log.warn('registry watch failed; restarting', { kind, error: String(err), retryInMs });
  }

  private informerRecovered(kind: 'Lease' | 'ConfigMap'): void {
    if (!this.informerFailing[kind]) return;
    this.informerFailing[kind] = false;
    this.log.info('registry watch recovered', { kind });
  }
}

export interface CreateKubernetesRegistryOptions extends Omit<KubernetesRegistryOptions, 'client' | 'namespace' | 'closeClient'> {
  /** cluster.kubernetes.namespace; empty = the pod's namespace (see resolveNamespace). */
  namespace?: string;
  /** A kubeconfig file; default KubeConfig.loadFromDefault (KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfigPath?: string;
  /** Per apiserver request; default 10 s. */
  requestTimeoutMs?: number;
  /** Where POD_NAME, POD_UID and POD_NAMESPACE are read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** The registry over @kubernetes/client-node, with kubeconfig, namespace and pod from the usual places. */
export function createKubernetesRegistry(options: CreateKubernetesRegistryOptions): KubernetesRegistry {
  const { namespace, kubeconfigPath, requestTimeoutMs, env = process.env, ...rest } = options;
  const kc = loadKubeConfig(kubeconfigPath);
  const ns = resolveNamespace(namespace, env, kc);
  const pod = options.pod ?? podFromEnv(env);
  const client = new ClientNodeKubeClient(kc, { fieldManager: FIELD_MANAGER, requestTimeoutMs });
  // The registry owns this client: its pool of apiserver connections goes when the registry stops.
  return new KubernetesRegistry({ ...rest, client, namespace: ns, closeClient: () => client.close(), pod });
}

/** The pod from the downward API env (POD_NAME, POD_UID), when both are set. */
export function podFromEnv(env: NodeJS.ProcessEnv): PodIdentity | undefined {
  const name = env['POD_NAME'];
  const uid = env['POD_UID'];
  return name && uid ? { name, uid } : undefined;
}
