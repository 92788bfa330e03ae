/**
 * Shared pieces of the operator's integration tests: the control plane with
 * the CRD installed, the operator's ServiceAccount bound to the ClusterRole
 * of operator/operator-role.ts, a KubeClient that counts writes, and waits driven by
 * watches.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createLogger, silentLogger, type Logger } from '../../../dataplane/log/logger';
import { CachedInformer } from '../../../dataplane/kube/cached-informer';
import { ClientNodeKubeClient, loadKubeConfig } from '../../../dataplane/kube/client-node';
import {
  RESOURCES,
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
import { LEADER_ELECTION_RULES, operatorClusterRole, type PolicyRule } from '../../../operator/operator-role';
import { startControlPlane, type ControlPlane } from '../../k8s/control-plane';

const execFileAsync = promisify(execFile);

export const CRD_TYPE: ResourceType = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
};
const NAMESPACE_TYPE: ResourceType = { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces' };
const CLUSTER_ROLE_TYPE: ResourceType = { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', plural: 'clusterroles' };
const ROLE_TYPE = RESOURCES.roles;
const ROLE_BINDING_TYPE = RESOURCES.roleBindings;
const CLUSTER_ROLE_BINDING_TYPE: ResourceType = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'ClusterRoleBinding',
  plural: 'clusterrolebindings',
};

export const WAIT_TIMEOUT_MS = 30_000;
export const DEFAULT_IMAGE = 'ghcr.io/piko-k8s/piko:0.0.0-test';

export function testLogger(name: string): Logger {
  return process.env['PIKO_OPERATOR_DEBUG']
    ? createLogger({ level: 'debug', format: 'console' }).child({ instance: name })
    : silentLogger();
}

/** An admin client; writes carry the field manager `e2e-test`, as a person's kubectl would carry its own. */
export function adminClient(cp: ControlPlane): ClientNodeKubeClient {
  return new ClientNodeKubeClient(loadKubeConfig(cp.kubeconfigPath), { fieldManager: 'e2e-test' });
}

/** Installs crds/pikocluster.yaml and resolves once the apiserver serves it. */
export async function installCrd(admin: KubeClient): Promise<void> {
  const crd = parseYaml(readFileSync(path.resolve(__dirname, '../../../crds/pikocluster.yaml'), 'utf8')) as KubeObject;
  await admin.create(CRD_TYPE, crd);
  await waitFor<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(
    admin,
    CRD_TYPE,
    '',
    crd.metadata?.name ?? '',
    (o) => o?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false,
    'the CRD to be established',
  );
}

/**
 * Creates the operator's namespace and ServiceAccount, the ClusterRole of
 * operator/operator-role.ts and its binding, and returns a kubeconfig with that
 * ServiceAccount's credentials: real RBAC, least privilege.
 */
export async function operatorKubeconfig(cp: ControlPlane, admin: KubeClient, namespace: string): Promise<string> {
  await admin.create(NAMESPACE_TYPE, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await admin.create(RESOURCES.serviceAccounts, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'piko-operator', namespace },
  });
  const role = operatorClusterRole();
  await admin.create(CLUSTER_ROLE_TYPE, role);
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: role.metadata.name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name },
    subjects: [{ kind: 'ServiceAccount', name: 'piko-operator', namespace }],
  };
  await admin.create(CLUSTER_ROLE_BINDING_TYPE, binding);
  // Leader election: get/create/update on Leases in the operator's own namespace only.
  const leaderRole = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'piko-operator-leader-election', namespace },
    rules: LEADER_ELECTION_RULES.map((r) => ({ ...r })),
  };
  await admin.create(ROLE_TYPE, leaderRole);
  const leaderBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'piko-operator-leader-election', namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'piko-operator-leader-election' },
    subjects: [{ kind: 'ServiceAccount', name: 'piko-operator', namespace }],
  };
  await admin.create(ROLE_BINDING_TYPE, leaderBinding);
  return cp.kubeconfigForServiceAccount(namespace, 'piko-operator');
}

