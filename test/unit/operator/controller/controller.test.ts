import { Registry } from 'prom-client';
import { silentLogger } from '../../../../dataplane/log/logger';
import { buildLease } from '../../../../dataplane/registry/kubernetes/objects';
import { PikoClusterController } from '../../../../operator/controller/controller';
import type { EventRecorder } from '../../../../operator/controller/event-recorder';
import { KubeApiError } from '../../../../dataplane/kube/errors';
import { RESOURCES, type KubeObject } from '../../../../dataplane/kube/client';
import { createOperatorMetrics } from '../../../../operator/runtime/metrics';
import type { ReconcileOutcome } from '../../../../operator/runtime/metrics';
import { ItemExponentialRateLimiter } from '../../../../operator/runtime/rate-limiter';
import { FakeKubeClient } from '../../kube/fake-kube-client';
import { DEFAULT_IMAGE, makeCluster } from '../fixtures';

const noEvents: EventRecorder = { record: async () => undefined };

describe('PikoClusterController', () => {
  let client: FakeKubeClient;
  let controller: PikoClusterController;
  let reconciled: { key: string; outcome: ReconcileOutcome }[];
  let waiters: { count: number; resolve: () => void }[];
  let registry: Registry;

  /** Resolves once `n` more reconciles have finished. */
  function reconciles(n: number): Promise<void> {
    return new Promise((resolve) => waiters.push({ count: reconciled.length + n, resolve }));
  }

  beforeEach(() => {
    client = new FakeKubeClient();
    reconciled = [];
    waiters = [];
    registry = new Registry();
    controller = new PikoClusterController({
      client,
      defaultImage: DEFAULT_IMAGE,
      events: noEvents,
      logger: silentLogger(),
      metrics: createOperatorMetrics(registry),
      rateLimiter: () => new ItemExponentialRateLimiter(1, 20),
      onReconciled: (key, outcome) => {
        reconciled.push({ key, outcome });
        for (const w of waiters.filter((x) => reconciled.length >= x.count)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      },
    });
  });

  afterEach(async () => {
    await controller.stopWorkers({ drain: false });
    await controller.stopInformers();
  });

  async function started(): Promise<void> {
    controller.startInformers();
    await controller.synced;
  }

  it('is not ready until every informer has listed', async () => {
    expect(controller.notReady()).toMatch(/^waiting for the first list of pikoclusters, /);
    await started();
    expect(controller.notReady()).toBeUndefined();
  });

  it('reconciles nothing while it does not lead, then every known cluster once it does', async () => {
    client.put(RESOURCES.pikoClusters, makeCluster() as unknown as KubeObject);
    await started();
    client.put(RESOURCES.pikoClusters, makeCluster({}, { name: 'two', uid: 'uid-two' }) as unknown as KubeObject);
    expect(reconciled).toEqual([]);
    const first = reconciles(2);
    controller.startWorkers();
    await first;
    expect(reconciled.map((r) => r.key).sort()).toEqual(['edge/piko', 'edge/two']);
    expect(client.stored(RESOURCES.statefulSets, 'edge', 'piko')).toBeDefined();
  });

  it('drops status-only updates of a PikoCluster, and reconciles on spec, label or annotation changes', async () => {
    client.put(RESOURCES.pikoClusters, makeCluster() as unknown as KubeObject);
    await started();
    controller.startWorkers();
    // The first pass, and the one its own children's events cause.
    await reconciles(1);
    await new Promise((resolve) => setImmediate(resolve));
    const settled = reconciled.length;
    const current = client.stored<KubeObject & { status?: object }>(RESOURCES.pikoClusters, 'edge', 'piko')!;
    client.put(RESOURCES.pikoClusters, { ...current, status: { replicas: 99 } } as KubeObject);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reconciled.length).toBe(settled);

    const labelled = reconciles(1);
    client.put(RESOURCES.pikoClusters, { ...current, metadata: { ...current.metadata, labels: { team: 'edge' } } } as KubeObject);
    await labelled;
    const scaled = reconciles(1);
    client.put(RESOURCES.pikoClusters, makeCluster({ replicas: 5 }) as unknown as KubeObject);
    await scaled;
    expect(client.stored<KubeObject & { spec: { replicas: number } }>(RESOURCES.statefulSets, 'edge', 'piko')?.spec.replicas).toBe(5);
  });

  it('reconciles the owner when a child is deleted, and recreates it', async () => {
    client.put(RESOURCES.pikoClusters, makeCluster() as unknown as KubeObject);
    await started();
    const first = reconciles(1);
    controller.startWorkers();
    await first;
    const again = reconciles(1);
    client.remove(RESOURCES.services, 'edge', 'piko-proxy');
    await again;
    expect(client.stored(RESOURCES.services, 'edge', 'piko-proxy')).toBeDefined();
  });

  it('reconciles clusters that refer to a Secret when it appears, without waiting for their backoff', async () => {
    await controller.stopInformers();
    // Retries an hour apart: only the Secret's event can bring the next reconcile.
    controller = new PikoClusterController({
      client,
      defaultImage: DEFAULT_IMAGE,
      events: noEvents,
      logger: silentLogger(),
      metrics: createOperatorMetrics(new Registry()),
      rateLimiter: () => new ItemExponentialRateLimiter(3_600_000, 3_600_000),
      onReconciled: (key, outcome) => {
        reconciled.push({ key, outcome });
        for (const w of waiters.filter((x) => reconciled.length >= x.count)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      },
    });
    client.put(RESOURCES.pikoClusters, makeCluster({ tls: { admin: { secretName: 'admin-tls' } } }) as unknown as KubeObject);
    await started();
    const first = reconciles(1);
    controller.startWorkers();
    await first;
    expect(reconciled).toEqual([{ key: 'edge/piko', outcome: 'requeue' }]);
    const fixed = reconciles(1);
    client.put(RESOURCES.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'admin-tls', namespace: 'edge' } });
    await fixed;
    expect(reconciled[1]).toEqual({ key: 'edge/piko', outcome: 'success' });
    expect(client.stored(RESOURCES.statefulSets, 'edge', 'piko')).toBeDefined();
  });

  it('ignores Lease renewals of a live node but not a node coming back', async () => {
    client.put(RESOURCES.pikoClusters, makeCluster() as unknown as KubeObject);
    await started();
    const first = reconciles(1);
    controller.startWorkers();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    const lease = (renewTimeMs: number): KubeObject => {
      const l = buildLease({
        cluster: 'piko',
        nodeId: 'piko-0',
        proxyAddr: 'x:1',
        adminAddr: 'x:2',
        durationMs: 15_000,
        acquireTimeMs: 0,
        renewTimeMs,
      });
      return { ...l, metadata: { ...l.metadata, namespace: 'edge' } };
    };
    const added = reconciles(1);
    client.put(RESOURCES.leases, lease(Date.now()));
    await added;
    const count = reconciled.length;
    client.put(RESOURCES.leases, lease(Date.now() + 1));
    await new Promise((resolve) => setImmediate(resolve));
    expect(reconciled.length).toBe(count);
    client.put(RESOURCES.leases, lease(Date.now() - 60_000));
    await new Promise((resolve) => setImmediate(resolve));
    const revived = reconciles(1);
    client.put(RESOURCES.leases, lease(Date.now()));
    await revived;
  });

  it('retries failures with backoff and counts them by result', async () => {
    client.put(RESOURCES.pikoClusters, makeCluster() as unknown as KubeObject);
    client.fail('apply', new KubeApiError('UNAVAILABLE', 'connection refused'), { plural: 'statefulsets', times: 2 });
    client.fail('apply', new KubeApiError('CONFLICT', 'modified', 409), { plural: 'pikoclusters' });
    await started();
    const done = reconciles(4);
    controller.startWorkers();
    await done;
    expect(reconciled.slice(0, 4).map((r) => r.outcome)).toEqual(['error', 'error', 'conflict', 'success']);
    const metrics = await registry.getSingleMetricAsString('piko_operator_reconcile_total');
    expect(metrics).toContain('piko_operator_reconcile_total{result="error"} 2');
    expect(metrics).toContain('piko_operator_reconcile_total{result="conflict"} 1');
    expect(await registry.getSingleMetricAsString('piko_operator_reconcile_errors_total')).toContain(
      'piko_operator_reconcile_errors_total 2',
    );
  });

  it('stops at once, drain or not, when it leads before its caches ever synced', async () => {
    client.fail('list', new KubeApiError('NOT_FOUND', 'the server could not find the requested resource', 404), { plural: 'pikoclusters' });
    controller.startInformers();
    controller.startWorkers();
    await controller.stopWorkers({ drain: true });
    expect(controller.isRunning).toBe(false);
    expect(reconciled).toEqual([]);
  });
});
