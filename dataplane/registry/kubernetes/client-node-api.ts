/**
 * KubeApi over @kubernetes/client-node, bound to one namespace; plus where
 * the kubeconfig, the namespace and the pod's identity come from.
 */
import * as fs from 'node:fs';
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  Observable,
  PatchStrategy,
  type KubernetesObject,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import {
  codeForStatus,
  KubeApiError,
  type ConfigMapObject,
  type Informer,
  type InformerHandlers,
  type KubeApi,
  type LeaseObject,
} from './kube-api';
import { FIELD_MANAGER, type PodIdentity } from './objects';

const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** The kubeconfig from a file, or from the usual places: KUBECONFIG, ~/.kube/config, the in-cluster service account. */
export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  return kc;
}

/**
 * The namespace of the registry's objects: the configured one, else the
 * pod's (downward API env, then the service account's namespace file), else
 * the kubeconfig context's (development outside a cluster), else `default`.
 */
export function resolveNamespace(
  configured: string | undefined,
  env: NodeJS.ProcessEnv,
  kc?: KubeConfig,
  namespaceFile = SERVICE_ACCOUNT_NAMESPACE_FILE,
): string {
  if (configured) return configured;
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    const ns = fs.readFileSync(namespaceFile, 'utf8').trim();
    if (ns) return ns;
  } catch {
    // Not in a pod: fall through to the kubeconfig.
  }
  const context = kc?.getContextObject(kc.getCurrentContext());
  return context?.namespace || 'default';
}

/** The pod from the downward API env (POD_NAME, POD_UID), when both are set. */
export function podFromEnv(env: NodeJS.ProcessEnv): PodIdentity | undefined {
  const name = env.POD_NAME;
  const uid = env.POD_UID;
  return name && uid ? { name, uid } : undefined;
}

/** A request failure as a KubeApiError with a stable code. */
export function toKubeApiError(err: unknown, what: string): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof ApiException) {
    const status = err.code;
    const message = apiMessage(err.body) ?? `HTTP ${status}`;
    return new KubeApiError(codeForStatus(status), `${what}: ${message}`, status, { cause: err });
  }
  // The watch reports a non-200 answer as a plain Error with statusCode.
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number') {
    return new KubeApiError(codeForStatus(statusCode), `${what}: HTTP ${statusCode}`, statusCode, { cause: err });
  }
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new KubeApiError('TIMEOUT', `${what}: request timed out`, undefined, { cause: err });
  }
  const detail = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
  return new KubeApiError('UNAVAILABLE', `${what}: ${detail}`, undefined, { cause: err });
}

function apiMessage(body: unknown): string | undefined {
  if (typeof body === 'string') {
    try {
      return apiMessage(JSON.parse(body));
    } catch {
      return body.slice(0, 200) || undefined;
    }
  }
  const message = (body as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : undefined;
}

function middleware(pre: (ctx: RequestContext) => void): ObservableMiddleware {
  return {
    pre: (ctx: RequestContext) => {
      pre(ctx);
      return new Observable(Promise.resolve(ctx));
    },
    post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
  };
}

export interface ClientNodeKubeApiOptions {
  /** Per request, so a hung apiserver cannot stall renewals or shutdown. */
  requestTimeoutMs?: number;
}

export class ClientNodeKubeApi implements KubeApi {
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly requestTimeoutMs: number;

  constructor(
    private readonly kc: KubeConfig,
    readonly namespace: string,
    options: ClientNodeKubeApiOptions = {},
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  private options(apply = false): { middleware: ObservableMiddleware[]; middlewareMergeStrategy: 'append' } {
    const ms = this.requestTimeoutMs;
    const list = [middleware((ctx) => ctx.setSignal(AbortSignal.timeout(ms)))];
    if (apply) list.push(middleware((ctx) => ctx.setHeaderParam('Content-Type', PatchStrategy.ServerSideApply)));
    return { middleware: list, middlewareMergeStrategy: 'append' };
  }

  async applyLease(lease: LeaseObject): Promise<LeaseObject> {
    const name = lease.metadata.name;
    try {
      const out = await this.coordination.patchNamespacedLease(
        { name, namespace: this.namespace, body: lease, fieldManager: FIELD_MANAGER, force: true },
        this.options(true),
      );
      return out as unknown as LeaseObject;
    } catch (err) {
      throw toKubeApiError(err, `apply Lease ${this.namespace}/${name}`);
    }
  }

  async applyConfigMap(configMap: ConfigMapObject): Promise<ConfigMapObject> {
    const name = configMap.metadata.name;
    try {
      const out = await this.core.patchNamespacedConfigMap(
        { name, namespace: this.namespace, body: configMap, fieldManager: FIELD_MANAGER, force: true },
        this.options(true),
      );
      return out as unknown as ConfigMapObject;
    } catch (err) {
      throw toKubeApiError(err, `apply ConfigMap ${this.namespace}/${name}`);
    }
  }

  async deleteLease(name: string): Promise<boolean> {
    return this.deleted(`delete Lease ${this.namespace}/${name}`, () =>
      this.coordination.deleteNamespacedLease({ name, namespace: this.namespace }, this.options()),
    );
  }

  async deleteConfigMap(name: string): Promise<boolean> {
    return this.deleted(`delete ConfigMap ${this.namespace}/${name}`, () =>
      this.core.deleteNamespacedConfigMap({ name, namespace: this.namespace }, this.options()),
    );
  }

  private async deleted(what: string, call: () => Promise<unknown>): Promise<boolean> {
    try {
      await call();
      return true;
    } catch (err) {
      const e = toKubeApiError(err, what);
      if (e.code === 'NOT_FOUND') return false;
      throw e;
    }
  }

  leaseInformer(labelSelector: string, handlers: InformerHandlers<LeaseObject>): Informer {
    return this.informer(
      `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`,
      labelSelector,
      handlers,
      () => this.coordination.listNamespacedLease({ namespace: this.namespace, labelSelector }, this.options()),
    );
  }

  configMapInformer(labelSelector: string, handlers: InformerHandlers<ConfigMapObject>): Informer {
    return this.informer(
      `/api/v1/namespaces/${this.namespace}/configmaps`,
      labelSelector,
      handlers,
      () => this.core.listNamespacedConfigMap({ namespace: this.namespace, labelSelector }, this.options()),
    );
  }

  private informer<T>(
    path: string,
    labelSelector: string,
    handlers: InformerHandlers<T>,
    list: () => Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }>,
  ): Informer {
    const informer = makeInformer<KubernetesObject>(
      this.kc,
      path,
      async () => {
        const result = await list();
        // The informer hands the items to the add/update callbacks right
        // after this promise settles, all before the next macrotask.
        setImmediate(() => handlers.listed());
        return result as never;
      },
      labelSelector,
    );
    informer.on('add', (obj) => handlers.upsert(obj as T));
    informer.on('update', (obj) => handlers.upsert(obj as T));
    informer.on('delete', (obj) => handlers.remove(obj as T));
    informer.on('error', (err?: unknown) => handlers.error(toKubeApiError(err, `watch ${path}`)));
    return informer;
  }
}
