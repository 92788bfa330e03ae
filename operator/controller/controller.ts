/**
 * The PikoCluster controller: the informers, the work queue and the
 * workers around one Reconciler.
 *
 * Informers run on every replica (so a standby is ready and takes over
 * with warm caches); the queue and workers run only while this replica
 * leads. Informer callbacks only turn events into `namespace/name` keys of
 * PikoClusters:
 * - a PikoCluster itself, except updates that change neither its
 *   generation nor its labels or annotations (our own status writes);
 * - a child (label app.kubernetes.io/managed-by=piko-operator): the
 *   PikoCluster in its controller owner reference;
 * - a Secret appearing or going: its owner, and every PikoCluster of its
 *   namespace that refers to it (Secrets are watched as metadata only);
 * - the data plane's registry Leases and shard ConfigMaps, and its pods:
 *   the cluster in their labels (Lease renewals only when they bring a
 *   node back to life; expiry is a timer, see ReconcileResult).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../dataplane/log/logger';
import type { ConfigMapObject, LeaseObject } from '../../dataplane/registry/kubernetes/objects';
import { LABEL_CLUSTER, parseLease } from '../../dataplane/registry/kubernetes/objects';
import { GROUP, KIND, type PikoCluster } from '../api/pikocluster';
import { LABEL_CLUSTER_NAME, LABEL_CLUSTER_NAMESPACE, TOKEN_REVIEW_SELECTOR } from '../builders/dataplane-role';
import { OWNED_KINDS } from '../builders/desired-children';
import { COMPONENT, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY } from '../builders/names';
import { CachedInformer, type CacheEventHandler } from '../../dataplane/kube/cached-informer';
import { isApiError } from '../../dataplane/kube/errors';
import { objectKey, RESOURCES, resourceFor, type KubeClient, type KubeObject, type ResourceType } from '../../dataplane/kube/client';
import type { OperatorMetrics, ReconcileOutcome } from '../runtime/metrics';
import type { RateLimiter } from '../runtime/rate-limiter';
import { WorkQueue } from '../runtime/work-queue';
import type { EventRecorder } from './event-recorder';
import { Reconciler, controllerOf, type ClusterCaches, type ReconcileResult } from './reconciler';
import { referencesSecret } from './referenced-secrets';
import { clampDelay } from '../../dataplane/time/timer';

export const DEFAULT_WORKERS = 2;
/** Every cluster is reconciled at least this often, whatever the events said. */
export const DEFAULT_RESYNC_PERIOD_MS = 10 * 60_000;
/** How often the apiserver is asked whether it serves the optional kinds (a CRD installed or removed). */
export const DEFAULT_DISCOVERY_INTERVAL_MS = 30_000;

/** Selects the children of every PikoCluster. */
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
/** Selects the registry's Leases and shard ConfigMaps of every cluster (dataplane/registry/kubernetes/objects.ts). */
export const REGISTRY_SELECTOR = `${LABEL_NAME}=piko,${LABEL_COMPONENT}=registry`;
/** Selects the data-plane pods of every cluster (builders/names.ts selectorLabels without the instance). */
export const POD_SELECTOR = `${LABEL_NAME}=piko,${LABEL_COMPONENT}=${COMPONENT}`;

export interface ControllerOptions {
  client: KubeClient;
  /** Watch these namespaces only; undefined or empty: every namespace. */
  namespaces?: readonly string[];
  defaultImage: string;
  /**
   * The ClusterRole bound to the data plane of clusters that admit agents by ServiceAccount.
   * Unset: such clusters are not Ready, and no ClusterRoleBinding is watched.
   */
  tokenReviewerClusterRole?: string;
  /** Where the operator runs, for the NetworkPolicy's admin rule. */
  operatorNamespace?: string;
  events: EventRecorder;
  logger: Logger;
  metrics: OperatorMetrics;
  workers?: number;
  /** A fresh limiter per leadership term; client-go's defaults when unset. */
  rateLimiter?: () => RateLimiter;
  informerBackoff?: { minMs: number; maxMs: number };
  registryGcGraceMs?: number;
  resyncPeriodMs?: number;
  discoveryIntervalMs?: number;
  now?: () => number;
  /** Told after each reconcile (tests wait on it). */
  onReconciled?: (key: string, outcome: ReconcileOutcome) => void;
}

