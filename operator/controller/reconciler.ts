/**
 * reconcile(key): one pass that brings one PikoCluster's world in line with
 * its spec, in cert-manager's and prometheus-operator's shape. It reads the
 * latest state from the informer caches, builds the children with the pure
 * builders, applies them, deletes what is no longer wanted, collects
 * registry objects of pods that are gone, and writes status only when it
 * changed. Level-triggered: it does not care which event woke it, and a
 * second pass right after the first writes nothing.
 *
 * Failures: a spec mistake (validateSpec, a missing Secret, a child the
 * apiserver refuses) becomes Ready=False naming the field, with one
 * Warning Event per distinct mistake; API errors are thrown for the
 * controller to retry with backoff (409 quietly).
 */
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1Pod, V1Secret, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from '../../dataplane/log/logger';
import type { ConfigMapObject, LeaseObject } from '../../dataplane/registry/kubernetes/objects';
import { LABEL_CLUSTER } from '../../dataplane/registry/kubernetes/objects';
import { API_VERSION, KIND, type PikoCluster } from '../api/pikocluster';
import { UPSTREAM_CA_MAX } from '../api/pikocluster-status';
import { generateClusterSecret } from '../builders/cluster-secret';
import type { Desired } from '../builders/desired';
import { buildTokenReviewBinding, LABEL_CLUSTER_NAME, LABEL_CLUSTER_NAMESPACE } from '../builders/dataplane-role';
import { buildChildren, OWNED_KINDS, type OptionalApi } from '../builders/desired-children';
import type { ApiServerEndpoints } from '../builders/network-policy';
import { childNames, LABEL_INSTANCE } from '../builders/names';
import { validateSpec } from '../builders/validate-spec';
import { deriveStatus, type StatusProblem } from '../status/derive-status';
import { statusEqual } from '../status/status-equal';
import { isApiError, KubeApiError } from '../../dataplane/kube/errors';
import {
  RESOURCES,
  resourceFor,
  splitKey,
  type KubeClient,
  type KubeObject,
  type OwnerReference,
  type ResourceType,
  type WriteObject,
} from '../../dataplane/kube/client';
import type { EventRecorder } from './event-recorder';
import { missingSecretProblems } from './referenced-secrets';
import { analyseRegistry } from './registry-nodes';

export interface ObjectCache<T> {
  get(namespace: string, name: string): T | undefined;
  /** Every object, or those of one namespace. */
  list(namespace?: string): T[];
}

export interface ClusterCaches {
  pikoClusters: ObjectCache<PikoCluster>;
  /** Children by kind, one cache for each of OWNED_KINDS (Secret: metadata of every Secret). */
  owned: ReadonlyMap<string, ObjectCache<KubeObject>>;
  /** Metadata of every Secret: for references and the cluster secret. */
  secrets: ObjectCache<KubeObject>;
  /** Data-plane pods of every cluster. */
  pods: ObjectCache<V1Pod>;
  /** Our token-review ClusterRoleBindings (when the operator has a token-reviewer ClusterRole). */
  tokenReviewBindings?: ObjectCache<KubeObject>;
  registryLeases: ObjectCache<LeaseObject>;
  registryShards: ObjectCache<ConfigMapObject>;
  /** False while a registry watch is failing: the counts in status then keep their last values. */
  registryHealthy(): boolean;
}

export interface ReconcileResult {
  /** Reconcile again after this long: a registry Lease expires then. */
  requeueAfterMs?: number;
  /** A spec problem that may go away without a spec change (a Secret yet to be created): retry with backoff. */
  retry?: boolean;
}

export interface ReconcilerOptions {
  client: KubeClient;
  caches: ClusterCaches;
  /** The data-plane image for clusters whose spec names none. */
  defaultImage: string;
  /** Bound to clusters that admit agents by ServiceAccount; unset: such clusters are not Ready. */
  tokenReviewerClusterRole?: string;
  /** Where the operator runs: its pods may reach the data plane's admin port. */
  operatorNamespace?: string;
  events: EventRecorder;
  logger: Logger;
  now?: () => number;
  generateSecret?: () => string;
  /** Slack past a registry Lease's expiry before its objects are collected. */
  registryGcGraceMs?: number;
}

