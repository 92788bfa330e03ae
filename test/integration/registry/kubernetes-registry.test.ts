/**
 * The Kubernetes registry against a real kube-apiserver, etcd and
 * kube-controller-manager (test/k8s/control-plane.ts), or against the
 * cluster named by PIKO_TEST_KUBECONFIG. Each test has its own namespace;
 * several registries in one process stand for several pods.
 */
import { EventEmitter, once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import {
  createKubernetesRegistry,
  type CreateKubernetesRegistryOptions,
  type KubernetesRegistry,
} from '../../../dataplane/registry/kubernetes/kubernetes-registry';
import { createLogger } from '../../../dataplane/log/logger';
import { buildLease, buildShard, serializeShard } from '../../../dataplane/registry/kubernetes/objects';
import { RecordSigner } from '../../../dataplane/registry/kubernetes/record-signature';
import { startControlPlane, type ControlPlane } from '../../k8s/control-plane';

// A cold build of the control plane compiles Kubernetes; a warm start takes seconds.
const START_TIMEOUT_MS = 60 * 60 * 1000;
const EVENT_TIMEOUT_MS = 20_000;
const FLUSH_INTERVAL_MS = 500;
const SHORT_LEASE = { leaseDurationMs: 2_000, renewIntervalMs: 500 };
const CLUSTER_SECRET = 'cluster-secret-0123456789abcdef';

/** The Role of docs/registry-design.md §7, verb for verb. */
const REGISTRY_ROLE_RULES: k8s.V1PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
];

interface TestNode {
  registry: KubernetesRegistry;
  metrics: Registry;
  changes: EventEmitter;
}

let cp: ControlPlane;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let coordination: k8s.CoordinationV1Api;
let rbac: k8s.RbacAuthorizationV1Api;
const running: KubernetesRegistry[] = [];
const namespaces: string[] = [];

beforeAll(async () => {
  cp = await startControlPlane({ withControllerManager: true });
  kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
}, START_TIMEOUT_MS);

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

afterAll(async () => {
  // Matters on an existing cluster (PIKO_TEST_KUBECONFIG); our own is thrown away whole.
  await Promise.allSettled(namespaces.map((name) => core.deleteNamespace({ name })));
  await cp?.stop();
});