interface Running {
  queue: WorkQueue;
  abort: AbortController;
  workers: Promise<void>[];
  resync: NodeJS.Timeout;
  /** The caches synced and the workers run; until then there is nothing to drain. */
  started: boolean;
}

interface Discovery {
  timer: NodeJS.Timeout | undefined;
  abort: AbortController;
  /** The first pass: what it finds is part of `synced`. */
  first: Promise<void>;
}

export class PikoClusterController {
  readonly reconciler: Reconciler;
  private readonly informers = new Map<string, CachedInformer<KubeObject>>();
  private readonly logger: Logger;
  private readonly metrics: OperatorMetrics;
  private readonly pikoClusters: CachedInformer<PikoCluster>;
  private running: Running | undefined;
  /** Set while stopWorkers({drain: true}) waits, so a loss of leadership meanwhile can cut it short. */
  private draining: Running | undefined;
  private readonly now: () => number;
  /** Owned kinds by kind; an optional kind is here only while served and synced. */
  private readonly owned = new Map<string, CachedInformer<KubeObject>>();
  /** Owned kinds of optional APIs (Gateway API routes), watched while discovery lists them. */
  private readonly optionalKinds: ResourceType[] = [];
  private readonly makeInformer: <T extends KubeObject>(
    name: string,
    type: ResourceType,
    selection: { labelSelector?: string; metadataOnly?: boolean },
  ) => CachedInformer<T>;
  private discovery: Discovery | undefined;
  private readonly toOwner: CacheEventHandler<KubeObject> = {
    onAdd: (o) => this.enqueueOwner(o),
    onUpdate: (_old, o) => this.enqueueOwner(o),
    onDelete: (o) => this.enqueueOwner(o),
  };

  constructor(private readonly options: ControllerOptions) {
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.now = options.now ?? Date.now;
    const namespaces = options.namespaces?.length ? options.namespaces : undefined;

    const informer = <T extends KubeObject>(
      name: string,
      type: ResourceType,
      selection: { labelSelector?: string; metadataOnly?: boolean },
      scope: 'namespaced' | 'cluster' = 'namespaced',
    ): CachedInformer<T> => {
      const cached = new CachedInformer<T>({
        client: options.client,
        type,
        ...(namespaces === undefined || scope === 'cluster' ? {} : { namespaces }),
        ...selection,
        ...(options.informerBackoff === undefined ? {} : { backoff: options.informerBackoff }),
        onError: (err, restartInMs) =>
          this.logger.warn('watch failed, restarting', {
            informer: name,
            restartInMs,
            error: err instanceof Error ? err.message : String(err),
          }),
        onHealthChange: (healthy) => this.metrics.informerHealthy.set({ resource: name }, healthy ? 1 : 0),
      });
      this.metrics.informerHealthy.set({ resource: name }, 0);
      this.informers.set(name, cached as unknown as CachedInformer<KubeObject>);
      return cached;
    };

    this.makeInformer = informer;
    this.pikoClusters = informer<PikoCluster>('pikoclusters', RESOURCES.pikoClusters, {});
    const owned = this.owned;
    for (const { apiVersion, kind, optional } of OWNED_KINDS) {
      const type = resourceFor(apiVersion, kind);
      if (type === undefined) throw new Error(`no resource for owned kind ${apiVersion} ${kind}`);
      // Watched once discovery says the apiserver serves them: see discoverOptionalKinds().
      if (optional !== undefined) {
        this.optionalKinds.push(type);
        continue;
      }
      // Every Secret, as metadata: a Secret a spec refers to carries none of our labels.
      const selection = kind === 'Secret' ? { metadataOnly: true } : { labelSelector: MANAGED_SELECTOR };
      owned.set(kind, informer<KubeObject>(type.plural, type, selection));
    }
    const secrets = owned.get('Secret')!;
    const pods = informer<V1Pod & KubeObject>('pods', RESOURCES.pods, { labelSelector: POD_SELECTOR });
    const leases = informer<LeaseObject>('registry-leases', RESOURCES.leases, { labelSelector: REGISTRY_SELECTOR });
    const shards = informer<ConfigMapObject>('registry-configmaps', RESOURCES.configMaps, { labelSelector: REGISTRY_SELECTOR });

    const tokenReviewBindings =
      options.tokenReviewerClusterRole === undefined
        ? undefined
        : informer<KubeObject>('clusterrolebindings', RESOURCES.clusterRoleBindings, { labelSelector: TOKEN_REVIEW_SELECTOR }, 'cluster');
    const caches: ClusterCaches = {
      pikoClusters: this.pikoClusters,
      owned,
      ...(tokenReviewBindings === undefined ? {} : { tokenReviewBindings }),
      secrets,
      pods: pods as unknown as ClusterCaches['pods'],
      registryLeases: leases,
      registryShards: shards,
      registryHealthy: () => leases.isHealthy && shards.isHealthy,
    };
    this.reconciler = new Reconciler({
      client: options.client,
      caches,
      defaultImage: options.defaultImage,
      ...(options.tokenReviewerClusterRole === undefined ? {} : { tokenReviewerClusterRole: options.tokenReviewerClusterRole }),
      ...(options.operatorNamespace === undefined ? {} : { operatorNamespace: options.operatorNamespace }),
      events: options.events,
      logger: options.logger,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.registryGcGraceMs === undefined ? {} : { registryGcGraceMs: options.registryGcGraceMs }),
    });

