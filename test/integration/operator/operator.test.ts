/**
 * The operator against a real kube-apiserver, etcd and
 * kube-controller-manager (test/k8s/control-plane.ts). The operator runs in
 * this process with the credentials of a ServiceAccount bound to the
 * ClusterRole of operator/operator-role.ts, so a missing permission fails here as it
 * would in a cluster. There is no kubelet: the StatefulSet controller
 * creates Pod objects that stay Pending, and tests mark them ready by
 * writing their status.
 */
import { FIELD_MANAGER } from '../../../operator/field-manager';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { buildLease, buildShard, serializeShard } from '../../../dataplane/registry/kubernetes/objects';
import { API_VERSION, KIND, type PikoCluster } from '../../../operator/api/pikocluster';
import type { PikoClusterSpecInput } from '../../../operator/api/pikocluster-spec';
import { TOKEN_REVIEWER_RULES } from '../../../operator/builders/dataplane-role';
import { buildChildren } from '../../../operator/builders/desired-children';
import { Operator } from '../../../operator/operator';
import { ClientNodeKubeClient, loadKubeConfig } from '../../../dataplane/kube/client-node';
import { KubeApiError } from '../../../dataplane/kube/errors';
import { RESOURCES, type KubeObject, type ResourceType } from '../../../dataplane/kube/client';
import { LEADER_ELECTION_LEASE_NAME } from '../../../dataplane/kube/leader-election';
import { ItemExponentialRateLimiter, MaxOfRateLimiter, TokenBucketRateLimiter } from '../../../operator/runtime/rate-limiter';
import { runOperator } from '../../../operator/run-operator';
import { loadOperatorConfig } from '../../../operator/operator-config';
import type { ControlPlane } from '../../k8s/control-plane';
import { thirdPartyCrdFiles } from '../../k8s/third-party-crds';
import {
  DEFAULT_IMAGE,
  kubectl,
  newNamespace,
  ReconcileLog,
  RecordingClient,
  startOperatorControlPlane,
  testLogger,
  waitFor,
} from './harness';

// A cold build of the control plane compiles Kubernetes; a warm start takes seconds.
const START_TIMEOUT_MS = 60 * 60 * 1000;
const OPERATOR_NAMESPACE = 'piko-system';
const TOKEN_REVIEWER_ROLE = 'piko-operator-token-reviewer';
const CLUSTER_ROLES: ResourceType = { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', plural: 'clusterroles' };
/** Whole seconds (the Lease counts in seconds), short enough for a takeover test. */
const FAST_ELECTION = { namespace: OPERATOR_NAMESPACE, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

interface Replica {
  name: string;
  operator: Operator;
  client: RecordingClient;
  kube: ClientNodeKubeClient;
  log: ReconcileLog;
  metrics: Registry;
}

type Cluster = PikoCluster & KubeObject;
type Obj = KubeObject & {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  data?: Record<string, string>;
};

let cp: ControlPlane;
let admin: ClientNodeKubeClient;
let operatorKc: string;
const replicas: Replica[] = [];
let primary: Replica;

function startReplica(name: string): Replica {
  const kube = new ClientNodeKubeClient(loadKubeConfig(operatorKc), { fieldManager: FIELD_MANAGER });
  const client = new RecordingClient(kube);
  const log = new ReconcileLog();
  const metrics = new Registry();
  const operator = new Operator({
    client,
    defaultImage: DEFAULT_IMAGE,
    tokenReviewerClusterRole: TOKEN_REVIEWER_ROLE,
    logger: testLogger(name),
    metricsRegistry: metrics,
    leaderElection: FAST_ELECTION,
    identity: name,
    controller: {
      onReconciled: log.record,
      informerBackoff: { minMs: 200, maxMs: 2_000 },
      // A CRD installed by a test is found within a wait.
      discoveryIntervalMs: 500,
      // client-go's shape with a 2 s cap, so a retry never outlasts a test's wait.
      rateLimiter: () =>
        new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 2_000), new TokenBucketRateLimiter({ qps: 50, burst: 100 })),
    },
  });
  operator.start();
  const replica = { name, operator, client, kube, log, metrics };
  replicas.push(replica);
  return replica;
}

beforeAll(async () => {
  ({ cp, admin, operatorKc } = await startOperatorControlPlane(OPERATOR_NAMESPACE));
  // As the chart installs it (templates/token-review-rbac.yaml).
  await admin.create(CLUSTER_ROLES, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: TOKEN_REVIEWER_ROLE },
    rules: TOKEN_REVIEWER_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })),
  } as KubeObject);
  primary = startReplica('a');
  await primary.operator.synced;
}, START_TIMEOUT_MS);

afterAll(async () => {
  for (const r of replicas) {
    await r.operator.stop();
    await r.kube.close();
  }
  await admin?.close();
  await cp?.stop();
});

function pikoCluster(namespace: string, name: string, spec: PikoClusterSpecInput = {}): KubeObject {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec } as KubeObject;
}

const condition = (c: Cluster | undefined, type: string) => c?.status?.conditions?.find((x) => x.type === type);

function waitForCluster(namespace: string, name: string, predicate: (c: Cluster | undefined) => boolean, what: string) {
  return waitFor<Cluster>(admin, RESOURCES.pikoClusters, namespace, name, predicate, what);
}

function waitForObject(type: ResourceType, namespace: string, name: string, predicate: (o: Obj | undefined) => boolean, what: string) {
  return waitFor<Obj>(admin, type, namespace, name, predicate, what);
}

