/**
 * The one in-memory apiserver behind the KubeClient interface, for the operator's and the
 * registry's unit tests: objects get uids, resourceVersions and generations as the real one hands
 * them out, writes are recorded, watches see every change, and any call can be made to fail, or
 * the whole server taken down (`down`) as a stopped apiserver is. Several clients (pods) share it
 * by sharing the instance.
 */
import { KubeApiError } from '../../../dataplane/kube/errors';
import {
  type ApplyOptions,
  type DeleteOptions,
  type KubeClient,
  type KubeObject,
  type ListOptions,
  type ListResult,
  type RequestOptions,
  type ResourceType,
  type WatchEvent,
  type WatchHandle,
  type WatchOptions,
  type WriteObject,
} from '../../../dataplane/kube/client';

type Stored = KubeObject & Record<string, unknown>;
export type Verb = 'get' | 'list' | 'watch' | 'apply' | 'create' | 'update' | 'delete';

export interface Call {
  verb: Verb;
  resource: string;
  namespace: string;
  name: string;
}

/** A write as the registry's tests look at it: which kind, which verb, which name, and whether it failed. */
export interface Write {
  kind: string;
  operation: Verb;
  name: string;
  ok: boolean;
}

interface Watcher {
  plural: string;
  options: WatchOptions;
  onEvent: (event: WatchEvent<KubeObject>) => void;
  end: (err?: unknown) => void;
}

const WRITES: readonly Verb[] = ['apply', 'create', 'update', 'delete'];

function matches(obj: KubeObject, options: ListOptions): boolean {
  if (options.namespace !== undefined && options.namespace !== '' && obj.metadata?.namespace !== options.namespace) return false;
  for (const term of (options.labelSelector ?? '').split(',').filter((t) => t !== '')) {
    const [k, v] = term.split('=') as [string, string];
    if (obj.metadata?.labels?.[k] !== v) return false;
  }
  for (const term of (options.fieldSelector ?? '').split(',').filter((t) => t !== '')) {
    const [k, v] = term.split('=') as [string, string];
    if (k === 'metadata.name' && obj.metadata?.name !== v) return false;
  }
  return true;
}

export class FakeKubeClient implements KubeClient {
  readonly calls: Call[] = [];
  readonly writeLog: Write[] = [];
  /** Writes fail while open watches go on, as while an apiserver shuts down gracefully. */
  refuseWrites = false;
  /** The next write of an object of that name fails once with this error. */
  readonly failNext = new Map<string, unknown>();
  private isDown = false;
  /** Every change, so a watch from a resourceVersion first gets what happened since, as from the apiserver's watch cache. */
  private readonly history: { plural: string; rv: number; event: WatchEvent<KubeObject> }[] = [];
  /** A watch from before this version gets 410 Gone, as after etcd's compaction. */
  private compactedRv = 0;
  private readonly objects = new Map<string, Stored>();
  private readonly watchers = new Set<Watcher>();
  private readonly failures: { verb: Verb; plural?: string; err: unknown; times: number }[] = [];
  private rv = 100;
  private uid = 0;
  /** Plurals served() says are not served, as kinds of CRDs not installed; every other one is. */
  readonly notServed = new Set<string>();

  /** Writes recorded so far, as `verb resource ns/name`. */
  writes(): string[] {
    return this.calls.filter((c) => WRITES.includes(c.verb)).map((c) => `${c.verb} ${c.resource} ${c.namespace}/${c.name}`);
  }

  /** The next `times` calls of `verb` (on `plural`, if given) fail with `err`. */
  fail(verb: Verb, err: unknown, options: { plural?: string; times?: number } = {}): void {
    this.failures.push({ verb, err, times: options.times ?? 1, ...(options.plural === undefined ? {} : { plural: options.plural }) });
  }

  /** Every call fails and every open watch ends with UNAVAILABLE while true, as a stopped apiserver. */
  get down(): boolean {
    return this.isDown;
  }

  set down(value: boolean) {
    this.isDown = value;
    if (value) for (const w of [...this.watchers]) w.end(unavailable());
  }

  /** Forgets the change history: a watch from an earlier resourceVersion now ends with 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history.length = 0;
  }

  /** The writes of one kind (and verb), in order. */
  writesOf(kind: string, operation?: Verb): Write[] {
    return this.writeLog.filter((w) => w.kind === kind && (operation === undefined || w.operation === operation));
  }

  /** The stored objects of a resource (in one namespace, if given) by name. */
  objectsOf<T extends KubeObject = Stored>(type: ResourceType, namespace?: string): Map<string, T> {
    return new Map(
      this.all<T>(type)
        .filter((o) => namespace === undefined || o.metadata?.namespace === namespace)
        .map((o) => [o.metadata?.name ?? '', o]),
    );
  }

  /** A stored object, or undefined. */
  stored<T extends KubeObject = Stored>(type: ResourceType, namespace: string, name: string): T | undefined {
    return this.objects.get(this.key(type.plural, namespace, name)) as T | undefined;
  }

