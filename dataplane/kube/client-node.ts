/**
 * KubeClient over @kubernetes/client-node: the kubeconfig authenticates each
 * request (tokens, client certificates, exec plugins) and the library's
 * fetch sends it. Paths are built from RESOURCES rather than discovered, so
 * no request goes anywhere the ClusterRole does not name.
 */
import * as fs from 'node:fs';
import { HttpMethod, IsomorphicFetchHttpLibrary, KubeConfig, RequestContext, type ResponseContext } from '@kubernetes/client-node';
import { codeForStatus, KubeApiError } from './errors';
import {
  type ApplyOptions,
  type CreateOptions,
  type DeleteOptions,
  type KubeClient,
  type KubeObject,
  type ListOptions,
  type ListResult,
  type RequestOptions,
  type ResourceType,
  type StatusObject,
  type WatchEvent,
  type WatchHandle,
  type WatchOptions,
  type WriteObject,
} from './client';
import { clampDelay } from '../time/timer';

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** A watch that sends nothing for this long past its own timeout is taken as a dead connection. */
const WATCH_SILENCE_MARGIN_MS = 30_000;
const JSON_TYPE = 'application/json';
const APPLY_TYPE = 'application/apply-patch+yaml';
const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

export interface ClientNodeKubeClientOptions {
  /**
   * The field manager of every write: one per component (operator, data plane), so applies from
   * any replica of it agree on who owns what.
   */
  fieldManager: string;
  /** Per request (not per watch), so a hung apiserver cannot stall a reconcile or a lease renewal. */
  requestTimeoutMs?: number | undefined;
}

const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * The namespace to work in: the configured one, else the pod's (downward API env POD_NAMESPACE,
 * then the service account's namespace file), else the kubeconfig context's (development outside
 * a cluster), else `default`.
 */
export function resolveNamespace(
  configured: string | undefined,
  env: NodeJS.ProcessEnv,
  kc?: KubeConfig,
  namespaceFile = SERVICE_ACCOUNT_NAMESPACE_FILE,
): string {
  if (configured) return configured;
  if (env['POD_NAMESPACE']) return env['POD_NAMESPACE'];
  try {
    const ns = fs.readFileSync(namespaceFile, 'utf8').trim();
    if (ns) return ns;
  } catch {
    // Not in a pod: fall through to the kubeconfig.
  }
  const context = kc?.getContextObject(kc.getCurrentContext());
  return context?.namespace || 'default';
}