/** `kubectl patch --type=json` of the PikoCluster `piko` in `namespace`, as a user edits it. */
async function patchCluster(namespace: string, ops: readonly { op: string; path: string; value?: unknown }[]): Promise<void> {
  await kubectl(cp, ['patch', 'pikocluster', 'piko', '-n', namespace, '--type=json', '-p', JSON.stringify(ops)]);
}

/** Marks a pod Running and Ready, as kubelet would. */
async function markPodReady(namespace: string, name: string): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  await admin.apply(
    RESOURCES.pods,
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace },
      status: {
        phase: 'Running',
        podIP: '10.1.0.7',
        conditions: [
          { type: 'Ready', status: 'True', lastTransitionTime: now },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
        ],
      },
    } as KubeObject,
    { subresource: 'status' },
  );
}

/** A settled cluster `piko` in a namespace of its own: every child created, its pods ready. */
async function readyCluster(prefix: string, spec: PikoClusterSpecInput = { replicas: 2 }): Promise<{ ns: string; cluster: Cluster }> {
  const ns = await newNamespace(admin, prefix);
  await admin.create(RESOURCES.pikoClusters, pikoCluster(ns, 'piko', spec));
  const replicas = (spec.replicas as number | undefined) ?? 3;
  for (let i = 0; i < replicas; i++) {
    await waitForObject(RESOURCES.pods, ns, `piko-${i}`, (p) => p !== undefined, `pod piko-${i}`);
    await markPodReady(ns, `piko-${i}`);
  }
  const cluster = await waitForCluster(ns, 'piko', (c) => condition(c, 'Ready')?.status === 'True', 'the cluster to be Ready');
  return { ns, cluster: cluster! };
}