  /** Every stored object of a resource, as an informer cache would hold them. */
  all<T extends KubeObject = Stored>(type: ResourceType): T[] {
    return [...this.objects.entries()].filter(([k]) => k.startsWith(`${type.plural}/`)).map(([, o]) => o as T);
  }

  /** A read-only cache view of one resource. */
  cache<T extends KubeObject = Stored>(type: ResourceType): { get(ns: string, name: string): T | undefined; list(ns?: string): T[] } {
    return {
      get: (ns, name) => this.stored<T>(type, ns, name),
      list: (ns) => this.all<T>(type).filter((o) => ns === undefined || o.metadata?.namespace === ns),
    };
  }

  /** Stores an object as someone else would (no call recorded), and tells watchers. */
  put<O extends KubeObject>(type: ResourceType, object: O): Stored {
    return this.store(type, structuredClone(object) as Stored);
  }

  /** Removes an object as someone else would. */
  remove(type: ResourceType, namespace: string, name: string): void {
    const key = this.key(type.plural, namespace, name);
    const obj = this.objects.get(key);
    if (obj === undefined) return;
    this.objects.delete(key);
    this.rv++;
    this.notify(type.plural, { type: 'DELETED', object: { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } } });
  }

  /** Ends every open watch of a resource with an error (GONE for 410) or cleanly. */
  endWatches(plural: string, err?: unknown): void {
    for (const w of [...this.watchers]) if (w.plural === plural) w.end(err);
  }

  /** Sends an event to the open watches of a resource as the apiserver would. */
  sendWatchEvent(plural: string, event: WatchEvent<KubeObject>): void {
    this.notify(plural, event);
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  async get<T extends KubeObject>(type: ResourceType, namespace: string, name: string, _options?: RequestOptions): Promise<T> {
    this.call('get', type, namespace, name);
    const obj = this.stored<T>(type, namespace, name);
    if (obj === undefined) throw new KubeApiError('NOT_FOUND', `${type.plural} "${name}" not found`, 404);
    return structuredClone(obj);
  }

  async list<T extends KubeObject>(type: ResourceType, options: ListOptions = {}): Promise<ListResult<T>> {
    this.call('list', type, options.namespace ?? '', '');
    return {
      items: this.all<T>(type)
        .filter((o) => matches(o, options))
        .map((o) => structuredClone(o)),
      resourceVersion: String(this.rv),
    };
  }

  watch<T extends KubeObject>(type: ResourceType, options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): WatchHandle {
    this.calls.push({ verb: 'watch', resource: type.plural, namespace: options.namespace ?? '', name: '' });
    let end!: (err?: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      end = (err?: unknown) => {
        this.watchers.delete(watcher);
        if (err === undefined) resolve();
        else reject(err);
      };
    });
    const watcher: Watcher = { plural: type.plural, options, onEvent: onEvent as Watcher['onEvent'], end: (err) => end(err) };
    const failure = this.isDown ? unavailable() : this.takeFailure('watch', type.plural);
    if (failure !== undefined) {
      end(failure);
    } else {
      const since = Number(options.resourceVersion || NaN);
      if (since < this.compactedRv) {
        end(new KubeApiError('GONE', `too old resource version: ${since} (${this.compactedRv})`, 410));
        return { done, stop: () => end() };
      }
      if (Number.isFinite(since)) {
        for (const h of this.history) {
          if (h.plural === type.plural && h.rv > since && (!('object' in h.event) || matches(h.event.object, options)))
            watcher.onEvent(h.event);
        }
      }
      this.watchers.add(watcher);
    }
    return { done, stop: () => end() };
  }

  async apply<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options: ApplyOptions = {}): Promise<T> {
    const { namespace, name } = this.identity(object);
    this.call('apply', type, namespace, name, options.subresource);
    const key = this.key(type.plural, namespace, name);
    const existing = this.objects.get(key);
    const wantRv = object.metadata?.resourceVersion;
    if (wantRv !== undefined && wantRv !== '' && existing?.metadata?.resourceVersion !== wantRv) {
      throw new KubeApiError('CONFLICT', `${type.plural} "${name}": the object has been modified`, 409);
    }
    const body = structuredClone(object) as Stored;
    let next: Stored;
    if (options.subresource === 'status') {
      if (existing === undefined) throw new KubeApiError('NOT_FOUND', `${type.plural} "${name}" not found`, 404);
      next = { ...existing, status: body['status'] };
    } else {
      // Apply of a whole object: what it sets replaces what was there; status stays.
      next = { ...body, ...(existing?.['status'] === undefined ? {} : { status: existing['status'] }) };
      next.metadata = { ...body.metadata, ...(existing?.metadata?.uid === undefined ? {} : { uid: existing.metadata.uid }) };
      if (existing?.metadata?.generation !== undefined) next.metadata.generation = existing.metadata.generation;
    }
    if (existing !== undefined && JSON.stringify(strip(existing)) === JSON.stringify(strip(next))) return structuredClone(existing) as T;
    return structuredClone(this.store(type, next)) as T;
  }

  async create<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, _options?: RequestOptions): Promise<T> {
    const { namespace, name } = this.identity(object);
    this.call('create', type, namespace, name);
    if (this.objects.has(this.key(type.plural, namespace, name))) {
      throw new KubeApiError('CONFLICT', `${type.plural} "${name}" already exists`, 409);
    }
    return structuredClone(this.store(type, structuredClone(object) as Stored)) as T;
  }

  async update<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, _options?: RequestOptions): Promise<T> {
    const { namespace, name } = this.identity(object);
    this.call('update', type, namespace, name);
    const existing = this.objects.get(this.key(type.plural, namespace, name));
    if (existing === undefined) throw new KubeApiError('NOT_FOUND', `${type.plural} "${name}" not found`, 404);
    if (existing.metadata?.resourceVersion !== object.metadata?.resourceVersion) {
      throw new KubeApiError('CONFLICT', `${type.plural} "${name}": the object has been modified`, 409);
    }
    return structuredClone(this.store(type, structuredClone(object) as Stored)) as T;
  }

  async served(type: ResourceType, _options?: RequestOptions): Promise<boolean> {
    if (this.isDown) throw unavailable();
    return !this.notServed.has(type.plural);
  }

  async delete(type: ResourceType, namespace: string, name: string, options: DeleteOptions = {}): Promise<boolean> {
    this.call('delete', type, namespace, name);
    const existing = this.stored(type, namespace, name);
    if (existing === undefined) return false;
    const pre = options.preconditions;
    if (
      (pre?.uid !== undefined && pre.uid !== existing.metadata?.uid) ||
      (pre?.resourceVersion !== undefined && pre.resourceVersion !== existing.metadata?.resourceVersion)
    ) {
      throw new KubeApiError('CONFLICT', `${type.plural} "${name}": precondition failed`, 409);
    }
    this.remove(type, namespace, name);
    return true;
  }

  private call(verb: Verb, type: ResourceType, namespace: string, name: string, subresource?: string): void {
    this.calls.push({ verb, resource: subresource === undefined ? type.plural : `${type.plural}/${subresource}`, namespace, name });
    const write = WRITES.includes(verb);
    let failure = this.isDown || (write && this.refuseWrites) ? unavailable() : this.takeFailure(verb, type.plural);
    if (failure === undefined && write && this.failNext.has(name)) {
      failure = this.failNext.get(name);
      this.failNext.delete(name);
    }
    if (write) this.writeLog.push({ kind: type.kind, operation: verb, name, ok: failure === undefined });
    if (failure !== undefined) throw failure;
  }

  private takeFailure(verb: Verb, plural: string): unknown {
    const i = this.failures.findIndex((f) => f.verb === verb && (f.plural === undefined || f.plural === plural));
    if (i < 0) return undefined;
    const f = this.failures[i]!;
    if (--f.times <= 0) this.failures.splice(i, 1);
    return f.err;
  }

  private identity(object: WriteObject): { namespace: string; name: string } {
    return { namespace: object.metadata?.namespace ?? '', name: object.metadata?.name ?? '' };
  }

  private key(plural: string, namespace: string, name: string): string {
    return `${plural}/${namespace}/${name}`;
  }

  private store(type: ResourceType, obj: Stored): Stored {
    const namespace = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    const key = this.key(type.plural, namespace, name);
    const existing = this.objects.get(key);
    this.rv++;
    obj.metadata = { ...obj.metadata, resourceVersion: String(this.rv) };
    obj.metadata.uid ??= existing?.metadata?.uid ?? `uid-${++this.uid}`;
    if (obj['spec'] !== undefined) {
      const specChanged = existing === undefined || JSON.stringify(existing['spec']) !== JSON.stringify(obj['spec']);
      const before = existing?.metadata?.generation ?? 0;
      obj.metadata.generation = specChanged ? before + 1 : before;
    }
    this.objects.set(key, obj);
    this.notify(type.plural, { type: existing === undefined ? 'ADDED' : 'MODIFIED', object: structuredClone(obj) });
    return obj;
  }

  private notify(plural: string, event: WatchEvent<KubeObject>): void {
    if ('object' in event) this.history.push({ plural, rv: Number(event.object.metadata?.resourceVersion), event: structuredClone(event) });
    for (const w of [...this.watchers]) {
      if (w.plural !== plural) continue;
      if ('object' in event && !matches(event.object, w.options)) continue;
      w.onEvent(event);
    }
  }
}

function unavailable(): KubeApiError {
  return new KubeApiError('UNAVAILABLE', 'connection refused');
}

/** An object without what the apiserver maintains, for change detection. */
function strip(obj: Stored): unknown {
  const { resourceVersion: _rv, generation: _g, ...meta } = obj.metadata ?? {};
  return { ...obj, metadata: meta };
}
