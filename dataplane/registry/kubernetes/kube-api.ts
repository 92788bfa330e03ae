/**
 * The Kubernetes verbs the registry uses, as a small interface, so the
 * sharding, batching, index and expiry logic is tested without a cluster.
 * `client-node-api.ts` implements it over @kubernetes/client-node.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/**
 * Times are MicroTime strings on the wire; a list decoded by the generated
 * client turns them into Date objects, so readers accept both.
 */
export type KubeTime = string | Date;

export interface LeaseObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: ObjectMeta;
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: KubeTime;
    renewTime?: KubeTime;
  };
}

export interface ConfigMapObject {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: ObjectMeta;
  data?: Record<string, string>;
}

export type KubeApiErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'GONE'
  | 'FORBIDDEN'
  | 'UNAUTHORIZED'
  | 'INVALID'
  | 'TOO_MANY_REQUESTS'
  | 'TIMEOUT'
  | 'UNAVAILABLE'
  | 'SERVER_ERROR'
  | 'UNKNOWN';

/** A failed apiserver request; callers branch on `code`. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';

  constructor(
    readonly code: KubeApiErrorCode,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const STATUS_CODES: Readonly<Record<number, KubeApiErrorCode>> = {
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  410: 'GONE',
  422: 'INVALID',
  429: 'TOO_MANY_REQUESTS',
  503: 'UNAVAILABLE',
  504: 'TIMEOUT',
};

/** Maps an HTTP status of the apiserver to an error code. */
export function codeForStatus(status: number): KubeApiErrorCode {
  return STATUS_CODES[status] ?? (status >= 500 ? 'SERVER_ERROR' : 'UNKNOWN');
}

/** Callbacks of one informer; invoked synchronously, so they must not throw. */
export interface InformerHandlers<T> {
  /** Added or changed (also once per object of every list). */
  upsert(obj: T): void;
  /** Deleted, or missing from a relist. */
  remove(obj: T): void;
  /** A list completed and its objects were delivered. */
  listed(): void;
  /** The informer stopped on this error; it will not go on by itself. */
  error(err: unknown): void;
}

/**
 * A list-then-watch loop filtered by a label selector. It relists on 410
 * Gone and reconnects when the server ends a watch, but stops on any other
 * error after calling `error`; `start()` again resumes it.
 */
export interface Informer {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface KubeApi {
  /** Server-side apply (create or update) of the whole object; resolves to the stored object. */
  applyLease(lease: LeaseObject): Promise<LeaseObject>;
  applyConfigMap(configMap: ConfigMapObject): Promise<ConfigMapObject>;
  /** Resolves false when the object was already gone (404). */
  deleteLease(name: string): Promise<boolean>;
  deleteConfigMap(name: string): Promise<boolean>;
  leaseInformer(labelSelector: string, handlers: InformerHandlers<LeaseObject>): Informer;
  configMapInformer(labelSelector: string, handlers: InformerHandlers<ConfigMapObject>): Informer;
}
