/**
 * An informer with its cache: a ListWatch kept running by a ResilientInformer (restart with
 * capped backoff after any error), the
 * objects it delivered indexed by namespace and name, and add / update /
 * delete callbacks. Reconciles read the cache; callbacks only enqueue keys.
 * Given a list of namespaces it runs one ListWatch in each into the same
 * cache: RBAC granted per namespace allows no cluster-wide watch.
 */
import type { KubeClient, KubeObject, ResourceType } from './client';
import { ResilientInformer } from './informer';
import { ListWatch } from './list-watch';

export interface CacheEventHandler<T> {
  onAdd?(obj: T): void;
  onUpdate?(old: T, obj: T): void;
  onDelete?(obj: T): void;
}

export interface CachedInformerOptions {
  client: KubeClient;
  type: ResourceType;
  /** Undefined or empty: all namespaces. */
  namespaces?: readonly string[];
  labelSelector?: string;
  fieldSelector?: string;
  metadataOnly?: boolean;
  /** Restart delays after an error; default ResilientInformer's, 0.5 s doubling to 30 s. */
  backoff?: { minMs: number; maxMs: number };
  /** Each error the informer stopped on, with the delay before its restart (to log it). */
  onError?(err: unknown, restartInMs: number): void;
  /** Healthy: a list or an event arrived since the last error. */
  onHealthChange?(healthy: boolean): void;
  watchTimeoutSeconds?: () => number;
}

export class CachedInformer<T extends KubeObject> {
  readonly type: ResourceType;
  /** Resolves after the first complete list. */
  readonly synced: Promise<void>;
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly handlers: CacheEventHandler<T>[] = [];
  private readonly informers: ResilientInformer<T>[];
  private hasSyncedFlag = false;

  constructor(options: CachedInformerOptions) {
    this.type = options.type;
    const scopes: (string | undefined)[] = options.namespaces?.length ? [...options.namespaces] : [undefined];
    this.informers = scopes.map((namespace) => this.watch(options, namespace));
    this.synced = Promise.all(this.informers.map((i) => i.synced)).then(() => {
      this.hasSyncedFlag = true;
    });
  }

  private watch(options: CachedInformerOptions, namespace: string | undefined): ResilientInformer<T> {
    return new ResilientInformer<T>({
      create: (handlers) =>
        new ListWatch<T>({
          client: options.client,
          type: options.type,
          ...(namespace === undefined ? {} : { namespace }),
          ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
          ...(options.fieldSelector === undefined ? {} : { fieldSelector: options.fieldSelector }),
          ...(options.metadataOnly === undefined ? {} : { metadataOnly: options.metadataOnly }),
          ...(options.watchTimeoutSeconds === undefined ? {} : { watchTimeoutSeconds: options.watchTimeoutSeconds }),
          handlers,
        }),
      upsert: (obj) => this.upsert(obj),
      remove: (obj) => this.remove(obj),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      // Healthy as a whole only while every namespace's watch is.
      ...(options.onHealthChange === undefined ? {} : { onHealthChange: () => options.onHealthChange?.(this.isHealthy) }),
      ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    });
  }

  get hasSynced(): boolean {
    return this.hasSyncedFlag;
  }

  /** A list or an event arrived since the last error. */
  get isHealthy(): boolean {
    return this.informers.every((i) => i.isHealthy);
  }

  get lastError(): unknown {
    return this.informers.find((i) => i.lastError !== undefined)?.lastError;
  }

  addHandler(handler: CacheEventHandler<T>): void {
    this.handlers.push(handler);
  }

  get(namespace: string, name: string): T | undefined {
    return this.byNamespace.get(namespace)?.get(name);
  }

  /** Every cached object, or those of one namespace. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.byNamespace.get(namespace)?.values() ?? [])];
    return [...this.byNamespace.values()].flatMap((m) => [...m.values()]);
  }

  start(): void {
    for (const i of this.informers) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  private upsert(obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let names = this.byNamespace.get(namespace);
    if (names === undefined) {
      names = new Map();
      this.byNamespace.set(namespace, names);
    }
    const old = names.get(name);
    names.set(name, obj);
    for (const h of this.handlers) {
      if (old === undefined) h.onAdd?.(obj);
      else h.onUpdate?.(old, obj);
    }
  }

  private remove(obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const names = this.byNamespace.get(namespace);
    if (names === undefined || !names.delete(obj.metadata?.name ?? '')) return;
    if (names.size === 0) this.byNamespace.delete(namespace);
    for (const h of this.handlers) h.onDelete?.(obj);
  }
}
