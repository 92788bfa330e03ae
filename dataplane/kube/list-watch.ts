/**
 * One list-then-watch loop over a KubeClient, with the semantics of
 * client-node's ListWatch (src/cache.ts) and client-go's reflector:
 * - list, deliver every object (and the removal of objects a relist no
 *   longer returns), then watch from the list's resourceVersion;
 * - follow the resourceVersion of events and bookmarks, and resume the
 *   watch from it when the server ends the watch;
 * - 410 Gone (the version is too old) → relist;
 * - any other failure: stop and report through `error`; start() again
 *   resumes from the last resourceVersion (ResilientInformer does that with
 *   backoff).
 */
import { keyOf, type KubeClient, type KubeObject, type ResourceType, type WatchHandle } from './client';
import { KubeApiError } from './errors';
import type { Informer, InformerHandlers } from './informer';

export interface ListWatchOptions<T> {
  client: KubeClient;
  type: ResourceType;
  /** Undefined: all namespaces. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  metadataOnly?: boolean;
  handlers: InformerHandlers<T>;
  /** Seconds the server keeps one watch open; client-go picks 5-10 min at random, so watches do not end together. */
  watchTimeoutSeconds?: () => number;
}

const defaultWatchTimeout = (): number => Math.floor(300 * (1 + Math.random()));

export class ListWatch<T extends KubeObject> implements Informer {
  private resourceVersion = '';
  /** What was last delivered, by key: a relist removes what it no longer returns. */
  private readonly known = new Map<string, T>();
  /** Bumped by start() and stop(), so a loop left over from an earlier run goes quiet. */
  private run = 0;
  private handle: WatchHandle | undefined;

  constructor(private readonly options: ListWatchOptions<T>) {}

  async start(): Promise<void> {
    const run = ++this.run;
    this.handle?.stop();
    void this.loop(run);
  }

  async stop(): Promise<void> {
    this.run++;
    this.handle?.stop();
    this.handle = undefined;
  }

  private async loop(run: number): Promise<void> {
    const { client, type, handlers } = this.options;
    const live = (): boolean => run === this.run;
    try {
      while (live()) {
        if (this.resourceVersion === '') {
          await this.relist(live);
          if (!live()) return;
        }
        let failure: KubeApiError | undefined;
        const handle = client.watch<T>(
          type,
          {
            ...this.selection(),
            resourceVersion: this.resourceVersion,
            timeoutSeconds: (this.options.watchTimeoutSeconds ?? defaultWatchTimeout)(),
          },
          (event) => {
            if (!live() || failure !== undefined) return;
            switch (event.type) {
              case 'ADDED':
              case 'MODIFIED':
                this.upsert(event.object);
                break;
              case 'DELETED':
                this.remove(event.object);
                break;
              case 'BOOKMARK':
                if (event.resourceVersion !== '') this.resourceVersion = event.resourceVersion;
                break;
              case 'ERROR': {
                const code = event.status.code ?? 0;
                failure = new KubeApiError(
                  code === 410 ? 'GONE' : 'SERVER_ERROR',
                  `watch ${type.plural}: ${event.status.message ?? event.status.reason ?? 'error event'}`,
                  code || undefined,
                );
                this.handle?.stop();
                break;
              }
            }
          },
        );
        this.handle = handle;
        try {
          await handle.done;
        } catch (err) {
          failure ??= err instanceof KubeApiError ? err : new KubeApiError('UNKNOWN', String(err), undefined, { cause: err });
        }
        if (failure === undefined) continue;
        if (failure.code === 'GONE') {
          // The version fell out of the apiserver's window: start again from a list.
          this.resourceVersion = '';
          continue;
        }
        throw failure;
      }
    } catch (err) {
      if (!live()) return;
      this.run++;
      handlers.error(err);
    }
  }

  private selection(): { namespace?: string; labelSelector?: string; fieldSelector?: string; metadataOnly?: boolean } {
    const { namespace, labelSelector, fieldSelector, metadataOnly } = this.options;
    return {
      ...(namespace === undefined ? {} : { namespace }),
      ...(labelSelector === undefined ? {} : { labelSelector }),
      ...(fieldSelector === undefined ? {} : { fieldSelector }),
      ...(metadataOnly === undefined ? {} : { metadataOnly }),
    };
  }

  private async relist(live: () => boolean): Promise<void> {
    const list = await this.options.client.list<T>(this.options.type, this.selection());
    if (!live()) return;
    const seen = new Set<string>();
    for (const item of list.items) {
      seen.add(keyOf(item));
      this.upsert(item);
    }
    for (const [key, obj] of this.known) {
      if (!seen.has(key)) this.remove(obj);
    }
    this.resourceVersion = list.resourceVersion;
    this.options.handlers.listed();
  }

  private upsert(obj: T): void {
    const key = keyOf(obj);
    const rv = obj.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '') this.resourceVersion = rv;
    const before = this.known.get(key);
    // A relist returns everything again: only what changed is news.
    if (before !== undefined && rv !== undefined && before.metadata?.resourceVersion === rv) return;
    this.known.set(key, obj);
    this.options.handlers.upsert(obj);
  }

  private remove(obj: T): void {
    const key = keyOf(obj);
    const rv = obj.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '') this.resourceVersion = rv;
    const before = this.known.get(key);
    if (before === undefined) return;
    this.known.delete(key);
    this.options.handlers.remove(obj);
  }
}