export const DEFAULT_REGISTRY_GC_GRACE_MS = 10_000;
const API_SERVER_REFRESH_MS = 60_000;

interface EndpointsObject extends KubeObject {
  subsets?: { addresses?: { ip: string }[]; ports?: { port: number }[] }[];
}
const OPTIONAL_BY_KIND: ReadonlyMap<string, OptionalApi> = new Map(
  OWNED_KINDS.flatMap(({ kind, optional }) => (optional === undefined ? [] : [[kind, optional] as const])),
);

/** Reconcile a little after a Lease's deadline, not on it, so the Lease is expired by then. */
const EXPIRY_SLACK_MS = 500;

/** What the last apply of a child sent and got back: an unchanged child is not sent again. */
interface Applied {
  hash: string;
  resourceVersion: string;
  /** Set for kinds with a spec and a status (StatefulSet, PodDisruptionBudget). */
  generation?: number;
  /** Labels, annotations and owners as stored, which a generation does not cover. */
  meta: string;
}

function metaOf(obj: KubeObject | undefined): string {
  const m = obj?.metadata;
  return JSON.stringify([m?.labels ?? {}, m?.annotations ?? {}, m?.ownerReferences ?? []]);
}

/**
 * Whether the stored child is still what our last apply left: the same
 * resourceVersion, or, for kinds whose status moves on its own, the same
 * generation (spec untouched) and metadata.
 */
function unchangedSince(live: KubeObject | undefined, applied: Applied): boolean {
  if (live?.metadata === undefined) return false;
  if (live.metadata.resourceVersion === applied.resourceVersion) return true;
  return applied.generation !== undefined && live.metadata.generation === applied.generation && metaOf(live) === applied.meta;
}

export class Reconciler {
  private readonly client: KubeClient;
  private readonly caches: ClusterCaches;
  private readonly now: () => number;
  private readonly generateSecret: () => string;
  private readonly gcGraceMs: number;
  /** By cluster key, then by `kind/name` of the child. */
  private readonly applied = new Map<string, Map<string, Applied>>();
  /** By cluster key: the problems the last Warning Event reported. */
  private readonly warned = new Map<string, string>();
  /** Per cluster: the upstream CA as last read, and the Secret version it was read at. */
  private readonly upstreamCAs = new Map<string, { secret: string; resourceVersion: string; ca: string }>();
  private apiServer: { at: number; endpoints: ApiServerEndpoints } | undefined;

  constructor(private readonly options: ReconcilerOptions) {
    this.client = options.client;
    this.caches = options.caches;
    this.now = options.now ?? Date.now;
    this.generateSecret = options.generateSecret ?? (() => generateClusterSecret());
    this.gcGraceMs = options.registryGcGraceMs ?? DEFAULT_REGISTRY_GC_GRACE_MS;
  }

  async reconcile(key: string, signal?: AbortSignal): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const cluster = this.caches.pikoClusters.get(namespace, name);
    // Gone, or going: its children go with it through their owner references.
    const request = signal === undefined ? {} : { signal };
    if (cluster === undefined || cluster.metadata.deletionTimestamp !== undefined) {
      this.applied.delete(key);
      this.warned.delete(key);
      this.upstreamCAs.delete(key);
      // Cluster-scoped, so no owner reference takes it away.
      await this.deleteTokenReviewBindings(namespace, name, undefined, request);
      return {};
    }