/** The kubeconfig from a file, or from the usual places: KUBECONFIG, ~/.kube/config, the in-cluster service account. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

export class ClientNodeKubeClient implements KubeClient {
  private readonly http = new IsomorphicFetchHttpLibrary();
  private readonly server: string;
  private readonly requestTimeoutMs: number;
  private readonly fieldManager: string;
  /**
   * client-node builds a new connection pool for every request; reusing the
   * first keeps one pool (and its keep-alive connections) per client. Only
   * the TLS settings live in it: credentials are applied per request, so
   * rotated tokens are still picked up.
   */
  private dispatcher: Dispatcher | undefined;
  private closed = false;

  constructor(
    private readonly kc: KubeConfig,
    options: ClientNodeKubeClientOptions,
  ) {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.fieldManager = options.fieldManager;
  }

  async get<T extends KubeObject>(type: ResourceType, namespace: string, name: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request('GET', objectPath(type, namespace, name), { signal: options.signal });
    return (await this.json(res, `get ${type.kind} ${namespace}/${name}`)) as T;
  }

  async list<T extends KubeObject>(type: ResourceType, options: ListOptions = {}): Promise<ListResult<T>> {
    const query = selectors(options);
    const res = await this.request('GET', collectionPath(type, options.namespace), {
      query,
      signal: options.signal,
      accept: options.metadataOnly === true ? METADATA_LIST_ACCEPT : JSON_TYPE,
    });
    const body = (await this.json(res, `list ${type.plural}`)) as { items?: T[] | null; metadata?: { resourceVersion?: string } };
    return { items: body.items ?? [], resourceVersion: body.metadata?.resourceVersion ?? '' };
  }

  watch<T extends KubeObject>(type: ResourceType, options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): WatchHandle {
    const abort = new AbortController();
    let stopped = false;
    const signal = options.signal === undefined ? abort.signal : AbortSignal.any([abort.signal, options.signal]);
    const done = this.runWatch(type, options, onEvent, signal, abort).catch((err: unknown) => {
      // Ended by us (stop, a dead connection): a clean end, resumed by the caller.
      if (stopped || abort.signal.aborted) return;
      throw err;
    });
    return {
      done,
      stop: () => {
        stopped = true;
        abort.abort();
      },
    };
  }

  async apply<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options: ApplyOptions = {}): Promise<T> {
    const { namespace, name } = identity(object);
    const path = objectPath(type, namespace, name) + (options.subresource === undefined ? '' : `/${options.subresource}`);
    const res = await this.request('PATCH', path, {
      query: { fieldManager: this.fieldManager, force: 'true' },
      body: JSON.stringify({ apiVersion: object.apiVersion, kind: object.kind, ...object }),
      contentType: APPLY_TYPE,
      signal: options.signal,
    });
    const what = `apply ${type.kind}${options.subresource === undefined ? '' : `/${options.subresource}`} ${namespace}/${name}`;
    return (await this.json(res, what)) as T;
  }

  async create<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options: CreateOptions = {}): Promise<T> {
    // Nameless creates are reviews (TokenReview), which the apiserver answers without storing.
    const namespace = object.metadata?.namespace ?? '';
    const name = object.metadata?.name ?? '';
    const res = await this.request('POST', collectionPath(type, namespace), {
      query: { fieldManager: this.fieldManager, ...(options.dryRun === true ? { dryRun: 'All' } : {}) },
      body: JSON.stringify(object),
      contentType: JSON_TYPE,
      signal: options.signal,
    });
    return (await this.json(res, name === '' ? `create ${type.kind}` : `create ${type.kind} ${namespace}/${name}`)) as T;
  }

  async update<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options: RequestOptions = {}): Promise<T> {
    const { namespace, name } = identity(object);
    const res = await this.request('PUT', objectPath(type, namespace, name), {
      query: { fieldManager: this.fieldManager },
      body: JSON.stringify(object),
      contentType: JSON_TYPE,
      signal: options.signal,
    });
    return (await this.json(res, `update ${type.kind} ${namespace}/${name}`)) as T;
  }

  async delete(type: ResourceType, namespace: string, name: string, options: DeleteOptions = {}): Promise<boolean> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' };
    if (options.preconditions !== undefined) body['preconditions'] = options.preconditions;
    const res = await this.request('DELETE', objectPath(type, namespace, name), {
      body: JSON.stringify(body),
      contentType: JSON_TYPE,
      signal: options.signal,
    });
    if (res.httpStatusCode === 404) {
      await res.body.text();
      return false;
    }
    await this.json(res, `delete ${type.kind} ${namespace}/${name}`);
    return true;
  }

  async served(type: ResourceType, options: RequestOptions = {}): Promise<boolean> {
    const res = await this.request('GET', groupPath(type), { signal: options.signal });
    // The group version is not served at all (no CRD of the group installed).
    if (res.httpStatusCode === 404) {
      await res.body.text();
      return false;
    }
    const list = (await this.json(res, `discover ${groupPath(type)}`)) as { resources?: { name?: string }[] };
    return (list.resources ?? []).some((r) => r.name === type.plural);
  }

  /** Drops the connection pool, watches included; requests after this fail. */
  async close(): Promise<void> {
    this.closed = true;
    const d = this.dispatcher;
    this.dispatcher = undefined;
    // destroy, not close: close would wait for open watches to end by themselves.
    await d?.destroy();
  }

  private async runWatch<T extends KubeObject>(
    type: ResourceType,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
    abort: AbortController,
  ): Promise<void> {
    const what = `watch ${type.plural}`;
    const query: Record<string, string> = {
      ...selectors(options),
      watch: 'true',
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(options.timeoutSeconds),
    };
    if (options.resourceVersion !== '') query['resourceVersion'] = options.resourceVersion;
    // The watch outlives the request timeout by design; a silence timer stands in for it.
    const silenceMs = options.timeoutSeconds * 1000 + WATCH_SILENCE_MARGIN_MS;
    let silence = setTimeout(() => abort.abort(), clampDelay(silenceMs));
    try {
      const res = await this.request('GET', collectionPath(type, options.namespace), {
        query,
        signal,
        accept: options.metadataOnly === true ? METADATA_ACCEPT : JSON_TYPE,
        noTimeout: true,
      });
      if (res.httpStatusCode !== 200) {
        await this.json(res, what);
        return;
      }
      const stream = res.body.stream();
      if (stream === null) return;
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of stream) {
        clearTimeout(silence);
        silence = setTimeout(() => abort.abort(), clampDelay(silenceMs));
        buffered += decoder.decode(chunk, { stream: true });
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== '') onEvent(parseWatchLine<T>(line, what));
          newline = buffered.indexOf('\n');
        }
      }
    } catch (err) {
      throw toApiError(err, what);
    } finally {
      clearTimeout(silence);
    }
  }

  private async request(
    method: HttpMethod,
    path: string,
    options: {
      query?: Record<string, string>;
      body?: string;
      contentType?: string;
      accept?: string;
      signal?: AbortSignal | undefined;
      noTimeout?: boolean;
    },
  ): Promise<ResponseContext> {
    if (this.closed) throw new KubeApiError('UNAVAILABLE', `${method} ${path}: the client is closed`);
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const ctx = new RequestContext(url.toString(), method);
    try {
      await this.kc.applySecurityAuthentication(ctx);
    } catch (err) {
      throw new KubeApiError('UNAUTHORIZED', `${method} ${path}: credentials: ${errorText(err)}`, undefined, { cause: err });
    }
    const fresh = ctx.getDispatcher();
    if (fresh !== undefined) {
      if (this.dispatcher === undefined) this.dispatcher = fresh;
      else if (fresh !== this.dispatcher) {
        ctx.setDispatcher(this.dispatcher);
        void fresh.close();
      }
    }
    ctx.setHeaderParam('Accept', options.accept ?? JSON_TYPE);
    if (options.body !== undefined) {
      ctx.setHeaderParam('Content-Type', options.contentType ?? JSON_TYPE);
      ctx.setBody(options.body);
    }
    const signals: AbortSignal[] = [];
    if (options.signal !== undefined) signals.push(options.signal);
    if (options.noTimeout !== true) signals.push(AbortSignal.timeout(this.requestTimeoutMs));
    if (signals.length > 0) ctx.setSignal(signals.length === 1 ? signals[0]! : AbortSignal.any(signals));
    try {
      return await this.http.send(ctx).toPromise();
    } catch (err) {
      // The caller's own abort is not an API failure: let it through as is.
      if (options.signal?.aborted === true) throw options.signal.reason;
      throw toApiError(err, `${method} ${path}`);
    }
  }

  /** The body of a 2xx answer, parsed; anything else as a KubeApiError with the apiserver's message. */
  private async json(res: ResponseContext, what: string): Promise<unknown> {
    const text = await res.body.text();
    const status = res.httpStatusCode;
    if (status >= 200 && status < 300) {
      try {
        return text === '' ? {} : JSON.parse(text);
      } catch (err) {
        throw new KubeApiError('SERVER_ERROR', `${what}: the answer is not JSON`, status, { cause: err });
      }
    }
    throw new KubeApiError(codeForStatus(status), `${what}: ${statusMessage(text) ?? `HTTP ${status}`}`, status);
  }
}

