/**
 * The registry write policy (operator/admission/registry-write-policy.ts)
 * on a real kube-apiserver: data-plane pods, each with a token bound to its
 * Pod as the kubelet projects one, may write their own registry objects
 * and nothing else, while the operator, users and other workloads are left
 * to RBAC.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { API_VERSION, KIND } from '../../../operator/api/pikocluster';
import { RESOURCES } from '../../../dataplane/kube/client';
import { registryWritePolicy, registryWritePolicyBinding } from '../../../operator/admission/registry-write-policy';
import { REGISTRY_VERBS } from '../../../dataplane/registry/kubernetes/registry-verbs';
import { createKubernetesRegistry, type KubernetesRegistry } from '../../../dataplane/registry/kubernetes/kubernetes-registry';
import { startControlPlane, type ControlPlane } from '../../k8s/control-plane';
import { adminClient, installCrd } from '../operator/harness';

const START_TIMEOUT_MS = 60 * 60 * 1000;
const CLUSTER = 'piko';
const SECRET = 'cluster-secret-0123456789abcdef';

let cp: ControlPlane;
let admin: k8s.KubernetesObjectApi;
let adminKc: k8s.KubeConfig;
let namespace: string;
const pods: Record<string, { uid: string; kubeconfig: string }> = {};
const registries: KubernetesRegistry[] = [];

function objects(kubeconfigPath: string): k8s.KubernetesObjectApi {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return k8s.KubernetesObjectApi.makeApiClient(kc);
}

function registryObject(
  kind: 'Lease' | 'ConfigMap',
  name: string,
  node: string,
  extra: Record<string, unknown> = {},
): k8s.KubernetesObject {
  return {
    apiVersion: kind === 'Lease' ? 'coordination.k8s.io/v1' : 'v1',
    kind,
    metadata: {
      name,
      namespace,
      labels: {
        'app.kubernetes.io/name': 'piko',
        'app.kubernetes.io/component': 'registry',
        'piko.dev/cluster': CLUSTER,
        'piko.dev/node': node,
      },
    },
    ...extra,
  } as k8s.KubernetesObject;
}

/** The apiserver's answer to a write: 'ok', or the status code and message of its refusal. */
async function attempt(write: () => Promise<unknown>): Promise<string> {
  try {
    await write();
    return 'ok';
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string } | undefined);
    return `${e.code ?? '?'} ${body?.message ?? String(err)}`;
  }
}