    this.pikoClusters.addHandler({
      onAdd: (c) => this.enqueue(objectKey(c.metadata.namespace, c.metadata.name)),
      onUpdate: (old, c) => {
        if (specOrMetaChanged(old, c)) this.enqueue(objectKey(c.metadata.namespace, c.metadata.name));
      },
      onDelete: (c) => this.enqueue(objectKey(c.metadata.namespace, c.metadata.name)),
    });
    for (const [kind, cache] of owned) if (kind !== 'Secret') cache.addHandler(this.toOwner);
    secrets.addHandler({
      // Its coming and going, and for the upstream port's TLS Secret its content (status.upstreamCA).
      onAdd: (s) => this.secretChanged(s),
      onUpdate: (old, s) => {
        if (old.metadata?.resourceVersion !== s.metadata?.resourceVersion) this.upstreamSecretChanged(s);
      },
      onDelete: (s) => this.secretChanged(s),
    });
    pods.addHandler(this.byLabel(LABEL_INSTANCE));
    // A binding left by a cluster deleted while no operator ran reconciles that (gone) cluster, which deletes it.
    const toCluster = (b: KubeObject): void => {
      const labels = b.metadata?.labels ?? {};
      const ns = labels[LABEL_CLUSTER_NAMESPACE];
      const name = labels[LABEL_CLUSTER_NAME];
      if (ns && name) this.enqueue(objectKey(ns, name));
    };
    tokenReviewBindings?.addHandler({ onAdd: toCluster, onUpdate: (_old, b) => toCluster(b), onDelete: toCluster });
    shards.addHandler(this.byLabel(LABEL_CLUSTER));
    const leaseHandler = this.byLabel<LeaseObject>(LABEL_CLUSTER);
    leases.addHandler({
      ...leaseHandler,
      onUpdate: (old, lease) => {
        if (this.leaseNews(old, lease)) leaseHandler.onAdd?.(lease);
      },
    });
  }

  /** PikoClusters as the informer last saw them (the sidecar injector reads them). */
  pikoCluster(namespace: string, name: string): PikoCluster | undefined {
    return this.pikoClusters.get(namespace, name);
  }

  /** Starts every informer, and the discovery of optional kinds; reconciling waits for startWorkers(). */
  startInformers(): void {
    for (const i of this.informers.values()) i.start();
    if (this.discovery !== undefined) return;
    const abort = new AbortController();
    const discovery: Discovery = { timer: undefined, abort, first: Promise.resolve() };
    this.discovery = discovery;
    const interval = clampDelay(this.options.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS);
    const loop = async (): Promise<void> => {
      await this.discoverOptionalKinds(abort.signal);
      if (abort.signal.aborted) return;
      discovery.timer = setTimeout(() => void loop(), interval);
      discovery.timer.unref();
    };
    discovery.first = loop();
  }

  /** Resolves once every informer has completed its first list (optional kinds: those the first discovery found). */
  get synced(): Promise<void> {
    const first = this.discovery?.first ?? Promise.resolve();
    return first.then(() => Promise.all([...this.informers.values()].map((i) => i.synced))).then(() => undefined);
  }

  /** Why the controller is not ready (informers still listing), or undefined when it is. */
  notReady(): string | undefined {
    const waiting = [...this.informers].filter(([, i]) => !i.hasSynced).map(([name]) => name);
    return waiting.length === 0 ? undefined : `waiting for the first list of ${waiting.join(', ')}`;
  }

  /**
   * Watches each optional kind the apiserver serves and forgets each it stopped serving (its CRD
   * was deleted); every cluster is reconciled after a change, so one waiting for the API
   * (Ready=False GatewayAPINotInstalled) gets its objects within an interval of the install.
   * A failed discovery changes nothing and is tried again at the next interval.
   */
  private async discoverOptionalKinds(signal: AbortSignal): Promise<void> {
    for (const type of this.optionalKinds) {
      let served: boolean;
      try {
        served = await this.options.client.served(type, { signal });
      } catch (err) {
        if (signal.aborted) return;
        this.logger.warn('discovery failed', { resource: type.plural, error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      if (signal.aborted) return;
      const informer = this.informers.get(type.plural);
      if (served && informer === undefined) {
        const cache = this.makeInformer<KubeObject>(type.plural, type, { labelSelector: MANAGED_SELECTOR });
        cache.addHandler(this.toOwner);
        cache.start();
        this.logger.info('watching an optional kind the apiserver now serves', { resource: type.plural });
        void cache.synced.then(() => {
          if (this.informers.get(type.plural) !== cache) return;
          this.owned.set(type.kind, cache);
          this.enqueueAllRunning();
        });
      } else if (!served && informer !== undefined) {
        this.informers.delete(type.plural);
        this.owned.delete(type.kind);
        this.metrics.informerHealthy.remove({ resource: type.plural });
        await informer.stop();
        this.logger.info('stopped watching an optional kind the apiserver no longer serves', { resource: type.plural });
        this.enqueueAllRunning();
      }
    }
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /**
   * Starts reconciling (this replica leads): once the caches are synced
   * every known PikoCluster is queued, then events keep the queue fed.
   */
  startWorkers(): void {
    if (this.running !== undefined) return;
    const queue = new WorkQueue({
      ...(this.options.rateLimiter === undefined ? {} : { rateLimiter: this.options.rateLimiter() }),
      onDepthChange: (depth) => this.metrics.queueDepth.set(depth),
    });
    const abort = new AbortController();
    const resyncMs = this.options.resyncPeriodMs ?? DEFAULT_RESYNC_PERIOD_MS;
    const running: Running = {
      queue,
      abort,
      workers: [],
      resync: setInterval(() => this.enqueueAll(queue), clampDelay(resyncMs)),
      started: false,
    };
    running.resync.unref();
    this.running = running;
    const count = this.options.workers ?? DEFAULT_WORKERS;
    // Caches that never sync (the CRD not installed yet) must not keep stopWorkers() waiting.
    const stopped = new Promise<boolean>((resolve) => abort.signal.addEventListener('abort', () => resolve(false), { once: true }));
    const start = Promise.race([this.synced.then(() => true), stopped]).then((synced) => {
      if (!synced || abort.signal.aborted) return false;
      running.started = true;
      this.enqueueAll(queue);
      return true;
    });
    for (let i = 0; i < count; i++) {
      running.workers.push(start.then((synced) => (synced ? this.work(queue, abort.signal) : undefined)));
    }
    this.logger.info('reconciling', { workers: count });
  }

  /**
   * Stops reconciling. `drain` (shutdown while leading) lets queued keys
   * finish first; without it (leadership lost) queued keys are dropped and
   * reconciles under way are aborted at their next request.
   */
  async stopWorkers(options: { drain: boolean }): Promise<void> {
    const running = this.running ?? this.draining;
    if (running === undefined) return;
    this.running = undefined;
    clearInterval(running.resync);
    if (options.drain && running.started && this.draining === undefined) {
      this.draining = running;
      await running.queue.shutDownWithDrain();
      this.draining = undefined;
    } else {
      running.queue.shutDown();
      running.abort.abort();
    }
    await Promise.all(running.workers);
    this.metrics.queueDepth.set(0);
    this.logger.info('stopped reconciling', { drained: options.drain });
  }

  async stopInformers(): Promise<void> {
    const discovery = this.discovery;
    this.discovery = undefined;
    if (discovery !== undefined) {
      discovery.abort.abort();
      clearTimeout(discovery.timer);
      await discovery.first.catch(() => undefined);
    }
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }

  private async work(queue: WorkQueue, signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const stopTimer = this.metrics.reconcileDuration.startTimer();
      let outcome: ReconcileOutcome | undefined;
      try {
        const result: ReconcileResult = await this.reconciler.reconcile(key, signal);
        if (result.retry === true) {
          queue.addRateLimited(key);
          outcome = 'requeue';
        } else {
          queue.forget(key);
          if (result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
          outcome = 'success';
        }
      } catch (err) {
        if (signal.aborted) {
          // Leadership lost mid-reconcile: whoever leads next starts over.
        } else if (isApiError(err, 'CONFLICT')) {
          // Someone (often our own earlier write) changed the object since we read it: retry on fresh state.
          this.logger.debug('conflict, retrying', { cluster: key, error: (err as Error).message });
          queue.addRateLimited(key);
          outcome = 'conflict';
        } else {
          this.logger.warn('reconcile failed', {
            cluster: key,
            retries: queue.numRequeues(key),
            error: err instanceof Error ? err.message : String(err),
          });
          this.metrics.reconcileErrors.inc();
          queue.addRateLimited(key);
          outcome = 'error';
        }
      } finally {
        stopTimer();
        queue.done(key);
        if (outcome !== undefined) {
          this.metrics.reconcileTotal.inc({ result: outcome });
          this.options.onReconciled?.(key, outcome);
        }
      }
    }
  }

  private enqueue(key: string): void {
    this.running?.queue.add(key);
  }

  private enqueueAllRunning(): void {
    if (this.running?.started === true) this.enqueueAll(this.running.queue);
  }

  private enqueueAll(queue: WorkQueue): void {
    for (const c of this.pikoClusters.list()) queue.add(objectKey(c.metadata.namespace, c.metadata.name));
  }

  private enqueueOwner(obj: KubeObject): void {
    const owner = controllerOf(obj);
    if (owner === undefined || owner.kind !== KIND || !owner.apiVersion.startsWith(`${GROUP}/`)) return;
    this.enqueue(objectKey(obj.metadata?.namespace, owner.name));
  }

  private secretChanged(secret: KubeObject): void {
    this.enqueueOwner(secret);
    const namespace = secret.metadata?.namespace ?? '';
    const name = secret.metadata?.name ?? '';
    for (const c of this.pikoClusters.list(namespace)) {
      if (referencesSecret(c, name)) this.enqueue(objectKey(namespace, c.metadata.name));
    }
  }

  private upstreamSecretChanged(secret: KubeObject): void {
    const namespace = secret.metadata?.namespace ?? '';
    const name = secret.metadata?.name ?? '';
    for (const c of this.pikoClusters.list(namespace)) {
      if (c.spec.tls?.upstream?.secretName === name) this.enqueue(objectKey(namespace, c.metadata.name));
    }
  }

  /** Every event of an object enqueues the cluster named by one of its labels. */
  private byLabel<T extends KubeObject>(label: string): CacheEventHandler<T> {
    const enqueue = (o: T): void => {
      const cluster = o.metadata?.labels?.[label];
      if (cluster !== undefined && cluster !== '') this.enqueue(objectKey(o.metadata?.namespace, cluster));
    };
    return { onAdd: enqueue, onUpdate: (_old, o) => enqueue(o), onDelete: enqueue };
  }

  /**
   * A renewal of a live Lease is no news (a pod renews every few seconds);
   * a Lease that changes hands or addresses, or comes back after expiring, is.
   */
  private leaseNews(old: LeaseObject, lease: LeaseObject): boolean {
    const before = parseLease(old);
    const after = parseLease(lease);
    if (before === undefined || after === undefined) return before !== after;
    if (before.nodeId !== after.nodeId || before.proxyAddr !== after.proxyAddr || before.durationMs !== after.durationMs) return true;
    const now = this.now();
    const live = (r: typeof before): boolean => r.renewTimeMs !== undefined && now < r.renewTimeMs + r.durationMs;
    return live(before) !== live(after);
  }
}

function sameMap(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a?.[k] === b?.[k]);
}

/** Drops status-only updates, our own status writes included. */
function specOrMetaChanged(old: PikoCluster, cluster: PikoCluster): boolean {
  const a = old.metadata;
  const b = cluster.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    !sameMap(a.labels, b.labels) ||
    !sameMap(a.annotations, b.annotations)
  );
}
