/**
 * The operator watching a list of namespaces, with its ClusterRole bound in
 * each by a RoleBinding and nowhere else (the chart's operator.watchNamespaces):
 * it reconciles PikoClusters there, and neither sees nor touches any other
 * namespace, whose Secrets it cannot read.
 */
import { FIELD_MANAGER } from '../../../operator/field-manager';
import { Registry } from 'prom-client';
import { API_VERSION, KIND } from '../../../operator/api/pikocluster';
import { Operator } from '../../../operator/operator';
import { ClientNodeKubeClient, loadKubeConfig } from '../../../dataplane/kube/client-node';
import { RESOURCES, type KubeObject } from '../../../dataplane/kube/client';
import { operatorClusterRole } from '../../../operator/operator-role';
import { startControlPlane, type ControlPlane } from '../../k8s/control-plane';
import { adminClient, DEFAULT_IMAGE, installCrd, newNamespace, testLogger, waitFor } from './harness';

const START_TIMEOUT_MS = 60 * 60 * 1000;
const OPERATOR_NAMESPACE = 'piko-system';
const CLUSTER_ROLE_TYPE = { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', plural: 'clusterroles' };

let cp: ControlPlane;
let admin: ClientNodeKubeClient;
let kube: ClientNodeKubeClient | undefined;
let operator: Operator | undefined;

beforeAll(async () => {
  cp = await startControlPlane({ withControllerManager: true });
  admin = adminClient(cp);
  await installCrd(admin);
  await admin.create(CLUSTER_ROLE_TYPE, operatorClusterRole() as unknown as KubeObject);
}, START_TIMEOUT_MS);

afterAll(async () => {
  await operator?.stop();
  await kube?.close();
  await admin?.close();
  await cp?.stop();
});

it('reconciles PikoClusters in the namespaces it watches only, with RoleBindings there alone', async () => {
  await admin.create(
    { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces' },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NAMESPACE } },
  );
  await admin.create(RESOURCES.serviceAccounts, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'scoped', namespace: OPERATOR_NAMESPACE },
  });
  const [a, b, outside] = await Promise.all(['watched-a', 'watched-b', 'outside'].map((p) => newNamespace(admin, p)));
  for (const ns of [a as string, b as string]) {
    await admin.create(RESOURCES.roleBindings, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'piko-operator', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: operatorClusterRole().metadata.name },
      subjects: [{ kind: 'ServiceAccount', name: 'scoped', namespace: OPERATOR_NAMESPACE }],
    } as KubeObject);
  }
  kube = new ClientNodeKubeClient(loadKubeConfig(await cp.kubeconfigForServiceAccount(OPERATOR_NAMESPACE, 'scoped')), {
    fieldManager: FIELD_MANAGER,
  });
  // Without the RoleBinding it cannot even read Secrets outside.
  await expect(kube.list(RESOURCES.secrets, { namespace: outside as string })).rejects.toMatchObject({ code: 'FORBIDDEN' });

  operator = new Operator({
    client: kube,
    namespaces: [a as string, b as string],
    defaultImage: DEFAULT_IMAGE,
    logger: testLogger('scoped'),
    metricsRegistry: new Registry(),
    leaderElection: false,
    controller: { informerBackoff: { minMs: 200, maxMs: 2_000 } },
  });
  operator.start();
  // Every informer listed in both namespaces: a cluster-wide list would have been refused.
  await operator.synced;

  for (const ns of [a, b, outside] as string[]) {
    await admin.create(RESOURCES.pikoClusters, {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: 'edge', namespace: ns },
      spec: { replicas: 1 },
    } as KubeObject);
  }
  for (const ns of [a, b] as string[]) {
    await waitFor(admin, RESOURCES.statefulSets, ns, 'edge', (o) => o !== undefined, `the StatefulSet in ${ns}`);
    await waitFor<KubeObject & { status?: { observedGeneration?: number } }>(
      admin,
      RESOURCES.pikoClusters,
      ns,
      'edge',
      (o) => o?.status?.observedGeneration === 1,
      `the status in ${ns}`,
    );
  }
  // Both others are done; the one outside was never seen.
  const untouched = await admin.get<KubeObject & { status?: unknown }>(RESOURCES.pikoClusters, outside as string, 'edge');
  expect(untouched.status).toBeUndefined();
  await expect(admin.get(RESOURCES.statefulSets, outside as string, 'edge')).rejects.toMatchObject({ code: 'NOT_FOUND' });
});