beforeAll(async () => {
  cp = await startControlPlane();
  adminKc = new k8s.KubeConfig();
  adminKc.loadFromFile(cp.kubeconfigPath);
  admin = k8s.KubernetesObjectApi.makeApiClient(adminKc);
  // client-node's typed models would drop the CRD's x-kubernetes-* fields; the operator's client keeps them.
  await installCrd(adminClient(cp));
  await admin.create(registryWritePolicy() as k8s.KubernetesObject);
  await admin.create(registryWritePolicyBinding() as k8s.KubernetesObject);

  namespace = `policy-${randomBytes(3).toString('hex')}`;
  await admin.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await adminClient(cp).create(RESOURCES.pikoClusters, { apiVersion: API_VERSION, kind: KIND, metadata: { name: CLUSTER, namespace } });
  for (const sa of [CLUSTER, 'other-app']) {
    await admin.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace } });
    await admin.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: `${sa}-registry`, namespace },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: [...REGISTRY_VERBS] },
        { apiGroups: [''], resources: ['configmaps'], verbs: [...REGISTRY_VERBS] },
      ],
    } as k8s.KubernetesObject);
    await admin.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${sa}-registry`, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${sa}-registry` },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace }],
    } as k8s.KubernetesObject);
  }
  // Pod objects for the tokens to be bound to; with no kubelet here they stay Pending.
  for (const name of ['piko-0', 'piko-1']) {
    const pod = await admin.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace },
      spec: { serviceAccountName: CLUSTER, containers: [{ name: 'server', image: 'piko:test' }] },
    } as k8s.KubernetesObject);
    const uid = pod.metadata?.uid ?? '';
    pods[name] = { uid, kubeconfig: await cp.kubeconfigForServiceAccount(namespace, CLUSTER, { name, uid }) };
  }
  await admin.create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'user-data', namespace },
    data: { a: '1' },
  } as k8s.KubernetesObject);

  // The apiserver enforces a new policy once its informers have it: wait for the first refusal.
  const asPod1 = objects(pods['piko-1']!.kubeconfig);
  for (let i = 0; ; i++) {
    const res = await attempt(() => asPod1.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `probe-${i}`, namespace } }));
    if (res.startsWith('403')) break;
    if (i > 100) throw new Error(`the policy never took effect: ${res}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(registries.map((r) => r.stop()));
  await cp?.stop();
});

function podRegistry(name: string): KubernetesRegistry {
  const registry = createKubernetesRegistry({
    nodeId: name,
    proxyAddr: '127.0.0.1:8000',
    adminAddr: '127.0.0.1:8002',
    clusterName: CLUSTER,
    secret: SECRET,
    namespace,
    kubeconfigPath: pods[name]!.kubeconfig,
    env: { POD_NAME: name, POD_UID: pods[name]!.uid, POD_NAMESPACE: namespace },
    startTimeoutMs: 10_000,
  });
  registries.push(registry);
  return registry;
}

describe('registry write policy', () => {
  it('lets each pod publish, renew and delete its own Lease and shards', async () => {
    const registry = podRegistry('piko-0');
    const peer = podRegistry('piko-1');
    await Promise.all([registry.start(), peer.start()]);
    registry.setLocalEndpoint('web', 1);
    // piko-0's shard reached piko-1: written under the policy, and signed.
    await expect(peer.waitForEndpoint('web', 10_000)).resolves.toBe(true);
    await Promise.all([registry.stop(), peer.stop()]);
    registries.splice(0);
    // Stopped cleanly: it deleted its own objects, which the policy allowed.
    const left = await adminKc
      .makeApiClient(k8s.CoordinationV1Api)
      .listNamespacedLease({ namespace, labelSelector: 'piko.dev/node=piko-0' });
    expect(left.items).toHaveLength(0);
  });

  it("refuses a pod's writes to another pod's objects, to names not its own and to anything outside the registry", async () => {
    const registry = podRegistry('piko-0');
    await registry.start();
    const asPod1 = objects(pods['piko-1']!.kubeconfig);
    const lease0 = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'piko-node-piko-0', namespace } };

    expect(
      await attempt(() =>
        asPod1.patch(
          { ...lease0, metadata: { ...lease0.metadata, annotations: { 'piko.dev/proxy-addr': '192.0.2.66:8000' } } },
          undefined,
          undefined,
          undefined,
          undefined,
          k8s.PatchStrategy.MergePatch,
        ),
      ),
    ).toMatch(/^403 .*pod piko-1 may write only its own registry objects/);
    expect(await attempt(() => asPod1.delete(lease0))).toMatch(/^403 .*piko-1 may write only its own/);
    // Its own label under another pod's name: refused, or it could lock that pod out.
    expect(await attempt(() => asPod1.create(registryObject('ConfigMap', 'piko-endpoints-piko-0-5', 'piko-1')))).toMatch(
      /^403 .*may write only objects named for it, not piko-endpoints-piko-0-5/,
    );
    expect(
      await attempt(() => asPod1.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-settings', namespace } })),
    ).toMatch(/^403 /);
    expect(await attempt(() => asPod1.delete({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'user-data', namespace } }))).toMatch(
      /^403 /,
    );
    // What it may do: its own objects under its own names.
    expect(await attempt(() => asPod1.create(registryObject('ConfigMap', 'piko-endpoints-piko-1-3', 'piko-1')))).toBe('ok');
    expect(
      await attempt(() => asPod1.delete({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'piko-endpoints-piko-1-3', namespace } })),
    ).toBe('ok');
  });

  it('refuses every write by the data-plane ServiceAccount with a token not bound to a pod', async () => {
    const unbound = objects(await cp.kubeconfigForServiceAccount(namespace, CLUSTER));
    expect(await attempt(() => unbound.create(registryObject('Lease', 'piko-node-piko-9', 'piko-9', { spec: {} })))).toMatch(
      /^403 .*pod-bound ServiceAccount token/,
    );
  });

  it('leaves other workloads and administrators to RBAC', async () => {
    const other = objects(await cp.kubeconfigForServiceAccount(namespace, 'other-app'));
    expect(
      await attempt(() => other.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other-settings', namespace } })),
    ).toBe('ok');
    expect(
      await attempt(() =>
        admin.patch(
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'user-data', namespace }, data: { a: '2' } },
          undefined,
          undefined,
          undefined,
          undefined,
          k8s.PatchStrategy.MergePatch,
        ),
      ),
    ).toBe('ok');
  });
});