    const problems: StatusProblem[] = validateSpec(cluster).map((p) => ({ reason: p.reason, message: p.message }));
    problems.push(...missingSecretProblems(cluster, (secret) => this.caches.secrets.get(namespace, secret) !== undefined));
    if (wantsTokenReview(cluster) && this.options.tokenReviewerClusterRole === undefined) {
      problems.push({
        reason: 'TokenReviewUnavailable',
        message:
          'spec.auth.upstream.serviceAccounts needs the operator to bind a token-reviewer ClusterRole ' +
          '(--token-reviewer-cluster-role; the Helm chart sets it unless rbac.create is false)',
      });
    }

    if (problems.length === 0) {
      const outcome = await this.applyChildren(key, cluster, request);
      if (outcome.rejection !== undefined) problems.push(outcome.rejection);
      // Everything else is in place: the registry's garbage is ours to collect.
      if (outcome.rejection === undefined) await this.deleteRegistryGarbage(cluster, this.collectRegistry(cluster).garbage, request);
      problems.push(...outcome.unserved);
    }
    const registry = this.collectRegistry(cluster);
    const upstreamCA = await this.upstreamCA(key, cluster, request);

    await this.writeStatus(cluster, registry.nodes, problems, upstreamCA, request);
    await this.warn(key, cluster, problems);

