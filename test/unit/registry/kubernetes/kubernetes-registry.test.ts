import { Registry } from 'prom-client';
import {
  KubernetesRegistry,
  KubernetesRegistryError,
  type KubernetesRegistryOptions,
} from '../../../../dataplane/registry/kubernetes/kubernetes-registry';
import type { ConfigMapObject, LeaseObject } from '../../../../dataplane/registry/kubernetes/objects';
import { RESOURCES } from '../../../../dataplane/kube/client';
import { FakeKubeClient } from '../../kube/fake-kube-client';

const NS = 'piko-system';

const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);

describe('KubernetesRegistry (in-memory apiserver)', () => {
  let server: FakeKubeClient;
  const registries: KubernetesRegistry[] = [];

  function node(nodeId: string, extra: Partial<KubernetesRegistryOptions> = {}): KubernetesRegistry {
    const r = new KubernetesRegistry({
      nodeId,
      proxyAddr: `${nodeId}:8000`,
      adminAddr: `${nodeId}:8002`,
      client: server,
      namespace: NS,
      secret: 'cluster-secret-0123456789',
      leaseDurationMs: 15_000,
      renewIntervalMs: 5_000,
      ...extra,
    });
    registries.push(r);
    return r;
  }

  function holders(r: KubernetesRegistry, endpointId: string): Record<string, number> {
    return Object.fromEntries(r.lookup(endpointId).map((h) => [h.node.id, h.upstreams]));
  }

  beforeEach(() => {
    jest.useFakeTimers({ now: T0, doNotFake: ['queueMicrotask', 'nextTick'] });
    server = new FakeKubeClient();
  });

  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.stop()));
    jest.useRealTimers();
  });

  it('shows each node the endpoints of the others, and the counts as they change', async () => {
    const [a, b, c] = [node('a'), node('b'), node('c')];
    await Promise.all([a.start(), b.start(), c.start()]);
    a.setLocalEndpoint('e', 2);
    b.setLocalEndpoint('e', 1);
    const seen = c.waitForEndpoint('e', 1000);
    await jest.advanceTimersByTimeAsync(0);
    await expect(seen).resolves.toBe(true);
    expect(holders(c, 'e')).toEqual({ a: 2, b: 1 });
    expect(holders(a, 'e')).toEqual({ b: 1 });
    a.setLocalEndpoint('e', 0);
    await jest.advanceTimersByTimeAsync(500);
    expect(holders(c, 'e')).toEqual({ b: 1 });
    expect(c.nodes().map((n) => [n.id, n.status])).toEqual([
      ['c', 'active'],
      ['a', 'active'],
      ['b', 'active'],
    ]);
    expect(b.nodes()[0]?.endpoints).toEqual({ e: 1 });
  });

  it('drops a node that stops renewing once its Lease expires', async () => {
    const [a, b] = [node('a'), node('b')];
    await Promise.all([a.start(), b.start()]);
    a.setLocalEndpoint('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    expect(holders(b, 'e')).toEqual({ a: 1 });
    // SIGKILL: a's timers stop, its objects stay.
    await a.abandon();
    await jest.advanceTimersByTimeAsync(14_000);
    expect(holders(b, 'e')).toEqual({ a: 1 });
    await jest.advanceTimersByTimeAsync(6_000);
    expect(holders(b, 'e')).toEqual({});
    expect(b.nodes().find((n) => n.id === 'a')?.status).toBe('unreachable');
  });

  it('routes on the last state through an outage and catches up afterwards', async () => {
    const [a, b] = [node('a'), node('b')];
    await Promise.all([a.start(), b.start()]);
    a.setLocalEndpoint('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    server.down = true;
    a.setLocalEndpoint('e', 3);
    a.setLocalEndpoint('f', 1);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(holders(b, 'e')).toEqual({ a: 1 });
    server.down = false;
    await jest.advanceTimersByTimeAsync(35_000);
    expect(holders(b, 'e')).toEqual({ a: 3 });
    expect(holders(b, 'f')).toEqual({ a: 1 });
    // And liveness is judged again: still alive because a renews.
    await jest.advanceTimersByTimeAsync(30_000);
    expect(holders(b, 'e')).toEqual({ a: 3 });
  });

  it('expires nobody while its own renewals fail, even with its watch still open', async () => {
    const [a, b] = [node('a'), node('b')];
    await Promise.all([a.start(), b.start()]);
    a.setLocalEndpoint('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    server.refuseWrites = true;
    await jest.advanceTimersByTimeAsync(60_000);
    expect(holders(b, 'e')).toEqual({ a: 1 });
    server.refuseWrites = false;
    await jest.advanceTimersByTimeAsync(5_000);
    // Judging again, and a renews, so it stays; once it stops, it goes.
    await jest.advanceTimersByTimeAsync(30_000);
    expect(holders(b, 'e')).toEqual({ a: 1 });
    await a.abandon();
    await jest.advanceTimersByTimeAsync(20_000);
    expect(holders(b, 'e')).toEqual({});
  });

  it('deletes its Lease and shards on stop and the others forget it', async () => {
    const [a, b] = [node('a'), node('b')];
    await Promise.all([a.start(), b.start()]);
    a.setLocalEndpoint('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    await a.stop();
    await jest.advanceTimersByTimeAsync(0);
    expect(server.objectsOf(RESOURCES.leases).has('piko-node-a')).toBe(false);
    expect([...server.objectsOf(RESOURCES.configMaps).keys()]).toEqual([]);
    expect(holders(b, 'e')).toEqual({});
    expect(b.nodes().map((n) => n.id)).toEqual(['b']);
    a.setLocalEndpoint('e', 2);
    await expect(a.waitForEndpoint('x', 1000)).resolves.toBe(false);
  });

  it('owns its shards by the pod when known, else by its Lease', async () => {
    const withPod = node('a', { pod: { name: 'piko-a', uid: 'pod-uid' } });
    const without = node('b');
    await Promise.all([withPod.start(), without.start()]);
    withPod.setLocalEndpoint('e', 1);
    without.setLocalEndpoint('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    const cmA = server.objectsOf(RESOURCES.configMaps).get('piko-endpoints-a-0') as ConfigMapObject;
    const cmB = server.objectsOf(RESOURCES.configMaps).get('piko-endpoints-b-0') as ConfigMapObject;
    const leaseA = server.objectsOf(RESOURCES.leases).get('piko-node-a') as LeaseObject;
    const leaseB = server.objectsOf(RESOURCES.leases).get('piko-node-b') as LeaseObject;
    expect(cmA.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'piko-a', uid: 'pod-uid' }]);
    expect(leaseA.metadata.ownerReferences?.[0]?.uid).toBe('pod-uid');
    expect(leaseB.metadata.ownerReferences).toBeUndefined();
    expect(cmB.metadata.ownerReferences).toEqual([
      { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: 'piko-node-b', uid: leaseB.metadata.uid },
    ]);
  });

  it('rewrites its shards with the new owner when its Lease is recreated', async () => {
    const a = node('a');
    await a.start();
    a.setLocalEndpoint('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    server.remove(RESOURCES.leases, NS, 'piko-node-a');
    await jest.advanceTimersByTimeAsync(5_500);
    const lease = server.objectsOf(RESOURCES.leases).get('piko-node-a') as LeaseObject;
    const cm = server.objectsOf(RESOURCES.configMaps).get('piko-endpoints-a-0') as ConfigMapObject;
    expect(cm.metadata.ownerReferences?.[0]?.uid).toBe(lease.metadata.uid);
  });

  it('cleans up what an earlier run with the same node ID left behind', async () => {
    const first = node('a');
    await first.start();
    first.setLocalEndpoint('old', 1);
    await jest.advanceTimersByTimeAsync(0);
    await first.abandon();
    const second = node('a');
    const b = node('b');
    await Promise.all([second.start(), b.start()]);
    second.setLocalEndpoint('new', 1);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(holders(b, 'old')).toEqual({});
    expect(holders(b, 'new')).toEqual({ a: 1 });
  });

  it('fails start with START_TIMEOUT and the cause when the apiserver cannot be reached', async () => {
    server.down = true;
    const metrics = new Registry();
    const a = node('a', { startTimeoutMs: 3_000, metricsRegistry: metrics });
    const started = a.start();
    const outcome = expect(started).rejects.toMatchObject({ code: 'START_TIMEOUT' });
    await jest.advanceTimersByTimeAsync(3_000);
    await outcome;
    await expect(started).rejects.toBeInstanceOf(KubernetesRegistryError);
    await expect(started).rejects.toHaveProperty('cause.code', 'UNAVAILABLE');
    const restarts = await metrics.getSingleMetric('piko_registry_watch_restarts_total')?.get();
    expect(restarts?.values.reduce((s, v) => s + v.value, 0)).toBeGreaterThan(0);
  });

  it('closes the client it owns once stop() has deleted its records, and once only', async () => {
    const closed: boolean[] = [];
    const a = node('a', { closeClient: async () => void closed.push(server.objectsOf(RESOURCES.leases).has('piko-node-a')) });
    await a.start();
    expect(closed).toEqual([]);
    await Promise.all([a.stop(), a.stop()]);
    // Closed after the Lease delete went out, never before.
    expect(closed).toEqual([false]);
  });

  it('counts its writes by kind and result', async () => {
    const metrics = new Registry();
    const a = node('a', { metricsRegistry: metrics });
    await a.start();
    for (let i = 0; i < 100; i++) a.setLocalEndpoint(`e${i}`, 1);
    await jest.advanceTimersByTimeAsync(10_000);
    const writes = (await metrics.getSingleMetric('piko_registry_apiserver_writes_total')?.get())?.values ?? [];
    const count = (kind: string) => writes.filter((v) => v.labels.kind === kind).reduce((s, v) => s + v.value, 0);
    expect(count('ConfigMap')).toBe(1);
    // The write at start plus one per 5 s.
    expect(count('Lease')).toBe(3);
  });

  it('rejects a renew interval not shorter than the lease duration', () => {
    expect(() => node('a', { leaseDurationMs: 5_000, renewIntervalMs: 5_000 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
  });
});