export async function newNamespace(admin: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await admin.create(NAMESPACE_TYPE, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

/** kubectl with the admin kubeconfig; resolves to stdout. */
export async function kubectl(cp: ControlPlane, args: readonly string[], timeoutMs = WAIT_TIMEOUT_MS): Promise<string> {
  const { stdout } = await execFileAsync(path.join(cp.binDir, 'kubectl'), [`--kubeconfig=${cp.kubeconfigPath}`, ...args], {
    timeout: timeoutMs,
  });
  return stdout;
}

/**
 * Resolves with the object once `predicate` holds for it (or for its
 * absence, given undefined), checking on every watch event; rejects after
 * the timeout, naming what it waited for.
 */
export async function waitFor<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  namespace: string,
  name: string,
  predicate: (obj: T | undefined) => boolean,
  what: string,
  timeoutMs = WAIT_TIMEOUT_MS,
): Promise<T | undefined> {
  const informer = new CachedInformer<T>({ client, type, namespaces: [namespace], fieldSelector: `metadata.name=${name}` });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<T | undefined>((resolve, reject) => {
      timer = setTimeout(() => {
        const last = informer.get(namespace, name);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(last ?? null).slice(0, 3000)}`));
      }, timeoutMs);
      const check = (): void => {
        if (!informer.hasSynced) return;
        const obj = informer.get(namespace, name);
        if (predicate(obj)) resolve(obj);
      };
      informer.addHandler({ onAdd: check, onUpdate: check, onDelete: check });
      void informer.synced.then(check);
      informer.start();
    });
  } finally {
    clearTimeout(timer);
    await informer.stop();
  }
}

export type WriteVerb = 'apply' | 'create' | 'update' | 'delete';

export interface RecordedWrite {
  verb: WriteVerb;
  resource: string;
  namespace: string;
  name: string;
}

/** A KubeClient that records every write it passes on, and every error. */
export class RecordingClient implements KubeClient {
  readonly writes: RecordedWrite[] = [];
  readonly errors: unknown[] = [];

  constructor(private readonly inner: KubeClient) {}

  writesSince(mark: number): RecordedWrite[] {
    return this.writes.slice(mark);
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string, name: string, options?: RequestOptions): Promise<T> {
    return this.track(this.inner.get<T>(type, namespace, name, options));
  }

  list<T extends KubeObject>(type: ResourceType, options?: ListOptions): Promise<ListResult<T>> {
    return this.track(this.inner.list<T>(type, options));
  }

  watch<T extends KubeObject>(type: ResourceType, options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): WatchHandle {
    const handle = this.inner.watch(type, options, onEvent);
    void handle.done.catch((err: unknown) => this.errors.push(err));
    return handle;
  }

  apply<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options?: ApplyOptions): Promise<T> {
    this.record('apply', type, object, options?.subresource);
    return this.track(this.inner.apply<T>(type, object, options));
  }

  create<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options?: RequestOptions): Promise<T> {
    this.record('create', type, object);
    return this.track(this.inner.create<T>(type, object, options));
  }

  update<T extends KubeObject = KubeObject>(type: ResourceType, object: WriteObject, options?: RequestOptions): Promise<T> {
    this.record('update', type, object);
    return this.track(this.inner.update<T>(type, object, options));
  }

  served(type: ResourceType, options?: RequestOptions): Promise<boolean> {
    return this.track(this.inner.served(type, options));
  }

  delete(type: ResourceType, namespace: string, name: string, options?: DeleteOptions): Promise<boolean> {
    this.writes.push({ verb: 'delete', resource: type.plural, namespace, name });
    return this.track(this.inner.delete(type, namespace, name, options));
  }

  private record(verb: WriteVerb, type: ResourceType, object: WriteObject, subresource?: string): void {
    this.writes.push({
      verb,
      resource: subresource === undefined ? type.plural : `${type.plural}/${subresource}`,
      namespace: object.metadata?.namespace ?? '',
      name: object.metadata?.name ?? '',
    });
  }

  private async track<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      this.errors.push(err);
      throw err;
    }
  }
}

/** Emits `reconciled` (key, outcome) after each reconcile of an operator it is wired to. */
export class ReconcileLog extends EventEmitter {
  readonly counts = new Map<string, number>();

  record = (key: string, outcome: string): void => {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.emit('reconciled', key, outcome);
  };

  /** Resolves after the next `n` reconciles of `key`; call it before causing them. */
  next(key: string, n = 1, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let seen = 0;
      const listener = (k: string): void => {
        if (k !== key || ++seen < n) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${n} reconciles of ${key} (saw ${seen})`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('reconciled', listener);
      };
      this.on('reconciled', listener);
    });
  }
}

/** The operator's grants beyond its ClusterRole, as the chart's templates give them: a ClusterRole, or a Role in `namespace`, bound to its ServiceAccount. */
export async function grantOperator(
  admin: KubeClient,
  operatorNamespace: string,
  name: string,
  rules: readonly PolicyRule[],
  namespace?: string,
): Promise<void> {
  const roleKind = namespace === undefined ? 'ClusterRole' : 'Role';
  const meta = namespace === undefined ? { name } : { name, namespace };
  await admin.create(namespace === undefined ? CLUSTER_ROLE_TYPE : ROLE_TYPE, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: roleKind,
    metadata: meta,
    rules: rules.map((r) => ({ ...r })),
  } as KubeObject);
  await admin.create(namespace === undefined ? CLUSTER_ROLE_BINDING_TYPE : ROLE_BINDING_TYPE, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: `${roleKind}Binding`,
    metadata: meta,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name },
    subjects: [{ kind: 'ServiceAccount', name: 'piko-operator', namespace: operatorNamespace }],
  } as KubeObject);
}

/** A control plane with the CRD installed and the operator's ServiceAccount bound to its ClusterRole. */
export async function startOperatorControlPlane(
  operatorNamespace: string,
): Promise<{ cp: ControlPlane; admin: ClientNodeKubeClient; operatorKc: string }> {
  const cp = await startControlPlane({ withControllerManager: true });
  const admin = adminClient(cp);
  await installCrd(admin);
  return { cp, admin, operatorKc: await operatorKubeconfig(cp, admin, operatorNamespace) };
}
