import { silentLogger } from '../../../../dataplane/log/logger';
import { buildLease } from '../../../../dataplane/registry/kubernetes/objects';
import type { PikoCluster } from '../../../../operator/api/pikocluster';
import type { PikoClusterSpecInput } from '../../../../operator/api/pikocluster-spec';
import { KubeEventRecorder } from '../../../../operator/controller/event-recorder';
import { Reconciler, type ClusterCaches } from '../../../../operator/controller/reconciler';
import { OWNED_KINDS } from '../../../../operator/builders/desired-children';
import { KubeApiError } from '../../../../dataplane/kube/errors';
import { RESOURCES, resourceFor, type KubeObject } from '../../../../dataplane/kube/client';
import { FakeKubeClient } from '../../kube/fake-kube-client';
import { DEFAULT_IMAGE, makeCluster } from '../fixtures';

const NOW = Date.parse('2026-11-02T10:00:00Z');
const KEY = 'edge/piko';

type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

describe('Reconciler', () => {
  let client: FakeKubeClient;
  let reconciler: Reconciler;
  let now: number;

  function caches(): ClusterCaches {
    const owned = new Map(OWNED_KINDS.map((k) => [k.kind, client.cache(resourceFor(k.apiVersion, k.kind)!)]));
    return {
      pikoClusters: client.cache<PikoCluster & KubeObject>(RESOURCES.pikoClusters),
      owned,
      secrets: client.cache(RESOURCES.secrets),
      pods: client.cache(RESOURCES.pods) as unknown as ClusterCaches['pods'],
      registryLeases: client.cache(RESOURCES.leases) as unknown as ClusterCaches['registryLeases'],
      registryShards: client.cache(RESOURCES.configMaps) as unknown as ClusterCaches['registryShards'],
      registryHealthy: () => true,
    };
  }

  function putCluster(spec: PikoClusterSpecInput = {}, generation = 1): void {
    client.put(RESOURCES.pikoClusters, makeCluster(spec, { generation }) as unknown as KubeObject);
  }

  const cluster = () => client.stored<PikoCluster & KubeObject>(RESOURCES.pikoClusters, 'edge', 'piko')!;
  const ready = () => cluster().status?.conditions?.find((c) => c.type === 'Ready');

  beforeEach(() => {
    client = new FakeKubeClient();
    now = NOW;
    reconciler = new Reconciler({
      client,
      caches: caches(),
      defaultImage: DEFAULT_IMAGE,
      events: new KubeEventRecorder(client, { instance: 'test', now: () => now }),
      logger: silentLogger(),
      now: () => now,
      generateSecret: () => 'f'.repeat(64),
    });
  });

  it('creates the cluster Secret, applies every child in order, writes status; a second pass writes nothing', async () => {
    putCluster();
    expect(await reconciler.reconcile(KEY)).toEqual({});
    expect(client.writes()).toEqual([
      'create secrets edge/piko-cluster',
      'apply serviceaccounts edge/piko',
      'apply roles edge/piko-registry',
      'apply rolebindings edge/piko-registry',
      'apply configmaps edge/piko-config',
      'apply services edge/piko-nodes',
      'apply services edge/piko-proxy',
      'apply services edge/piko-upstream',
      'apply poddisruptionbudgets edge/piko',
      'apply networkpolicies edge/piko',
      'apply statefulsets edge/piko',
      'apply pikoclusters/status edge/piko',
    ]);
    expect(client.stored<Obj & { stringData?: Record<string, string> }>(RESOURCES.secrets, 'edge', 'piko-cluster')?.stringData).toEqual({
      secret: 'f'.repeat(64),
    });
    expect(ready()).toMatchObject({ status: 'False', reason: 'Pending', observedGeneration: 1 });

    const writes = client.writes().length;
    expect(await reconciler.reconcile(KEY)).toEqual({});
    expect(await reconciler.reconcile(KEY)).toEqual({});
    expect(client.writes().slice(writes)).toEqual([]);
  });

  it('never replaces an existing cluster Secret', async () => {
    client.put(RESOURCES.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'piko-cluster', namespace: 'edge' } });
    putCluster();
    await reconciler.reconcile(KEY);
    expect(client.writes().filter((w) => w.includes('secrets'))).toEqual([]);
  });

  it('puts back a child changed by hand, and only that child', async () => {
    putCluster();
    await reconciler.reconcile(KEY);
    const sts = client.stored<Obj>(RESOURCES.statefulSets, 'edge', 'piko')!;
    client.put(RESOURCES.statefulSets, { ...sts, spec: { ...sts.spec, replicas: 9 } } as KubeObject);
    const writes = client.writes().length;
    await reconciler.reconcile(KEY);
    expect(client.writes().slice(writes)).toEqual(['apply statefulsets edge/piko']);
    expect(client.stored<Obj>(RESOURCES.statefulSets, 'edge', 'piko')?.spec?.['replicas']).toBe(3);
  });

  it('does not apply a child again when only its status moved, and reports the status', async () => {
    putCluster();
    await reconciler.reconcile(KEY);
    const sts = client.stored<Obj>(RESOURCES.statefulSets, 'edge', 'piko')!;
    const status = {
      observedGeneration: 1,
      replicas: 3,
      readyReplicas: 3,
      updatedReplicas: 3,
      currentRevision: 'r1',
      updateRevision: 'r1',
    };
    client.put(RESOURCES.statefulSets, { ...sts, status } as KubeObject);
    const writes = client.writes().length;
    await reconciler.reconcile(KEY);
    expect(client.writes().slice(writes)).toEqual(['apply pikoclusters/status edge/piko']);
    expect(ready()).toMatchObject({ status: 'True', reason: 'AllReplicasReady' });
  });

  it('reports a missing Secret naming the field, with one Warning Event however often it retries, and builds nothing', async () => {
    putCluster({ auth: { proxy: { hmacSecretKeyRef: { name: 'jwt', key: 'hmac' } } } });
    for (let i = 0; i < 3; i++) expect(await reconciler.reconcile(KEY)).toEqual({ retry: true });
    expect(client.writes()).toEqual([
      'apply pikoclusters/status edge/piko',
      'create events edge/' + client.all(RESOURCES.events)[0]?.metadata?.name,
    ]);
    expect(ready()).toMatchObject({
      status: 'False',
      reason: 'SecretNotFound',
      message: 'spec.auth.proxy.hmacSecretKeyRef: Secret "jwt" not found in namespace "edge"',
    });
    expect(client.all<Obj & { type?: string; reason?: string; involvedObject?: { name: string } }>(RESOURCES.events)).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'SecretNotFound', involvedObject: expect.objectContaining({ name: 'piko' }) }),
    ]);

    client.put(RESOURCES.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'jwt', namespace: 'edge' } });
    expect(await reconciler.reconcile(KEY)).toEqual({});
    expect(client.stored(RESOURCES.statefulSets, 'edge', 'piko')).toBeDefined();
    expect(ready()?.reason).toBe('Pending');
  });

  it('reports a spec mistake the schema cannot catch, and does not retry it', async () => {
    putCluster({ podLabels: { 'app.kubernetes.io/name': 'mine' } });
    expect(await reconciler.reconcile(KEY)).toEqual({});
    expect(ready()).toMatchObject({ status: 'False', reason: 'InvalidPodLabels' });
    expect(client.stored(RESOURCES.statefulSets, 'edge', 'piko')).toBeUndefined();
  });

  it('deletes the children the spec no longer wants, and none of another owner', async () => {
    putCluster();
    await reconciler.reconcile(KEY);
    const pdb = client.stored<Obj>(RESOURCES.podDisruptionBudgets, 'edge', 'piko')!;
    client.put(RESOURCES.podDisruptionBudgets, {
      ...pdb,
      metadata: {
        ...pdb.metadata,
        name: 'other',
        uid: 'u-other',
        ownerReferences: [{ ...pdb.metadata!.ownerReferences![0]!, uid: 'another-cluster' }],
      },
    });
    putCluster({ podDisruptionBudget: { enabled: false } }, 2);
    const writes = client.writes().length;
    await reconciler.reconcile(KEY);
    expect(client.writes().slice(writes)).toEqual(['delete poddisruptionbudgets edge/piko', 'apply pikoclusters/status edge/piko']);
    expect(client.stored(RESOURCES.podDisruptionBudgets, 'edge', 'other')).toBeDefined();
  });

  it('collects registry objects of gone pods and reconciles again when a live Lease expires', async () => {
    putCluster();
    await reconciler.reconcile(KEY);
    const put = (nodeId: string, renewAgoMs: number): void => {
      const lease = buildLease({
        cluster: 'piko',
        nodeId,
        proxyAddr: 'x:1',
        adminAddr: 'x:2',
        durationMs: 15_000,
        acquireTimeMs: now - renewAgoMs,
        renewTimeMs: now - renewAgoMs,
      });
      client.put(RESOURCES.leases, { ...lease, metadata: { ...lease.metadata, namespace: 'edge' } });
    };
    client.put(RESOURCES.pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'piko-0', namespace: 'edge', labels: { 'app.kubernetes.io/instance': 'piko' } },
    });
    put('piko-0', 5_000);
    put('piko-9', 600_000);
    const writes = client.writes().length;
    const result = await reconciler.reconcile(KEY);
    expect(client.writes().slice(writes)).toEqual(['delete leases edge/piko-node-piko-9', 'apply pikoclusters/status edge/piko']);
    // piko-0 renewed 5 s ago for 15 s: look again just after it would expire.
    expect(result.requeueAfterMs).toBe(10_000 + 500);
  });

  it('turns a child the apiserver refuses into a condition naming it, retried with backoff', async () => {
    putCluster();
    client.fail(
      'apply',
      new KubeApiError(
        'INVALID',
        'apply Service edge/piko-proxy: Service "piko-proxy" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
        422,
      ),
      { plural: 'services', times: 2 },
    );
    expect(await reconciler.reconcile(KEY)).toEqual({ retry: true });
    expect(ready()).toMatchObject({
      reason: 'ServiceRejected',
      message: 'Service "piko-proxy" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
    });
  });

  it('throws API failures for the controller to retry, conflicts included', async () => {
    putCluster();
    client.fail('apply', new KubeApiError('UNAVAILABLE', 'connection refused'), { plural: 'statefulsets' });
    await expect(reconciler.reconcile(KEY)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    client.fail('apply', new KubeApiError('CONFLICT', 'the object has been modified', 409), { plural: 'pikoclusters' });
    await expect(reconciler.reconcile(KEY)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await reconciler.reconcile(KEY)).toEqual({});
  });

  it('does nothing for a PikoCluster that is gone or being deleted', async () => {
    expect(await reconciler.reconcile(KEY)).toEqual({});
    client.put(RESOURCES.pikoClusters, makeCluster({}, { deletionTimestamp: new Date(NOW) }) as unknown as KubeObject);
    expect(await reconciler.reconcile(KEY)).toEqual({});
    expect(client.writes()).toEqual([]);
  });
});
