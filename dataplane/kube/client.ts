/**
 * The Kubernetes verbs the operator and the data plane's registry use, as one small interface,
 * so the controller, the registry, the informers and leader election are tested without a
 * cluster (test/unit/kube/fake-kube-client.ts). `client-node.ts` implements it over
 * @kubernetes/client-node. Every request names one of RESOURCES, and the RBAC rules of the
 * operator (operator/operator-role.ts) and of the data plane (dataplane/registry/kubernetes/registry-verbs.ts) grant
 * exactly the verbs used on them.
 *
 * Objects travel as the JSON the apiserver speaks (times stay RFC 3339
 * strings), never as the generated client's model classes: the same shape
 * comes from a list, a watch and a write, so caches and comparisons never
 * mix the two.
 */

export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** The URL and RBAC name. */
  readonly plural: string;
}

export const RESOURCES = {
  pikoClusters: { group: 'piko.dev', version: 'v1alpha1', kind: 'PikoCluster', plural: 'pikoclusters' },
  statefulSets: { group: 'apps', version: 'v1', kind: 'StatefulSet', plural: 'statefulsets' },
  services: { group: '', version: 'v1', kind: 'Service', plural: 'services' },
  configMaps: { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
  secrets: { group: '', version: 'v1', kind: 'Secret', plural: 'secrets' },
  serviceAccounts: { group: '', version: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts' },
  roles: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role', plural: 'roles' },
  roleBindings: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding', plural: 'rolebindings' },
  clusterRoleBindings: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRoleBinding', plural: 'clusterrolebindings' },
  podDisruptionBudgets: { group: 'policy', version: 'v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets' },
  networkPolicies: { group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy', plural: 'networkpolicies' },
  ingresses: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress', plural: 'ingresses' },
  endpoints: { group: '', version: 'v1', kind: 'Endpoints', plural: 'endpoints' },
  leases: { group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases' },
  pods: { group: '', version: 'v1', kind: 'Pod', plural: 'pods' },
  events: { group: '', version: 'v1', kind: 'Event', plural: 'events' },
  tokenReviews: { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenReview', plural: 'tokenreviews' },
  // Served only where their CRDs are installed: the operator asks served() before it watches them.
  httpRoutes: { group: 'gateway.networking.k8s.io', version: 'v1', kind: 'HTTPRoute', plural: 'httproutes' },
  tlsRoutes: { group: 'gateway.networking.k8s.io', version: 'v1', kind: 'TLSRoute', plural: 'tlsroutes' },
  tcpRoutes: { group: 'gateway.networking.k8s.io', version: 'v1', kind: 'TCPRoute', plural: 'tcproutes' },
  certificates: { group: 'cert-manager.io', version: 'v1', kind: 'Certificate', plural: 'certificates' },
  podMonitors: { group: 'monitoring.coreos.com', version: 'v1', kind: 'PodMonitor', plural: 'podmonitors' },
} as const satisfies Record<string, ResourceType>;

export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/** The resource of an `apiVersion` and `kind` among RESOURCES, or undefined. */
export function resourceFor(apiVersion: string, kind: string): ResourceType | undefined {
  return Object.values(RESOURCES).find((r) => r.kind === kind && apiVersionOf(r) === apiVersion);
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The metadata fields we read and write; objects travel as the wire's JSON, so times are strings. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/** Any object as the apiserver sends it; list items carry no apiVersion or kind. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** What a write needs to know of an object; everything else is sent as given. */
export interface WriteObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface ListOptions {
  /** Undefined: all namespaces. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Ask for PartialObjectMetadata: names, labels and owners without the
   * data, so a watch on every Secret holds no secret material.
   */
  metadataOnly?: boolean;
  signal?: AbortSignal;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface WatchOptions extends ListOptions {
  /** Where the watch starts; events after this version are delivered. */
  resourceVersion: string;
  /** The apiserver ends the watch after this long; the informer then resumes it. */
  timeoutSeconds: number;
}

/** The apiserver's Status object, sent as the body of an ERROR event. */
export interface StatusObject {
  code?: number;
  reason?: string;
  message?: string;
}

export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  | { type: 'BOOKMARK'; resourceVersion: string }
  | { type: 'ERROR'; status: StatusObject };

export interface WatchHandle {
  /**
   * Resolves when the watch ends without an error (the server's timeout,
   * stop()); rejects with a KubeApiError otherwise (code GONE on 410).
   */
  readonly done: Promise<void>;
  stop(): void;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface CreateOptions extends RequestOptions {
  /** Admission runs (webhooks included) and the answer comes back; nothing is stored. */
  dryRun?: boolean;
}

export interface ApplyOptions extends RequestOptions {
  /** Apply to the status subresource instead of the object. */
  subresource?: 'status';
}

export interface DeleteOptions extends RequestOptions {
  /** The delete fails with CONFLICT unless the stored object still has these. */
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface KubeClient {
  get<T extends KubeObject>(type: ResourceType, namespace: string, name: string, options?: RequestOptions): Promise<T>;
  list<T extends KubeObject>(type: ResourceType, options?: ListOptions): Promise<ListResult<T>>;
  /** `onEvent` is called synchronously per event and must not throw. */
  watch<T extends KubeObject>(type: ResourceType, options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): WatchHandle;
  /**
   * Server-side apply (create or update) with the client's field manager and force: the writer
   * owns every field it sets. A resourceVersion in the object makes it conditional.
   */
  apply<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options?: ApplyOptions): Promise<T>;
  /** Fails with CONFLICT when the object exists. Without a name: a review, answered and not stored. */
  create<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options?: CreateOptions): Promise<T>;
  /** A PUT conditional on the object's resourceVersion (CONFLICT when it moved). */
  update<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options?: RequestOptions): Promise<T>;
  /**
   * Whether the apiserver serves this resource (API discovery of its group version): false for
   * the kinds of a CRD that is not installed.
   */
  served(type: ResourceType, options?: RequestOptions): Promise<boolean>;
  /** Resolves false when the object was already gone (404). */
  delete(type: ResourceType, namespace: string, name: string, options?: DeleteOptions): Promise<boolean>;
}

/** `namespace/name`, the key of the work queue and of every cache. */
export function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function keyOf(obj: KubeObject): string {
  return objectKey(obj.metadata?.namespace, obj.metadata?.name ?? '');
}

/** MicroTime as the apiserver parses it: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** A wire time (RFC 3339) in epoch milliseconds; undefined when absent or unparsable. */
export function timeMs(t: string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}