function identity(object: WriteObject): { namespace: string; name: string } {
  const name = object.metadata?.name;
  if (name === undefined || name === '') throw new TypeError(`${object.kind ?? 'object'} without metadata.name`);
  return { namespace: object.metadata?.namespace ?? '', name };
}

function groupPath(type: ResourceType): string {
  return type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
}

function collectionPath(type: ResourceType, namespace: string | undefined): string {
  const ns = namespace === undefined || namespace === '' ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${groupPath(type)}${ns}/${type.plural}`;
}

function objectPath(type: ResourceType, namespace: string, name: string): string {
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
}

function selectors(options: ListOptions): Record<string, string> {
  const query: Record<string, string> = {};
  if (options.labelSelector !== undefined && options.labelSelector !== '') query['labelSelector'] = options.labelSelector;
  if (options.fieldSelector !== undefined && options.fieldSelector !== '') query['fieldSelector'] = options.fieldSelector;
  return query;
}

function parseWatchLine<T>(line: string, what: string): WatchEvent<T> {
  let event: { type?: unknown; object?: unknown };
  try {
    event = JSON.parse(line) as typeof event;
  } catch (err) {
    throw new KubeApiError('SERVER_ERROR', `${what}: an event is not JSON`, undefined, { cause: err });
  }
  const object = event.object as (KubeObject & StatusObject) | undefined;
  switch (event.type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED':
      return { type: event.type, object: object as T };
    case 'BOOKMARK':
      return { type: 'BOOKMARK', resourceVersion: object?.metadata?.resourceVersion ?? '' };
    case 'ERROR':
      return { type: 'ERROR', status: object ?? {} };
    default:
      throw new KubeApiError('SERVER_ERROR', `${what}: unknown event type ${JSON.stringify(event.type)}`);
  }
}

function statusMessage(text: string): string | undefined {
  try {
    const message = (JSON.parse(text) as { message?: unknown } | null)?.message;
    if (typeof message === 'string') return message;
  } catch {
    // Not a Status object: fall back to the raw text below.
  }
  return text.slice(0, 200) || undefined;
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
}

function toApiError(err: unknown, what: string): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError') return new KubeApiError('TIMEOUT', `${what}: request timed out`, undefined, { cause: err });
  return new KubeApiError('UNAVAILABLE', `${what}: ${errorText(err)}`, undefined, { cause: err });
}