async function newNamespace(): Promise<string> {
  const name = `registry-${randomBytes(4).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name } } });
  namespaces.push(name);
  return name;
}

function node(namespace: string, nodeId: string, options: Partial<CreateKubernetesRegistryOptions> = {}): TestNode {
  const metrics = new Registry();
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const registry = createKubernetesRegistry({
    nodeId,
    proxyAddr: `127.0.0.${running.length + 1}:8000`,
    adminAddr: `127.0.0.${running.length + 1}:8002`,
    namespace,
    kubeconfigPath: cp.kubeconfigPath,
    secret: CLUSTER_SECRET,
    metricsRegistry: metrics,
    retryBackoff: { minMs: 200, maxMs: 2_000 },
    requestTimeoutMs: 5_000,
    onChange: () => changes.emit('change'),
    env: {},
    ...(process.env['PIKO_REGISTRY_DEBUG'] ? { logger: createLogger({ level: 'debug', format: 'console' }).child({ nodeId }) } : {}),
    ...options,
  });
  running.push(registry);
  return { registry, metrics, changes };
}

/** Resolves once `cond` holds, checking after each change of the node's view; rejects after the timeout. */
async function until(n: TestNode, cond: () => boolean, what: string, timeoutMs = EVENT_TIMEOUT_MS): Promise<void> {
  if (cond()) return;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  try {
    for (;;) {
      await once(n.changes, 'change', { signal: ac.signal });
      if (cond()) return;
    }
  } catch (err) {
    throw ac.signal.aborted ? ac.signal.reason : err;
  } finally {
    clearTimeout(timer);
  }
}

function holders(n: TestNode, endpointId: string): Record<string, number> {
  return Object.fromEntries(n.registry.lookup(endpointId).map((h) => [h.node.id, h.upstreams]));
}

/** Order-insensitive, since the order of holders and tables follows event arrival. */
function canonical(table: Readonly<Record<string, number>>): string {
  return JSON.stringify(Object.entries(table).sort(([x], [y]) => (x < y ? -1 : 1)));
}

function sameHolders(n: TestNode, endpointId: string, want: Record<string, number>): () => boolean {
  return () => canonical(holders(n, endpointId)) === canonical(want);
}

async function writes(n: TestNode, kind: 'Lease' | 'ConfigMap', result?: string): Promise<number> {
  const data = await n.metrics.getSingleMetric('piko_registry_apiserver_writes_total')?.get();
  return (data?.values ?? [])
    .filter((v) => v.labels['kind'] === kind && (result === undefined || v.labels['result'] === result))
    .reduce((sum, v) => sum + v.value, 0);
}

async function objectsOf(namespace: string, nodeId: string): Promise<string[]> {
  const labelSelector = `piko.dev/node=${nodeId}`;
  const [leases, configMaps] = await Promise.all([
    coordination.listNamespacedLease({ namespace, labelSelector }),
    core.listNamespacedConfigMap({ namespace, labelSelector }),
  ]);
  return [
    ...leases.items.map((o) => `Lease/${o.metadata?.name ?? ''}`),
    ...configMaps.items.map((o) => `ConfigMap/${o.metadata?.name ?? ''}`),
  ];
}

/** Resolves once the node has no ConfigMaps left, by watching their deletions. */
async function untilNoConfigMaps(namespace: string, nodeId: string, timeoutMs = EVENT_TIMEOUT_MS): Promise<void> {
  const labelSelector = `piko.dev/node=${nodeId}`;
  const list = await core.listNamespacedConfigMap({ namespace, labelSelector });
  const remaining = new Set(list.items.map((o) => o.metadata?.name ?? ''));
  if (remaining.size === 0) return;
  let controller: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`ConfigMaps of ${nodeId} still there after ${timeoutMs} ms`)), timeoutMs);
      new k8s.Watch(kc)
        .watch(
          `/api/v1/namespaces/${namespace}/configmaps`,
          { labelSelector, resourceVersion: list.metadata?.resourceVersion ?? '' },
          (phase: string, obj: k8s.KubernetesObject) => {
            if (phase === 'DELETED') remaining.delete(obj.metadata?.name ?? '');
            if (remaining.size === 0) resolve();
          },
          (err: unknown) => {
            if (remaining.size > 0) reject(new Error('watch ended', { cause: err }));
          },
        )
        .then((c) => {
          controller = c;
        }, reject);
    });
  } finally {
    clearTimeout(timer);
    controller?.abort();
  }
}

function report(line: string): void {
  if (process.env['PIKO_REGISTRY_REPORT']) process.stdout.write(`${line}\n`);
}

describe('Kubernetes registry against a real apiserver', () => {
  it('three nodes see each other’s endpoints and follow count changes', async () => {
    const ns = await newNamespace();
    const [a, b, c] = [node(ns, 'node-a'), node(ns, 'node-b'), node(ns, 'node-c')];
    await Promise.all([a, b, c].map((n) => n.registry.start()));

    a.registry.setLocalEndpoint('my-endpoint', 2);
    b.registry.setLocalEndpoint('my-endpoint', 1);
    await expect(c.registry.waitForEndpoint('my-endpoint', EVENT_TIMEOUT_MS)).resolves.toBe(true);
    await until(c, sameHolders(c, 'my-endpoint', { 'node-a': 2, 'node-b': 1 }), 'both holders on c');
    await until(a, sameHolders(a, 'my-endpoint', { 'node-b': 1 }), 'b on a, a never lists itself');

    a.registry.setLocalEndpoint('my-endpoint', 5);
    b.registry.setLocalEndpoint('my-endpoint', 0);
    await until(c, sameHolders(c, 'my-endpoint', { 'node-a': 5 }), 'new counts on c');
    await until(b, sameHolders(b, 'my-endpoint', { 'node-a': 5 }), 'new counts on b');

    const seen = c.registry.nodes().map((n) => [n.id, n.status, n.proxyAddr]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ['node-c', 'active', '127.0.0.3:8000'],
        ['node-a', 'active', '127.0.0.1:8000'],
        ['node-b', 'active', '127.0.0.2:8000'],
      ]),
    );
    expect(await objectsOf(ns, 'node-a')).toEqual(['Lease/piko-node-node-a', 'ConfigMap/piko-endpoints-node-a-0']);
  });

  it('ignores records not signed with the cluster secret, and forged edits of real ones', async () => {
    const ns = await newNamespace();
    const [a, b] = [node(ns, 'node-a', SHORT_LEASE), node(ns, 'node-b', SHORT_LEASE)];
    await Promise.all([a.registry.start(), b.registry.start()]);
    a.registry.setLocalEndpoint('e', 1);
    await until(b, sameHolders(b, 'e', { 'node-a': 1 }), 'a on b');
    const realProxyAddr = b.registry.nodes().find((n) => n.id === 'node-a')?.proxyAddr;

    // Someone with write access to the namespace, but not the secret (or with another one).
    const forged = { cluster: 'piko', proxyAddr: '192.0.2.66:8000', adminAddr: '192.0.2.66:8002', durationMs: 60_000 };
    const evilLease = buildLease({ ...forged, nodeId: 'evil', acquireTimeMs: Date.now(), renewTimeMs: Date.now() });
    const wrongKey = new RecordSigner('not-the-cluster-secret-at-all').sealLease(
      buildLease({ ...forged, nodeId: 'evil2', acquireTimeMs: Date.now(), renewTimeMs: Date.now() }),
    );
    await coordination.createNamespacedLease({ namespace: ns, body: evilLease as k8s.V1Lease });
    await coordination.createNamespacedLease({ namespace: ns, body: wrongKey as k8s.V1Lease });
    for (const nodeId of ['evil', 'evil2', 'node-a']) {
      const shard = buildShard({
        cluster: 'piko',
        nodeId,
        index: 7,
        json: serializeShard(
          new Map([
            ['e', 9],
            ['stolen', 1],
          ]),
        ),
      });
      await core.createNamespacedConfigMap({ namespace: ns, body: shard as k8s.V1ConfigMap });
    }
    // And a real Lease pointed elsewhere.
    await coordination.patchNamespacedLease(
      {
        namespace: ns,
        name: 'piko-node-node-a',
        body: [{ op: 'add', path: '/metadata/annotations/piko.dev~1proxy-addr', value: '192.0.2.66:8000' }],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );

    // Then one genuine change on each watch, which b acts on: a watch delivers in order, so once
    // b has seen both, it has seen (and refused) every forgery written before them.
    a.registry.setLocalEndpoint('sentinel', 1);
    const c = node(ns, 'node-c', SHORT_LEASE);
    await c.registry.start();
    await until(b, () => holders(b, 'sentinel')['node-a'] === 1 && b.registry.nodes().some((n) => n.id === 'node-c'), 'the sentinels on b');

    // Each forged object reached b's informers and was refused there: 3 Leases (2 new, 1 edit), 3 ConfigMaps.
    const refused = async (kind: string): Promise<number> =>
      ((await b.metrics.getSingleMetric('piko_registry_unsigned_records_total')?.get())?.values ?? [])
        .filter((v) => v.labels['kind'] === kind)
        .reduce((sum, v) => sum + v.value, 0);
    expect(await refused('Lease')).toBe(3);
    expect(await refused('ConfigMap')).toBe(3);
    expect(holders(b, 'e')).toEqual({ 'node-a': 1 });
    expect(holders(b, 'stolen')).toEqual({});
    expect(
      b.registry
        .nodes()
        .map((n) => n.id)
        .sort(),
    ).toEqual(['node-a', 'node-b', 'node-c']);
    expect(b.registry.nodes().find((n) => n.id === 'node-a')?.proxyAddr).toBe(realProxyAddr);
  });

  it('drops a node that stops renewing once its Lease expires', async () => {
    const ns = await newNamespace();
    const [a, b] = [node(ns, 'node-a', SHORT_LEASE), node(ns, 'node-b', SHORT_LEASE)];
    await Promise.all([a.registry.start(), b.registry.start()]);
    a.registry.setLocalEndpoint('e', 1);
    await until(b, sameHolders(b, 'e', { 'node-a': 1 }), 'a on b');

    // SIGKILL as the others see it: renewals and writes stop, nothing is deleted.
    await a.registry.abandon();
    const killedAt = Date.now();
    expect(holders(b, 'e')).toEqual({ 'node-a': 1 });
    await until(b, sameHolders(b, 'e', {}), 'a to expire on b', 10_000);
    const gone = Date.now() - killedAt;
    report(`lease expiry: node dropped ${gone} ms after its last renewal stopped (lease 2 s, renew 0.5 s)`);
    // Within one lease duration of the last renewal, plus a watch event's latency.
    expect(gone).toBeLessThanOrEqual(SHORT_LEASE.leaseDurationMs + 1_000);
    expect(b.registry.nodes().find((n) => n.id === 'node-a')?.status).toBe('unreachable');
    expect(await objectsOf(ns, 'node-a')).toHaveLength(2);
  });

  it('keeps routing on the last state while the apiserver is down, and catches up when it returns', async () => {
    const ns = await newNamespace();
    const [a, b] = [node(ns, 'node-a', SHORT_LEASE), node(ns, 'node-b', SHORT_LEASE)];
    await Promise.all([a.registry.start(), b.registry.start()]);
    a.registry.setLocalEndpoint('e', 1);
    await until(b, sameHolders(b, 'e', { 'node-a': 1 }), 'a on b');
    if (!cp.canRestart) return; // An existing cluster's apiserver is not ours to stop.

    let lostDuringOutage = false;
    const watchDuringOutage = (): void => {
      if (b.registry.lookup('e').length === 0) lostDuringOutage = true;
    };
    b.changes.on('change', watchDuringOutage);
    await cp.stopApiServer();
    try {
      // Writes made while the apiserver is away.
      a.registry.setLocalEndpoint('e', 3);
      a.registry.setLocalEndpoint('f', 1);
      // Four lease durations with no renewal reaching anyone: the outage itself, not a wait for an event.
      await delay(4 * SHORT_LEASE.leaseDurationMs);
      watchDuringOutage();
      expect(lostDuringOutage).toBe(false);
      expect(holders(b, 'e')).toEqual({ 'node-a': 1 });
      expect(await writes(a, 'ConfigMap', 'error')).toBeGreaterThan(0);
      expect(await writes(a, 'Lease', 'error')).toBeGreaterThan(0);
    } finally {
      await cp.startApiServer();
    }

    await until(b, () => holders(b, 'e')['node-a'] === 3 && holders(b, 'f')['node-a'] === 1, 'catch-up on b');
    b.changes.off('change', watchDuringOutage);
    expect(lostDuringOutage).toBe(false);
    // Liveness is judged again after the grace, and a renews: still there.
    await delay(2 * SHORT_LEASE.leaseDurationMs);
    expect(holders(b, 'e')).toEqual({ 'node-a': 3 });
  }, 90_000);

  it('spreads 2,000 endpoints over 3 nodes to every node within the write bound', async () => {
    const ns = await newNamespace();
    const nodes = [node(ns, 'node-0'), node(ns, 'node-1'), node(ns, 'node-2')];
    await Promise.all(nodes.map((n) => n.registry.start()));
    const before = await Promise.all(nodes.map((n) => writes(n, 'ConfigMap')));

    const total = 2_000;
    const owner = (k: number): number => k % nodes.length;
    const started = Date.now();
    for (let k = 0; k < total; k++) nodes[owner(k)]!.registry.setLocalEndpoint(`endpoint-${k}`, 1 + (k % 3));

    const visible = (i: number) => (): boolean =>
      nodes[i]!.registry.nodes()
        .filter((n) => n.id !== `node-${i}` && n.status === 'active')
        .reduce((sum, n) => sum + Object.keys(n.endpoints).length, 0) ===
      total - Math.ceil((total - i) / nodes.length);
    await Promise.all(nodes.map((n, i) => until(n, visible(i), `all endpoints on node-${i}`)));
    const elapsed = Date.now() - started;
    for (let k = 0; k < total; k++) {
      for (let i = 0; i < nodes.length; i++) {
        const want = i === owner(k) ? {} : { [`node-${owner(k)}`]: 1 + (k % 3) };
        expect(holders(nodes[i]!, `endpoint-${k}`)).toEqual(want);
      }
    }
    // The counter moves when a write's response arrives, which may be after its watch event
    // reached the others; letting one more flush interval pass can only count more writes.
    await delay(FLUSH_INTERVAL_MS);
    const burst = await Promise.all(nodes.map(async (n, i) => (await writes(n, 'ConfigMap')) - before[i]!));
    report(`2,000 endpoints: visible everywhere after ${elapsed} ms; ConfigMap writes per node ${burst.join(', ')}`);
    for (const w of burst) expect(w).toBeLessThanOrEqual(1 + Math.ceil(elapsed / FLUSH_INTERVAL_MS));

    // Churn: 5 count changes every 10 ms timer tick, about 500/s across the three nodes (Piko's
    // cluster-wide target), for 5 s.
    const churnMs = 5_000;
    const mark = await Promise.all(nodes.map((n) => writes(n, 'ConfigMap')));
    const churnStart = Date.now();
    let step = 0;
    while (Date.now() - churnStart < churnMs) {
      for (let j = 0; j < 5; j++, step++) {
        const k = (step * 7919) % total;
        nodes[owner(k)]!.registry.setLocalEndpoint(`endpoint-${k}`, step % 4);
      }
      await delay(10);
    }
    const churnElapsed = Date.now() - churnStart;
    const churnWrites = await Promise.all(nodes.map(async (n, i) => (await writes(n, 'ConfigMap')) - mark[i]!));
    report(
      `churn: ${step} changes in ${churnElapsed} ms (${Math.round((step * 1000) / churnElapsed)}/s); ` +
        `ConfigMap writes per node ${churnWrites.join(', ')} (${churnWrites
          .map((w) => ((w * 1000) / churnElapsed).toFixed(2))
          .join(', ')}/s)`,
    );
    for (const w of churnWrites) expect(w).toBeLessThanOrEqual(1 + Math.ceil(churnElapsed / FLUSH_INTERVAL_MS));

    // Everyone converges on the final tables.
    const tableOf = (i: number): string => canonical(nodes[i]!.registry.nodes()[0]!.endpoints);
    await Promise.all(
      nodes.map((n, i) =>
        until(
          n,
          () =>
            nodes.every((_, j) => {
              if (j === i) return true;
              const seen = n.registry.nodes().find((r) => r.id === `node-${j}`);
              return seen !== undefined && canonical(seen.endpoints) === tableOf(j);
            }),
          `final tables on node-${i}`,
        ),
      ),
    );
  }, 90_000);

  it('deletes the node’s Lease and ConfigMaps on graceful stop', async () => {
    const ns = await newNamespace();
    const [a, b] = [node(ns, 'node-a'), node(ns, 'node-b')];
    await Promise.all([a.registry.start(), b.registry.start()]);
    a.registry.setLocalEndpoint('e', 1);
    await until(b, sameHolders(b, 'e', { 'node-a': 1 }), 'a on b');
    expect(await objectsOf(ns, 'node-a')).toHaveLength(2);

    await a.registry.stop();
    expect(await objectsOf(ns, 'node-a')).toEqual([]);
    await until(b, () => b.registry.nodes().every((n) => n.id !== 'node-a'), 'a gone from b');
    expect(holders(b, 'e')).toEqual({});
  });

  it('works with only the documented namespaced Role, and fails start without it', async () => {
    const ns = await newNamespace();
    for (const name of ['piko', 'nobody']) {
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
    }
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'piko-registry' }, rules: REGISTRY_ROLE_RULES } });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'piko-registry' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'piko-registry' },
        subjects: [{ kind: 'ServiceAccount', name: 'piko', namespace: ns }],
      },
    });
    const kubeconfigPath = await cp.kubeconfigForServiceAccount(ns, 'piko');
    // A small shard cap makes the writer grow and shrink shards: apply, create and delete all run.
    const options = { kubeconfigPath, maxShardBytes: 2_048 };
    const [a, b] = [node(ns, 'node-a', options), node(ns, 'node-b', options)];
    await Promise.all([a.registry.start(), b.registry.start()]);
    for (let k = 0; k < 200; k++) a.registry.setLocalEndpoint(`endpoint-${k}`, 1);
    await until(b, () => b.registry.lookup('endpoint-199').length === 1, 'endpoints on b');
    for (let k = 1; k < 200; k++) a.registry.setLocalEndpoint(`endpoint-${k}`, 0);
    await until(b, () => b.registry.lookup('endpoint-199').length === 0, 'removals on b');
    await until(b, sameHolders(b, 'endpoint-0', { 'node-a': 1 }), 'the remaining endpoint on b');
    expect(await writes(a, 'ConfigMap', 'error')).toBe(0);
    expect(await writes(a, 'Lease', 'error')).toBe(0);
    await a.registry.stop();
    expect(await objectsOf(ns, 'node-a')).toEqual([]);

    const nobody = node(ns, 'node-c', {
      kubeconfigPath: await cp.kubeconfigForServiceAccount(ns, 'nobody'),
      startTimeoutMs: 3_000,
    });
    await expect(nobody.registry.start()).rejects.toMatchObject({
      code: 'START_TIMEOUT',
      cause: expect.objectContaining({ code: 'FORBIDDEN' }),
    });
  });

  it('loses its records to the garbage collector when its Pod is deleted', async () => {
    const ns = await newNamespace();
    // Pod admission needs the namespace's default ServiceAccount, which the controller manager
    // creates shortly after the namespace: create it now unless it won that race.
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'default' } } }).catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 409) throw err;
    });
    const pod = await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'piko-0' }, spec: { containers: [{ name: 'piko', image: 'piko:test' }] } },
    });
    // A long lease, so only the garbage collector can make the node disappear in time.
    const long = { leaseDurationMs: 120_000, renewIntervalMs: 30_000 };
    const a = node(ns, 'piko-0', { ...long, env: { POD_NAME: 'piko-0', POD_UID: pod.metadata!.uid! } });
    const b = node(ns, 'piko-1', long);
    await Promise.all([a.registry.start(), b.registry.start()]);
    a.registry.setLocalEndpoint('e', 1);
    await until(b, sameHolders(b, 'e', { 'piko-0': 1 }), 'a on b');

    await a.registry.abandon();
    await core.deleteNamespacedPod({ name: 'piko-0', namespace: ns });
    await until(b, () => b.registry.nodes().every((n) => n.id !== 'piko-0'), 'the collected node gone from b', 60_000);
    expect(holders(b, 'e')).toEqual({});
    await untilNoConfigMaps(ns, 'piko-0', 60_000);
    expect(await objectsOf(ns, 'piko-0')).toEqual([]);
  }, 90_000);
});