    if (problems.some((p) => p.retryable === true)) return { retry: true };
    return registry.nextChangeAtMs === undefined
      ? {}
      : { requeueAfterMs: Math.max(0, registry.nextChangeAtMs - this.now()) + EXPIRY_SLACK_MS };
  }

  /**
   * Creates the create-only children, applies the others, and deletes owned
   * objects no longer wanted. Returns a problem when the apiserver refused a
   * child as invalid, and one per optional API the spec needs and the
   * apiserver does not serve (those children wait; the others are applied).
   */
  private async applyChildren(
    key: string,
    cluster: PikoCluster,
    request: { signal?: AbortSignal },
  ): Promise<{ rejection?: StatusProblem; unserved: StatusProblem[] }> {
    const namespace = cluster.metadata.namespace;
    let applied = this.applied.get(key);
    if (applied === undefined) {
      applied = new Map();
      this.applied.set(key, applied);
    }
    const secretName = childNames(cluster).clusterSecret;
    const secretExists = this.caches.secrets.get(namespace, secretName) !== undefined;
    const children = buildChildren(cluster, {
      defaultImage: this.options.defaultImage,
      // The value only matters when the Secret is created: an existing one is never replaced.
      clusterSecretValue: secretExists ? '' : this.generateSecret(),
      network: {
        ...(this.options.operatorNamespace === undefined ? {} : { operatorNamespace: this.options.operatorNamespace }),
        // Read only for a cluster that gets a NetworkPolicy.
        apiServer: cluster.spec.networkPolicy.enabled ? await this.apiServerEndpoints(request) : undefined,
      },
    });

    for (const secret of children.createOnly) {
      if (this.caches.secrets.get(namespace, secret.metadata.name) !== undefined) continue;
      try {
        await this.client.create(RESOURCES.secrets, secret, request);
        this.options.logger.info('created secret', { cluster: `${namespace}/${cluster.metadata.name}`, name: secret.metadata.name });
      } catch (err) {
        // Our cache had not seen it yet: it exists, which is all we need.
        if (!isApiError(err, 'CONFLICT')) throw err;
      }
    }

    const unserved = new Map<string, { api: OptionalApi; kinds: string[] }>();
    const wait = (api: OptionalApi, child: Desired<KubernetesObject>): void => {
      const entry = unserved.get(api.reason) ?? { api, kinds: [] };
      entry.kinds.push(`${child.kind} ${child.metadata.name}`);
      unserved.set(api.reason, entry);
    };
    for (const child of children.apply) {
      const api = OPTIONAL_BY_KIND.get(child.kind);
      if (api !== undefined && this.caches.owned.get(child.kind) === undefined) {
        wait(api, child);
        continue;
      }
      try {
        await this.applyChild(applied, child, request);
      } catch (err) {
        // The CRD is being deleted (403 "while custom resource definition is terminating") or is
        // gone (404) before discovery has noticed: wait for the API as if it had never been there.
        if (api !== undefined && (isApiError(err, 'NOT_FOUND') || (isApiError(err, 'FORBIDDEN') && /terminating/.test(err.message)))) {
          wait(api, child);
          continue;
        }
        if (!isApiError(err, 'INVALID')) throw err;
        // The apiserver's message names the object and the field: `Service "x" is invalid: spec.ports[0].nodePort: ...`.
        const message = (err as KubeApiError).message.replace(/^[^:]*: /, '');
        return { rejection: { reason: `${child.kind}Rejected`, retryable: true, message }, unserved: [] };
      }
    }

    const role = this.options.tokenReviewerClusterRole;
    const binding = role !== undefined && wantsTokenReview(cluster) ? buildTokenReviewBinding(cluster, role) : undefined;
    if (binding !== undefined) await this.applyChild(applied, binding, request);
    await this.deleteTokenReviewBindings(namespace, cluster.metadata.name, binding?.metadata.name, request);

    const wanted = new Set([...children.apply, ...children.createOnly].map((c) => `${c.kind}/${c.metadata.name}`));
    for (const { apiVersion, kind } of OWNED_KINDS) {
      const type = resourceFor(apiVersion, kind);
      const cache = this.caches.owned.get(kind);
      if (type === undefined || cache === undefined) continue;
      for (const obj of cache.list(namespace)) {
        const name = obj.metadata?.name ?? '';
        if (wanted.has(`${kind}/${name}`) || controllerOf(obj)?.uid !== cluster.metadata.uid) continue;
        await this.client.delete(type, namespace, name, { ...request, preconditions: { uid: obj.metadata?.uid ?? '' } });
        applied.delete(`${kind}/${name}`);
        this.options.logger.info('deleted unwanted child', { cluster: `${namespace}/${cluster.metadata.name}`, kind, name });
      }
    }
    // Not retried with backoff: the controller reconciles every cluster once discovery finds the API.
    return {
      unserved: [...unserved.values()].map(({ api, kinds }) => ({
        reason: api.reason,
        message: `the apiserver does not serve ${api.name}, which ${kinds.join(' and ')} need; install ${api.install}`,
      })),
    };
  }

  /**
   * Server-side apply, skipped when this exact object was applied before
   * and the stored object has not changed since: anything else, a hand edit
   * included, is applied again and put back. Skipping keeps a settled
   * cluster at zero writes per reconcile, however often its pods' and
   * registry's events wake us.
   */
  private async applyChild(
    applied: Map<string, Applied>,
    child: Desired<KubernetesObject>,
    request: { signal?: AbortSignal },
  ): Promise<void> {
    const type = typeOf(child);
    const { namespace, name } = child.metadata;
    const id = `${child.kind}/${name}`;
    const hash = createHash('sha256').update(JSON.stringify(child)).digest('hex');
    const cache = child.kind === 'ClusterRoleBinding' ? this.caches.tokenReviewBindings : this.caches.owned.get(child.kind);
    const live = cache?.get(namespace, name);
    const before = applied.get(id);
    if (before !== undefined && before.hash === hash && unchangedSince(live, before)) return;
    applied.delete(id);
    const stored = await this.client.apply(type, child, request);
    const generation = stored.metadata?.generation;
    applied.set(id, {
      hash,
      resourceVersion: stored.metadata?.resourceVersion ?? '',
      ...(generation === undefined ? {} : { generation }),
      meta: metaOf(stored),
    });
  }

  /**
   * The addresses behind the `kubernetes` Service, for the NetworkPolicy's egress; read at most
   * once a minute. Undefined when they cannot be read (no grant with --namespace): the policy
   * then allows the apiserver's usual ports anywhere.
   */
  private async apiServerEndpoints(request: { signal?: AbortSignal }): Promise<ApiServerEndpoints> {
    const now = this.now();
    if (this.apiServer !== undefined && now - this.apiServer.at < API_SERVER_REFRESH_MS) return this.apiServer.endpoints;
    let endpoints: ApiServerEndpoints;
    try {
      const ep = await this.client.get<EndpointsObject>(RESOURCES.endpoints, 'default', 'kubernetes', request);
      endpoints = (ep.subsets ?? []).flatMap((s) =>
        (s.addresses ?? []).flatMap((a) => (s.ports ?? []).map((p) => ({ ip: a.ip, port: p.port }))),
      );
    } catch (err) {
      if (!isApiError(err, 'FORBIDDEN') && !isApiError(err, 'NOT_FOUND')) throw err;
      endpoints = undefined;
    }
    this.apiServer = { at: now, endpoints };
    return endpoints;
  }

  /** Deletes the token-review bindings of a cluster but `keep`. */
  private async deleteTokenReviewBindings(
    namespace: string,
    name: string,
    keep: string | undefined,
    request: { signal?: AbortSignal },
  ): Promise<void> {
    for (const b of this.caches.tokenReviewBindings?.list() ?? []) {
      const labels = b.metadata?.labels ?? {};
      const bindingName = b.metadata?.name ?? '';
      if (labels[LABEL_CLUSTER_NAMESPACE] !== namespace || labels[LABEL_CLUSTER_NAME] !== name || bindingName === keep) continue;
      await this.client.delete(RESOURCES.clusterRoleBindings, '', bindingName, {
        ...request,
        preconditions: { uid: b.metadata?.uid ?? '' },
      });
      this.options.logger.info('deleted token-review binding', { cluster: `${namespace}/${name}`, name: bindingName });
    }
  }

  private collectRegistry(cluster: PikoCluster): ReturnType<typeof analyseRegistry> {
    const { namespace, name } = cluster.metadata;
    const ofCluster = <T extends { metadata?: { labels?: Record<string, string> } }>(objs: T[]): T[] =>
      objs.filter((o) => o.metadata?.labels?.[LABEL_CLUSTER] === name);
    return analyseRegistry({
      leases: ofCluster(this.caches.registryLeases.list(namespace)),
      shards: ofCluster(this.caches.registryShards.list(namespace)),
      podNames: new Set(this.podsOf(cluster).map((p) => p.metadata?.name ?? '')),
      nowMs: this.now(),
      graceMs: this.gcGraceMs,
    });
  }

  private async deleteRegistryGarbage(
    cluster: PikoCluster,
    garbage: ReturnType<typeof analyseRegistry>['garbage'],
    request: { signal?: AbortSignal },
  ): Promise<void> {
    const namespace = cluster.metadata.namespace;
    for (const g of garbage) {
      const type = g.kind === 'Lease' ? RESOURCES.leases : RESOURCES.configMaps;
      const preconditions = g.resourceVersion === undefined ? {} : { preconditions: { resourceVersion: g.resourceVersion } };
      await this.client.delete(type, namespace, g.name, { ...request, ...preconditions });
      this.options.logger.info('deleted registry object of a pod that is gone', {
        cluster: `${namespace}/${cluster.metadata.name}`,
        kind: g.kind,
        name: g.name,
      });
    }
  }

  private podsOf(cluster: PikoCluster): V1Pod[] {
    return this.caches.pods.list(cluster.metadata.namespace).filter((p) => p.metadata?.labels?.[LABEL_INSTANCE] === cluster.metadata.name);
  }

  /**
   * ca.crt of the upstream port's TLS Secret, for status.upstreamCA. The Secret cache holds
   * metadata only, so the data is read, and read again only when the Secret's version moves:
   * a reconcile runs at every change of a pod, a registry shard or a child, a Secret about once per certificate.
   */
  private async upstreamCA(key: string, cluster: PikoCluster, request: { signal?: AbortSignal }): Promise<string | undefined> {
    const secret = cluster.spec.tls?.upstream?.secretName;
    const meta = secret === undefined ? undefined : this.caches.secrets.get(cluster.metadata.namespace, secret);
    if (secret === undefined || meta === undefined) {
      // No TLS, or the Secret is missing (a problem reported on its own).
      this.upstreamCAs.delete(key);
      return undefined;
    }
    const resourceVersion = meta.metadata?.resourceVersion ?? '';
    const known = this.upstreamCAs.get(key);
    if (known !== undefined && known.secret === secret && known.resourceVersion === resourceVersion) return known.ca;
    // A list of the one name: the operator's role lists Secrets and never gets them one by one.
    const { items } = await this.client.list<V1Secret & KubeObject>(RESOURCES.secrets, {
      namespace: cluster.metadata.namespace,
      fieldSelector: `metadata.name=${secret}`,
      ...request,
    });
    const [read] = items;
    if (read === undefined) return undefined;
    const encoded = read.data?.['ca.crt'];
    const pem = encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8').trim();
    // Whatever else is there (nothing, a DER file, a bundle too large for a pod annotation) is left out.
    // Empty says it was read: the agents then trust the system's roots (a public certificate).
    const ca = pem.startsWith('-----BEGIN CERTIFICATE-----') && pem.length <= UPSTREAM_CA_MAX ? `${pem}\n` : '';
    this.upstreamCAs.set(key, { secret, resourceVersion: read.metadata?.resourceVersion ?? resourceVersion, ca });
    return ca;
  }

  private async writeStatus(
    cluster: PikoCluster,
    registryNodes: ReturnType<typeof analyseRegistry>['nodes'],
    problems: readonly StatusProblem[],
    upstreamCA: string | undefined,
    request: { signal?: AbortSignal },
  ): Promise<void> {
    const { namespace } = cluster.metadata;
    const sts = this.caches.owned.get('StatefulSet')?.get(namespace, childNames(cluster).statefulSet);
    const status = deriveStatus(
      cluster,
      {
        ...(sts !== undefined && controllerOf(sts)?.uid === cluster.metadata.uid ? { statefulSet: sts as V1StatefulSet } : {}),
        pods: this.podsOf(cluster),
        registryNodes: this.caches.registryHealthy() ? registryNodes : undefined,
        problems,
        ...(upstreamCA === undefined ? {} : { upstreamCA }),
      },
      new Date(this.now()),
    );
    if (statusEqual(cluster.status, status)) return;
    // Conditional on the version read: status derived from a stale copy is
    // refused (409) and the next pass derives it from the fresh one.
    await this.client.apply(
      RESOURCES.pikoClusters,
      {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: cluster.metadata.name, namespace, resourceVersion: cluster.metadata.resourceVersion ?? '' },
        status,
      } as WriteObject,
      { ...request, subresource: 'status' },
    );
  }

  /** One Warning Event per distinct set of problems; forgotten once they are fixed, so a relapse is reported again. */
  private async warn(key: string, cluster: PikoCluster, problems: readonly StatusProblem[]): Promise<void> {
    const [first] = problems;
    if (first === undefined) {
      this.warned.delete(key);
      return;
    }
    const signature = problems.map((p) => `${p.reason}\n${p.message}`).join('\n');
    if (this.warned.get(key) === signature) return;
    this.warned.set(key, signature);
    await this.options.events.record(cluster, 'Warning', first.reason, problems.map((p) => p.message).join('; '));
  }
}

function typeOf(child: Desired<KubernetesObject>): ResourceType {
  const type = resourceFor(child.apiVersion, child.kind);
  if (type === undefined) throw new KubeApiError('UNKNOWN', `no resource for ${child.apiVersion} ${child.kind}`);
  return type;
}

/** The owner reference with controller: true, if any. */
export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}

function wantsTokenReview(cluster: PikoCluster): boolean {
  return (cluster.spec.auth?.upstream?.serviceAccounts?.length ?? 0) > 0;
}
