/**
 * An in-memory apiserver behind the KubeApi interface, shared by several
 * registries: apply stores the object with a new resourceVersion, and every
 * informer whose selector matches hears of it on the next microtask, as a
 * watch would. `down = true` fails every request and stops every informer,
 * as a stopped apiserver does.
 */
import {
  KubeApiError,
  type ConfigMapObject,
  type Informer,
  type InformerHandlers,
  type KubeApi,
  type LeaseObject,
} from '../../../../dataplane/registry/kubernetes/kube-api';

type Kind = 'Lease' | 'ConfigMap';
type AnyObject = LeaseObject | ConfigMapObject;

interface FakeInformer {
  kind: Kind;
  selector: Record<string, string>;
  handlers: InformerHandlers<AnyObject>;
  running: boolean;
}

export interface Write {
  kind: Kind;
  operation: 'apply' | 'delete';
  name: string;
  ok: boolean;
}

function parseSelector(selector: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of selector.split(',')) {
    const [k, v] = part.split('=');
    if (k && v !== undefined) out[k] = v;
  }
  return out;
}

function clone<T>(obj: T): T {
  return JSON.parse(JSON.stringify(obj)) as T;
}

export class FakeApiServer {
  readonly store = { Lease: new Map<string, AnyObject>(), ConfigMap: new Map<string, AnyObject>() };
  readonly writes: Write[] = [];
  private readonly informers = new Set<FakeInformer>();
  private rv = 0;
  private uid = 0;
  private downFlag = false;
  /** Writes fail while open watches go on, as while an apiserver shuts down gracefully. */
  refuseWrites = false;
  /** Next apply of a name fails with this error once. */
  readonly failNext = new Map<string, KubeApiError>();

  get down(): boolean {
    return this.downFlag;
  }

  set down(value: boolean) {
    this.downFlag = value;
    if (!value) return;
    for (const inf of this.informers) {
      if (!inf.running) continue;
      inf.running = false;
      const handlers = inf.handlers;
      queueMicrotask(() => handlers.error(new KubeApiError('UNAVAILABLE', 'connection refused')));
    }
  }

  /** An API client of this server, as one pod would hold. */
  client(): KubeApi {
    return {
      applyLease: (lease) => this.apply('Lease', lease) as Promise<LeaseObject>,
      applyConfigMap: (cm) => this.apply('ConfigMap', cm) as Promise<ConfigMapObject>,
      deleteLease: (name) => this.remove('Lease', name),
      deleteConfigMap: (name) => this.remove('ConfigMap', name),
      leaseInformer: (selector, handlers) => this.informer('Lease', selector, handlers as InformerHandlers<AnyObject>),
      configMapInformer: (selector, handlers) =>
        this.informer('ConfigMap', selector, handlers as InformerHandlers<AnyObject>),
    };
  }

  writesOf(kind: Kind, operation?: 'apply' | 'delete'): Write[] {
    return this.writes.filter((w) => w.kind === kind && (operation === undefined || w.operation === operation));
  }

  /** Stores an object as another party would (a leftover, an edit). */
  put(kind: Kind, obj: AnyObject): AnyObject {
    const stored = clone(obj);
    const prev = this.store[kind].get(stored.metadata.name);
    stored.metadata.uid = prev?.metadata.uid ?? `uid-${++this.uid}`;
    stored.metadata.resourceVersion = String(++this.rv);
    this.store[kind].set(stored.metadata.name, stored);
    this.emit(kind, stored, false);
    return clone(stored);
  }

  /** Deletes an object as another party would (the garbage collector, kubectl). */
  drop(kind: Kind, name: string): void {
    const prev = this.store[kind].get(name);
    if (!prev) return;
    this.store[kind].delete(name);
    this.emit(kind, { ...prev, metadata: { ...prev.metadata, resourceVersion: String(++this.rv) } }, true);
  }

  private async apply(kind: Kind, obj: AnyObject): Promise<AnyObject> {
    await Promise.resolve();
    const name = obj.metadata.name;
    const failure = this.failNext.get(name);
    if (this.downFlag || this.refuseWrites || failure) {
      this.failNext.delete(name);
      this.writes.push({ kind, operation: 'apply', name, ok: false });
      throw failure ?? new KubeApiError('UNAVAILABLE', 'connection refused');
    }
    this.writes.push({ kind, operation: 'apply', name, ok: true });
    return this.put(kind, obj);
  }

  private async remove(kind: Kind, name: string): Promise<boolean> {
    await Promise.resolve();
    if (this.downFlag || this.refuseWrites) {
      this.writes.push({ kind, operation: 'delete', name, ok: false });
      throw new KubeApiError('UNAVAILABLE', 'connection refused');
    }
    this.writes.push({ kind, operation: 'delete', name, ok: true });
    if (!this.store[kind].has(name)) return false;
    this.drop(kind, name);
    return true;
  }

  private matches(inf: FakeInformer, obj: AnyObject): boolean {
    return Object.entries(inf.selector).every(([k, v]) => obj.metadata.labels?.[k] === v);
  }

  private emit(kind: Kind, obj: AnyObject, deleted: boolean): void {
    for (const inf of this.informers) {
      if (inf.kind !== kind || !inf.running || !this.matches(inf, obj)) continue;
      const copy = clone(obj);
      queueMicrotask(() => {
        if (!inf.running) return;
        if (deleted) inf.handlers.remove(copy);
        else inf.handlers.upsert(copy);
      });
    }
  }

  private informer(kind: Kind, selector: string, handlers: InformerHandlers<AnyObject>): Informer {
    const inf: FakeInformer = { kind, selector: parseSelector(selector), handlers, running: false };
    this.informers.add(inf);
    // What the informer last delivered, so a restart relists with deletions, as the real one does after 410.
    const known = new Map<string, AnyObject>();
    const wrapped: InformerHandlers<AnyObject> = {
      upsert: (o) => {
        known.set(o.metadata.name, o);
        handlers.upsert(o);
      },
      remove: (o) => {
        known.delete(o.metadata.name);
        handlers.remove(o);
      },
      listed: () => handlers.listed(),
      error: (e) => handlers.error(e),
    };
    inf.handlers = wrapped;
    return {
      start: async () => {
        await Promise.resolve();
        if (this.downFlag) {
          queueMicrotask(() => wrapped.error(new KubeApiError('UNAVAILABLE', 'connection refused')));
          return;
        }
        inf.running = true;
        this.informers.add(inf);
        const items = [...this.store[kind].values()].filter((o) => this.matches(inf, o));
        const names = new Set(items.map((o) => o.metadata.name));
        for (const [name, o] of known) if (!names.has(name)) wrapped.remove(o);
        for (const o of items) wrapped.upsert(clone(o));
        wrapped.listed();
      },
      stop: async () => {
        inf.running = false;
      },
    };
  }
}