describe('the operator', () => {
  it('creates every child with the expected spec and owner reference, and reports conditions', async () => {
    const ns = await newNamespace(admin, 'children');
    await admin.create(RESOURCES.pikoClusters, pikoCluster(ns, 'piko', { replicas: 3 }));
    const cluster = (await waitForCluster(
      ns,
      'piko',
      (c) => c?.status?.observedGeneration === 1 && condition(c, 'Ready') !== undefined,
      'conditions on the new cluster',
    ))!;
    expect(condition(cluster, 'Ready')).toMatchObject({ status: 'False', observedGeneration: 1 });
    expect(condition(cluster, 'Progressing')).toMatchObject({ status: 'True' });
    expect(condition(cluster, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(cluster.status?.selector).toBe(
      'app.kubernetes.io/name=piko,app.kubernetes.io/instance=piko,app.kubernetes.io/component=dataplane',
    );

    const owner = {
      apiVersion: API_VERSION,
      kind: KIND,
      name: 'piko',
      uid: cluster.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    };
    // The NetworkPolicy's egress names the apiserver by the addresses of the `kubernetes` Service;
    // an apiserver on loopback publishes none (the real node's does), and the policy then allows its usual ports.
    const ep = await admin
      .get<KubeObject & { subsets?: { addresses?: { ip: string }[]; ports?: { port: number }[] }[] }>(
        RESOURCES.endpoints,
        'default',
        'kubernetes',
      )
      .catch((err: unknown) => {
        if (err instanceof KubeApiError && err.code === 'NOT_FOUND') return undefined;
        throw err;
      });
    const apiServer = ep?.subsets?.flatMap((s) =>
      (s.addresses ?? []).flatMap((a) => (s.ports ?? []).map((p) => ({ ip: a.ip, port: p.port }))),
    );
    const desired = buildChildren(cluster, { defaultImage: DEFAULT_IMAGE, clusterSecretValue: 'unused', network: { apiServer } });
    for (const child of desired.apply) {
      const type = Object.values(RESOURCES).find((r) => r.kind === child.kind)!;
      const live = await admin.get<Obj>(type, ns, child.metadata.name);
      expect(live.metadata?.ownerReferences).toEqual([owner]);
      // The apiserver adds defaults; everything the builders said must be there as said
      // (but a false Go drops as empty, such as a Service's publishNotReadyAddresses).
      const { metadata, ...body } = JSON.parse(JSON.stringify(child, (_k, v: unknown) => (v === false ? undefined : v))) as Obj;
      expect(live).toMatchObject(body);
      expect(live.metadata?.labels).toMatchObject(metadata?.labels ?? {});
    }
    expect(desired.apply.map((c) => `${c.kind}/${c.metadata.name}`)).toEqual([
      'ServiceAccount/piko',
      'Role/piko-registry',
      'RoleBinding/piko-registry',
      'ConfigMap/piko-config',
      'Service/piko-nodes',
      'Service/piko-proxy',
      'Service/piko-upstream',
      'PodDisruptionBudget/piko',
      'NetworkPolicy/piko',
      'StatefulSet/piko',
    ]);
    const sts = await admin.get<Obj>(RESOURCES.statefulSets, ns, 'piko');
    expect(sts.spec).toMatchObject({ replicas: 3, serviceName: 'piko-nodes' });
    const secret = await admin.get<Obj>(RESOURCES.secrets, ns, 'piko-cluster');
    expect(secret.metadata?.ownerReferences).toEqual([owner]);
    expect(Buffer.from(secret.data?.['secret'] ?? '', 'base64').toString()).toMatch(/^[0-9a-f]{64}$/);

    // No kubelet here: play its part, and the cluster becomes Ready.
    for (let i = 0; i < 3; i++) {
      await waitForObject(RESOURCES.pods, ns, `piko-${i}`, (p) => p !== undefined, `pod piko-${i}`);
      await markPodReady(ns, `piko-${i}`);
    }
    const ready = (await waitForCluster(ns, 'piko', (c) => condition(c, 'Ready')?.status === 'True', 'the cluster to be Ready'))!;
    expect(condition(ready, 'Ready')).toMatchObject({ reason: 'AllReplicasReady', message: '3/3 pods ready' });
    expect(condition(ready, 'Progressing')).toMatchObject({ status: 'False', reason: 'RolloutComplete' });
    expect(ready.status).toMatchObject({ replicas: 3, readyReplicas: 3, endpoints: 0, upstreams: 0 });
    expect(ready.status?.nodes?.map((n) => [n.name, n.ready])).toEqual([
      ['piko-0', true],
      ['piko-1', true],
      ['piko-2', true],
    ]);
    // The Secret is never replaced.
    expect((await admin.get<Obj>(RESOURCES.secrets, ns, 'piko-cluster')).data).toEqual(secret.data);
  });

  it('writes nothing when reconciling a settled cluster again', async () => {
    const { ns } = await readyCluster('idempotent');
    const key = `${ns}/piko`;
    const ofNs = (mark: number) => primary.client.writesSince(mark).filter((w) => w.namespace === ns);
    // An annotation wakes the controller without changing anything it owns.
    const reconciled = primary.log.next(key);
    const mark = primary.client.writes.length;
    await kubectl(cp, ['annotate', 'pikocluster', 'piko', '-n', ns, 'example.com/touched=yes']);
    await reconciled;
    await primary.operator.controller.reconciler.reconcile(key);
    await primary.operator.controller.reconciler.reconcile(key);
    expect(ofNs(mark)).toEqual([]);
  });

  it('puts back children changed by hand', async () => {
    const { ns } = await readyCluster('handedit');
    const mark = primary.client.writes.length;
    await kubectl(cp, ['patch', 'statefulset', 'piko', '-n', ns, '--type', 'merge', '-p', '{"spec":{"replicas":7}}']);
    await kubectl(cp, ['set', 'image', 'statefulset/piko', '-n', ns, 'piko=example.com/evil:1']);
    await kubectl(cp, ['patch', 'configmap', 'piko-config', '-n', ns, '--type', 'merge', '-p', '{"data":{"server.yaml":"edited"}}']);
    const sts = await waitForObject(
      RESOURCES.statefulSets,
      ns,
      'piko',
      (o) => {
        const spec = o?.spec as { replicas?: number; template?: { spec?: { containers?: { image?: string }[] } } } | undefined;
        return spec?.replicas === 2 && spec.template?.spec?.containers?.[0]?.image === DEFAULT_IMAGE;
      },
      'the StatefulSet to be put back',
    );
    expect(sts).toBeDefined();
    await waitForObject(
      RESOURCES.configMaps,
      ns,
      'piko-config',
      (o) => o?.data?.['server.yaml']?.startsWith('# Rendered by piko-operator') === true,
      'the ConfigMap to be put back',
    );
    const applied = primary.client.writesSince(mark).filter((w) => w.namespace === ns && w.verb === 'apply');
    expect(applied.map((w) => `${w.resource}/${w.name}`)).toEqual(expect.arrayContaining(['statefulsets/piko', 'configmaps/piko-config']));
  });

  it('scales the StatefulSet through the scale subresource (kubectl scale)', async () => {
    const { ns } = await readyCluster('scale');
    await kubectl(cp, ['scale', 'pikocluster/piko', '-n', ns, '--replicas=4']);
    await waitForObject(RESOURCES.statefulSets, ns, 'piko', (o) => o?.spec?.['replicas'] === 4, 'the StatefulSet to have 4 replicas');
    await waitForCluster(
      ns,
      'piko',
      (c) => c?.status?.replicas === 4 && condition(c, 'Ready')?.status === 'False' && condition(c, 'Ready')?.observedGeneration === 2,
      'status to follow the scale',
    );
    const scale = JSON.parse(await kubectl(cp, ['get', '--raw', `/apis/piko.dev/v1alpha1/namespaces/${ns}/pikoclusters/piko/scale`])) as {
      spec: { replicas: number };
      status: { replicas: number; selector: string };
    };
    expect(scale.spec.replicas).toBe(4);
    expect(scale.status.selector).toContain('app.kubernetes.io/instance=piko');
  });

  it('deletes the PodDisruptionBudget once the spec disables it', async () => {
    const { ns } = await readyCluster('pdb');
    await waitForObject(RESOURCES.podDisruptionBudgets, ns, 'piko', (o) => o !== undefined, 'the PodDisruptionBudget');
    await patchCluster(ns, [{ op: 'replace', path: '/spec/podDisruptionBudget/enabled', value: false }]);
    await waitForObject(RESOURCES.podDisruptionBudgets, ns, 'piko', (o) => o === undefined, 'the PodDisruptionBudget to be deleted');
  });

  it('collects registry objects of pods that are gone and counts endpoints across the cluster', async () => {
    const { ns } = await readyCluster('registry', { replicas: 3 });
    const now = Date.now();
    const node = async (nodeId: string, renewAgoMs: number, endpoints: [string, number][]): Promise<void> => {
      const lease = buildLease({
        cluster: 'piko',
        nodeId,
        proxyAddr: '10.1.0.7:8000',
        adminAddr: '10.1.0.7:8002',
        durationMs: 60_000,
        acquireTimeMs: now - renewAgoMs,
        renewTimeMs: now - renewAgoMs,
      });
      await admin.create(RESOURCES.leases, { ...lease, metadata: { ...lease.metadata, namespace: ns } });
      const shard = buildShard({ cluster: 'piko', nodeId, index: 0, json: serializeShard(new Map(endpoints)) });
      await admin.create(RESOURCES.configMaps, { ...shard, metadata: { ...shard.metadata, namespace: ns } });
    };
    await node('piko-0', 0, [
      ['a', 2],
      ['b', 1],
    ]);
    await node('piko-1', 0, [['a', 1]]);
    // Expired, but its pod exists: it may be restarting, so it stays (and counts for nothing).
    await node('piko-2', 3_600_000, [['d', 1]]);
    // Expired, and no such pod: garbage.
    await node('ghost-7', 3_600_000, [['c', 5]]);

    await waitForObject(RESOURCES.leases, ns, 'piko-node-ghost-7', (o) => o === undefined, 'the ghost Lease to be collected');
    await waitForObject(RESOURCES.configMaps, ns, 'piko-endpoints-ghost-7-0', (o) => o === undefined, 'the ghost shard to be collected');
    const cluster = (await waitForCluster(ns, 'piko', (c) => c?.status?.upstreams === 4, 'counts in status'))!;
    expect(cluster.status).toMatchObject({ endpoints: 2, upstreams: 4 });
    expect(cluster.status?.nodes).toEqual([
      { name: 'piko-0', ready: true, endpoints: 2, upstreams: 3 },
      { name: 'piko-1', ready: true, endpoints: 1, upstreams: 1 },
      { name: 'piko-2', ready: true, endpoints: 0, upstreams: 0 },
    ]);
    await expect(admin.get(RESOURCES.leases, ns, 'piko-node-piko-2')).resolves.toBeDefined();
    await expect(admin.get(RESOURCES.configMaps, ns, 'piko-endpoints-piko-2-0')).resolves.toBeDefined();
  });

  it('reports a missing Secret as Ready=False naming the field, with one Warning Event, and recovers when it appears', async () => {
    const ns = await newNamespace(admin, 'secret');
    const key = `${ns}/auth`;
    const retried = primary.log.next(key, 4);
    await admin.create(
      RESOURCES.pikoClusters,
      pikoCluster(ns, 'auth', { replicas: 1, auth: { proxy: { hmacSecretKeyRef: { name: 'piko-jwt', key: 'hmac' } } } }),
    );
    await retried;
    const failing = (await waitForCluster(ns, 'auth', (c) => condition(c, 'Ready')?.reason === 'SecretNotFound', 'SecretNotFound'))!;
    expect(condition(failing, 'Ready')).toMatchObject({
      status: 'False',
      message: `spec.auth.proxy.hmacSecretKeyRef: Secret "piko-jwt" not found in namespace "${ns}"`,
    });
    expect(condition(failing, 'Degraded')).toMatchObject({ status: 'True', reason: 'SecretNotFound' });
    const events = await admin.list<Obj & { type?: string; reason?: string; message?: string }>(RESOURCES.events, {
      namespace: ns,
      fieldSelector: 'involvedObject.name=auth',
    });
    expect(events.items.map((e) => [e.type, e.reason])).toEqual([['Warning', 'SecretNotFound']]);
    expect(events.items[0]?.message).toContain('spec.auth.proxy.hmacSecretKeyRef');
    await expect(admin.get(RESOURCES.statefulSets, ns, 'auth')).rejects.toMatchObject({ code: 'NOT_FOUND' });

    await admin.create(RESOURCES.secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'piko-jwt', namespace: ns },
      stringData: { hmac: randomBytes(16).toString('hex') },
    } as KubeObject);
    await waitForObject(RESOURCES.statefulSets, ns, 'auth', (o) => o !== undefined, 'the StatefulSet once the Secret exists');
    const recovered = (await waitForCluster(ns, 'auth', (c) => condition(c, 'Degraded')?.status === 'False', 'the cluster to recover'))!;
    expect(condition(recovered, 'Ready')?.reason).not.toBe('SecretNotFound');
  });

  it('is refused by the apiserver for mistakes the schema catches, with the CEL message', async () => {
    const ns = await newNamespace(admin, 'invalid');
    const refused = (name: string, spec: PikoClusterSpecInput) => admin.create(RESOURCES.pikoClusters, pikoCluster(ns, name, spec));
    await expect(refused('ports', { ports: { proxy: 9000, upstream: 9000 } })).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringContaining('ports.proxy, ports.upstream and ports.admin must be distinct'),
    });
    await expect(refused('lease', { registry: { leaseDuration: '5s', renewInterval: '10s' } })).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringContaining('renewInterval must be shorter than leaseDuration'),
    });
    await expect(refused('a'.repeat(50), {})).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringContaining('metadata.name must be at most 42'),
    });
    await expect(refused('svc', { services: { proxy: { type: 'ClusterIP', nodePort: 30080 } } })).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringContaining('nodePort needs type NodePort or LoadBalancer'),
    });
    // The server's YAML refers to these; a user's value would replace the operator's.
    for (const name of ['POD_IP', 'PIKO_CLUSTER_SECRET']) {
      await expect(refused(`env-${name.toLowerCase().replace(/_/g, '-')}`, { env: [{ name, value: 'x' }] })).rejects.toMatchObject({
        code: 'INVALID',
        message: expect.stringContaining('env may not set POD_NAME, POD_NAMESPACE, POD_UID, POD_IP or PIKO_* variables'),
      });
    }
    await expect(
      refused('env-both', { env: [{ name: 'TZ', value: 'UTC', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }] }),
    ).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringContaining('value and valueFrom are exclusive'),
    });
    await expect(
      refused('env-twice', {
        env: [
          { name: 'TZ', value: 'UTC' },
          { name: 'TZ', value: 'CET' },
        ],
      }),
    ).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringContaining('Duplicate value'),
    });
  });

  it('removes every child when the PikoCluster is deleted (garbage collection)', async () => {
    const { ns } = await readyCluster('delete');
    // Foreground: the PikoCluster goes once the garbage collector has deleted
    // its children, which it starts on seeing the PikoCluster marked for
    // deletion. (The collector discovers a new CRD within 30 s; a background
    // delete made before that would wait out its retry backoff instead.)
    await kubectl(cp, ['delete', 'pikocluster', 'piko', '-n', ns, '--cascade=foreground', '--wait=true', '--timeout=120s'], 130_000);
    const gone: [ResourceType, string][] = [
      [RESOURCES.statefulSets, 'piko'],
      [RESOURCES.services, 'piko-nodes'],
      [RESOURCES.services, 'piko-proxy'],
      [RESOURCES.services, 'piko-upstream'],
      [RESOURCES.configMaps, 'piko-config'],
      [RESOURCES.secrets, 'piko-cluster'],
      [RESOURCES.serviceAccounts, 'piko'],
      [RESOURCES.roles, 'piko-registry'],
      [RESOURCES.roleBindings, 'piko-registry'],
      [RESOURCES.podDisruptionBudgets, 'piko'],
    ];
    for (const [type, name] of gone) {
      await waitForObject(type, ns, name, (o) => o === undefined, `${type.kind} ${name} to be collected`);
    }
  }, 180_000);

  it('lets the data plane review tokens while the spec admits ServiceAccounts, and takes the grant back when it stops or the cluster goes', async () => {
    const rules = [{ namespace: 'team-a', name: 'web', endpoints: ['web'] }];
    const { ns } = await readyCluster('token-review', { replicas: 1, auth: { upstream: { serviceAccounts: rules } } });
    const bindingName = `piko.${ns}.piko.token-review`;
    const binding = await waitForObject(RESOURCES.clusterRoleBindings, '', bindingName, (o) => o !== undefined, 'the token-review binding');
    expect(binding).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: TOKEN_REVIEWER_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: 'piko', namespace: ns }],
    });
    const config = await waitForObject(RESOURCES.configMaps, ns, 'piko-config', (o) => o !== undefined, 'the config');
    expect(config?.data?.['server.yaml']).toContain(
      `service_accounts:\n    audience: piko.dev/${ns}/piko\n    rules:\n      - namespace: team-a\n        name: web\n        endpoints:\n          - web\n`,
    );

    // The grant works: the data plane's own ServiceAccount may create a TokenReview, and nothing more cluster-wide.
    const dataPlane = new ClientNodeKubeClient(loadKubeConfig(await cp.kubeconfigForServiceAccount(ns, 'piko')), { fieldManager: 'test' });
    try {
      const review = await dataPlane.create<KubeObject & { status?: { authenticated?: boolean } }>(RESOURCES.tokenReviews, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token: 'not-a-token' },
      } as KubeObject);
      expect(review.status?.authenticated).not.toBe(true);
      await expect(dataPlane.list(RESOURCES.clusterRoleBindings)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    } finally {
      await dataPlane.close();
    }

    const setAuth = async (auth: PikoClusterSpecInput['auth']): Promise<void> => {
      const patch = auth === undefined ? [{ op: 'remove', path: '/spec/auth' }] : [{ op: 'add', path: '/spec/auth', value: auth }];
      await patchCluster(ns, patch);
    };
    await setAuth(undefined);
    await waitForObject(RESOURCES.clusterRoleBindings, '', bindingName, (o) => o === undefined, 'the binding to go with the rules');

    await setAuth({ upstream: { serviceAccounts: rules } });
    await waitForObject(RESOURCES.clusterRoleBindings, '', bindingName, (o) => o !== undefined, 'the binding to come back');
    await admin.delete(RESOURCES.pikoClusters, ns, 'piko');
    await waitForObject(RESOURCES.clusterRoleBindings, '', bindingName, (o) => o === undefined, 'the binding to go with the cluster');
  });

  it('exposes the ports through Ingresses the apiserver accepts, reports their URLs, and removes them with the spec', async () => {
    const exposure = {
      ingress: {
        className: 'nginx',
        proxy: { host: '*.tunnel.example.com', tlsSecretName: 'wildcard-tls' },
        upstream: { host: 'agents.tunnel.example.com' },
      },
    };
    const { ns } = await readyCluster('exposure', { replicas: 1, exposure });
    const proxy = await waitForObject(RESOURCES.ingresses, ns, 'piko-proxy', (o) => o !== undefined, 'the proxy Ingress');
    expect(proxy?.spec).toMatchObject({
      ingressClassName: 'nginx',
      rules: [{ host: '*.tunnel.example.com' }],
      tls: [{ secretName: 'wildcard-tls' }],
    });
    await waitForObject(RESOURCES.ingresses, ns, 'piko-upstream', (o) => o !== undefined, 'the upstream Ingress');
    const cluster = await waitForCluster(ns, 'piko', (c) => c?.status?.urls !== undefined, 'status.urls');
    expect(cluster?.status?.urls).toEqual({ proxy: 'https://<endpoint>.tunnel.example.com', upstream: 'http://agents.tunnel.example.com' });
    // The pods tell agents the same URL, which they print once connected.
    const config = await waitForObject(RESOURCES.configMaps, ns, 'piko-config', (o) => o !== undefined, 'the config');
    expect(config?.data?.['server.yaml']).toContain('public_url: https://<endpoint>.tunnel.example.com');
    // What a user asks first, on one line.
    const wide = (await kubectl(cp, ['get', 'pikocluster', 'piko', '-n', ns, '-o', 'wide'])).split('\n');
    expect(wide[0]).toMatch(
      /^NAME\s+READY\s+REPLICAS\s+READY REPLICAS\s+ENDPOINTS\s+UPSTREAMS\s+REASON\s+PROXY URL\s+AGENTS URL\s+AGE\s+MESSAGE/,
    );
    expect(wide[1]).toMatch(
      /^piko\s+True\s+1\s+1\s+0\s+0\s+AllReplicasReady\s+https:\/\/<endpoint>\.tunnel\.example\.com\s+http:\/\/agents\.tunnel\.example\.com\s/,
    );
    await patchCluster(ns, [{ op: 'remove', path: '/spec/exposure' }]);
    await waitForObject(RESOURCES.ingresses, ns, 'piko-proxy', (o) => o === undefined, 'the proxy Ingress to go');
    await waitForObject(RESOURCES.ingresses, ns, 'piko-upstream', (o) => o === undefined, 'the upstream Ingress to go');
    await waitForCluster(ns, 'piko', (c) => c?.status?.urls === undefined, 'status.urls to go');
  });

  it('waits for the Gateway API with a reason, creates the routes once its CRDs are installed, and waits again when they go', async () => {
    const gateway = {
      gatewayRef: { name: 'edge', namespace: 'gateways' },
      proxy: { host: '*.tunnel.example.com', extraHosts: ['tunnel.example.com'], sectionName: 'https' },
      upstream: { host: 'agents.tunnel.example.com', route: 'TLSRoute' as const },
    };
    const ns = await newNamespace(admin, 'gateway');
    const tls = { upstream: { secretName: 'agents-tls' } };
    await admin.create(RESOURCES.secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'agents-tls', namespace: ns },
      type: 'Opaque',
      data: { 'tls.crt': '', 'tls.key': '' },
    } as KubeObject);
    // A TLSRoute hands the TLS to the pods, which must serve it.
    await expect(admin.create(RESOURCES.pikoClusters, pikoCluster(ns, 'bad', { exposure: { gateway } }))).rejects.toMatchObject({
      code: 'INVALID',
      message: expect.stringContaining(
        'exposure.gateway.upstream.route TLSRoute passes TLS through to the pods, which then need tls.upstream',
      ),
    });

    await admin.create(RESOURCES.pikoClusters, pikoCluster(ns, 'piko', { replicas: 1, tls, exposure: { gateway } }));
    const waiting = await waitForCluster(
      ns,
      'piko',
      (c) => condition(c, 'Ready')?.reason === 'GatewayAPINotInstalled',
      'Ready=False GatewayAPINotInstalled',
    );
    expect(condition(waiting, 'Ready')?.message).toBe(
      "the apiserver does not serve the Gateway API, which HTTPRoute piko-proxy and TLSRoute piko-upstream need; install its standard channel's CRDs (v1.5 or later, which serve TLSRoute and TCPRoute as v1)",
    );
    // Everything else is in place meanwhile: the data plane runs without its routes.
    await waitForObject(RESOURCES.statefulSets, ns, 'piko', (o) => o !== undefined, 'the StatefulSet');
    await markPodReady(ns, 'piko-0');

    const crds = await thirdPartyCrdFiles('gateway-api');
    await kubectl(cp, ['apply', '--server-side', ...crds.flatMap((f) => ['-f', f])]);
    await kubectl(cp, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/httproutes.gateway.networking.k8s.io',
      'crd/tlsroutes.gateway.networking.k8s.io',
    ]);
    const proxy = await waitForObject(RESOURCES.httpRoutes, ns, 'piko-proxy', (o) => o !== undefined, 'the HTTPRoute');
    expect(proxy?.spec).toEqual({
      parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge', namespace: 'gateways', sectionName: 'https' }],
      hostnames: ['*.tunnel.example.com', 'tunnel.example.com'],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          backendRefs: [{ group: '', kind: 'Service', name: 'piko-proxy', port: 8000, weight: 1 }],
          timeouts: { request: '35s' },
        },
      ],
    });
    const upstream = await waitForObject(RESOURCES.tlsRoutes, ns, 'piko-upstream', (o) => o !== undefined, 'the TLSRoute');
    expect(upstream?.spec).toMatchObject({
      hostnames: ['agents.tunnel.example.com'],
      rules: [{ backendRefs: [{ name: 'piko-upstream', port: 8001 }] }],
    });
    const ready = await waitForCluster(ns, 'piko', (c) => condition(c, 'Ready')?.status === 'True', 'the cluster to be Ready');
    expect(ready?.status?.urls).toEqual({ proxy: 'https://<endpoint>.tunnel.example.com', upstream: 'https://agents.tunnel.example.com' });

    // A route changed by hand is put back, as every child is.
    await kubectl(cp, ['patch', 'httproute', 'piko-proxy', '-n', ns, '--type=merge', '-p', '{"spec":{"hostnames":["evil.example.com"]}}']);
    await waitForObject(
      RESOURCES.httpRoutes,
      ns,
      'piko-proxy',
      (o) => (o?.spec?.['hostnames'] as string[] | undefined)?.[0] === '*.tunnel.example.com',
      'the HTTPRoute put back',
    );

    // Switching the upstream to an HTTPRoute replaces the TLSRoute.
    await patchCluster(ns, [{ op: 'replace', path: '/spec/exposure/gateway/upstream/route', value: 'HTTPRoute' }]);
    await waitForObject(RESOURCES.tlsRoutes, ns, 'piko-upstream', (o) => o === undefined, 'the TLSRoute to go');
    const agents = await waitForObject(RESOURCES.httpRoutes, ns, 'piko-upstream', (o) => o !== undefined, 'the upstream HTTPRoute');
    expect(agents?.spec).toMatchObject({ rules: [{ timeouts: { request: '0s' } }] });

    // The CRDs go (and their objects with them): the cluster waits for them again.
    // Not waiting for the deletion to finish: a CRD being deleted already counts as unserved, and the
    // apiserver's finalizer of an empty CRD took over 60 s once on a busy CI machine.
    await kubectl(cp, ['delete', '--wait=false', ...crds.flatMap((f) => ['-f', f])]);
    await waitForCluster(ns, 'piko', (c) => condition(c, 'Ready')?.reason === 'GatewayAPINotInstalled', 'Ready=False once more');
  }, 180_000);

  it('creates the PodMonitor once the Prometheus Operator CRDs are served, accepted by their schema, and deletes it with the spec', async () => {
    const ns = await newNamespace(admin, 'monitor');
    const monitoring = {
      podMonitor: { enabled: true, labels: { release: 'kps' }, bearerTokenSecretRef: { name: 'scrape', key: 'token' } },
    };
    await admin.create(RESOURCES.pikoClusters, pikoCluster(ns, 'piko', { replicas: 1, monitoring }));
    // The token's Secret is reported first; once it exists, the missing CRD is.
    await waitForCluster(ns, 'piko', (c) => condition(c, 'Ready')?.reason === 'SecretNotFound', 'Ready=False SecretNotFound');
    await admin.create(RESOURCES.secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'scrape', namespace: ns },
      stringData: { token: 'x' },
    } as KubeObject);
    const waiting = await waitForCluster(
      ns,
      'piko',
      (c) => condition(c, 'Ready')?.reason === 'PrometheusOperatorNotInstalled',
      'Ready=False PrometheusOperatorNotInstalled',
    );
    expect(condition(waiting, 'Ready')?.message).toContain('PodMonitor piko');
    await waitForObject(RESOURCES.pods, ns, 'piko-0', (p) => p !== undefined, 'pod piko-0');
    await markPodReady(ns, 'piko-0');

    const crds = await thirdPartyCrdFiles('prometheus-operator');
    await kubectl(cp, ['apply', '--server-side', ...crds.flatMap((f) => ['-f', f])]);
    const monitor = await waitForObject(RESOURCES.podMonitors, ns, 'piko', (o) => o !== undefined, 'the PodMonitor');
    expect(monitor?.metadata?.labels?.['release']).toBe('kps');
    expect(monitor?.spec).toMatchObject({
      selector: { matchLabels: { 'app.kubernetes.io/instance': 'piko' } },
      podMetricsEndpoints: [
        { port: 'admin', path: '/metrics', interval: '30s', authorization: { type: 'Bearer', credentials: { name: 'scrape' } } },
      ],
    });
    await waitForCluster(ns, 'piko', (c) => condition(c, 'Ready')?.status === 'True', 'the cluster to be Ready');
    await patchCluster(ns, [{ op: 'replace', path: '/spec/monitoring/podMonitor/enabled', value: false }]);
    await waitForObject(RESOURCES.podMonitors, ns, 'piko', (o) => o === undefined, 'the PodMonitor to go');
  });

  it("creates cert-manager Certificates for the pods' TLS once its CRDs are served, without waiting for the Secrets they write", async () => {
    const ns = await newNamespace(admin, 'certs');
    const tls = {
      issuerRef: { name: 'internal-ca', kind: 'ClusterIssuer' as const },
      proxy: { secretName: 'piko-proxy-tls' },
      forwarding: { rootCASecretRef: { name: 'piko-proxy-tls', key: 'ca.crt' } },
    };
    await admin.create(RESOURCES.pikoClusters, pikoCluster(ns, 'piko', { replicas: 1, tls }));
    // Not SecretNotFound: the Secret is the Certificate's to write.
    const waiting = await waitForCluster(
      ns,
      'piko',
      (c) => condition(c, 'Ready')?.reason === 'CertManagerNotInstalled',
      'Ready=False CertManagerNotInstalled',
    );
    expect(condition(waiting, 'Ready')?.message).toContain('Certificate piko-proxy');
    await waitForObject(RESOURCES.statefulSets, ns, 'piko', (o) => o !== undefined, 'the StatefulSet');

    const crds = await thirdPartyCrdFiles('cert-manager');
    await kubectl(cp, ['apply', '--server-side', ...crds.flatMap((f) => ['-f', f])]);
    const cert = await waitForObject(RESOURCES.certificates, ns, 'piko-proxy', (o) => o !== undefined, 'the Certificate');
    expect(cert?.spec).toMatchObject({
      secretName: 'piko-proxy-tls',
      issuerRef: { name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
      dnsNames: expect.arrayContaining([`*.piko-nodes.${ns}.svc`, `piko-proxy.${ns}.svc`]),
    });
    const config = await waitForObject(RESOURCES.configMaps, ns, 'piko-config', (o) => o !== undefined, 'the config');
    expect(config?.data?.['server.yaml']).toContain(`server_name: "{node}.piko-nodes.${ns}.svc"`);
    // The pods wait for the Secret (the kubelet retries the mount); the cluster is not Ready until they run.
    await waitForCluster(ns, 'piko', (c) => condition(c, 'Ready')?.reason !== 'CertManagerNotInstalled', 'the CRD found');
  });

  it('serves /healthz, /readyz and /metrics as `piko operator`, ready as a standby', async () => {
    const config = loadOperatorConfig({
      version: '0.0.0-test',
      env: {},
      flags: {
        kubeconfig: operatorKc,
        leader_election_namespace: OPERATOR_NAMESPACE,
        metrics_bind_addr: '127.0.0.1:0',
        health_bind_addr: '127.0.0.1:0',
        default_image: DEFAULT_IMAGE,
      },
    });
    let stop!: () => void;
    const stopSignal = new Promise<string>((resolve) => (stop = () => resolve('test')));
    let listening!: (addrs: { metrics?: string; health: string }) => void;
    const addrs = new Promise<{ metrics?: string; health: string }>((resolve) => (listening = resolve));
    const run = runOperator(config, { stopSignal, logger: testLogger('cli'), onListening: listening, env: {} });
    try {
      const { metrics, health } = await addrs;
      expect((await fetch(`http://${health}/healthz`)).status).toBe(200);
      // Ready once every informer has listed, though the Lease is held by another replica.
      await waitForReady(`http://${health}/readyz`);
      const body = await (await fetch(`http://${metrics}/metrics`)).text();
      expect(body).toMatch(/^piko_operator_leader 0$/m);
      expect(body).toMatch(/^piko_operator_workqueue_depth 0$/m);
      expect(body).toContain('piko_operator_reconcile_duration_seconds');
      expect(body).toContain('process_cpu_seconds_total');
    } finally {
      stop();
      await run;
    }
  });

  it('runs two replicas safely: a standby takes over when the leader is killed, and at once when it stops gracefully', async () => {
    const standby = startReplica('b');
    await standby.operator.synced;
    expect(primary.operator.isLeader).toBe(true);
    expect(standby.operator.isLeader).toBe(false);

    // Only the leader reconciles.
    const ns = await newNamespace(admin, 'election');
    const key = `${ns}/piko`;
    const byPrimary = primary.log.next(key);
    await admin.create(RESOURCES.pikoClusters, pikoCluster(ns, 'piko', { replicas: 1 }));
    await byPrimary;
    expect(standby.log.counts.get(key)).toBeUndefined();

    // Killed: no more renewals, no release. The standby waits out the lease.
    const killedAt = Date.now();
    const takeover = standby.log.next(key);
    await primary.operator.stop({ releaseLease: false });
    await waitForObject(
      RESOURCES.leases,
      OPERATOR_NAMESPACE,
      LEADER_ELECTION_LEASE_NAME,
      (l) => (l as { spec?: { holderIdentity?: string } } | undefined)?.spec?.holderIdentity === 'b',
      'replica b to hold the lease',
    );
    await takeover;
    const killTakeoverMs = Date.now() - killedAt;
    expect(standby.operator.isLeader).toBe(true);
    expect(killTakeoverMs).toBeGreaterThanOrEqual(FAST_ELECTION.leaseDurationMs - FAST_ELECTION.retryPeriodMs);
    await kubectl(cp, ['scale', 'pikocluster/piko', '-n', ns, '--replicas=2']);
    await waitForObject(RESOURCES.statefulSets, ns, 'piko', (o) => o?.spec?.['replicas'] === 2, 'the new leader to reconcile');

    // Graceful: the leader releases the Lease, and the next standby needs no lease duration.
    const third = startReplica('c');
    await third.operator.synced;
    // Measured from the release, which stop() does after draining the reconciles in flight (a
    // drain that takes long on a loaded machine is not the election's time).
    await standby.operator.stop();
    const stoppedAt = Date.now();
    await waitForObject(
      RESOURCES.leases,
      OPERATOR_NAMESPACE,
      LEADER_ELECTION_LEASE_NAME,
      (l) => (l as { spec?: { holderIdentity?: string } } | undefined)?.spec?.holderIdentity === 'c',
      'replica c to hold the lease',
    );
    expect(Date.now() - stoppedAt).toBeLessThan(FAST_ELECTION.leaseDurationMs);
    expect(killTakeoverMs).toBeGreaterThan(Date.now() - stoppedAt);
  });

  it('never met a permission it lacks', () => {
    const forbidden = replicas
      .flatMap((r) => r.client.errors)
      .filter((e): e is KubeApiError => e instanceof KubeApiError && e.code === 'FORBIDDEN')
      // Not a permission: the Gateway API test deletes CRDs, and writes race their termination.
      .filter((e) => !e.message.includes('while custom resource definition is terminating'));
    expect([...new Set(forbidden.map((e) => e.message))]).toEqual([]);
  });
});

/** Polls /readyz until 200: readiness is a state the probe reads, with no event to wait on. */
async function waitForReady(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(url);
    if (res.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} still answers ${res.status}: ${await res.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
