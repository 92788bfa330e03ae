/**
 * Three `piko server` processes as the pods of one cluster, each on its own
 * loopback address, sharing the Kubernetes registry of a real kube-apiserver
 * (test/k8s/control-plane.ts, or the cluster PIKO_TEST_KUBECONFIG names).
 */
import * as fs from 'node:fs';
import http from 'node:http';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import * as k8s from '@kubernetes/client-node';
import { listen, serve, type Listener } from '../../../dataplane/client';
import { request } from '../../helpers/http-client';
import { startServerProcess, stopAllPikoProcesses, type ServerProcess } from '../../helpers/piko-process';
import { startControlPlane, type ControlPlane } from '../../k8s/control-plane';

const START_TIMEOUT_MS = 60 * 60 * 1000;
const SECRET = randomBytes(24).toString('hex');
const LEASE = ['--cluster.kubernetes.lease-duration', '2s', '--cluster.kubernetes.renew-interval', '500ms'];

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let namespace: string;
const pods: ServerProcess[] = [];
const listeners: Listener[] = [];

async function startPod(index: number, extra: string[] = []): Promise<ServerProcess> {
  const pod = await startServerProcess(
    [
      '--cluster.registry',
      'kubernetes',
      '--cluster.node-id',
      `pod-${index}`,
      '--cluster.secret',
      SECRET,
      '--proxy.upstream-wait',
      '5s',
      '--proxy.access-log.disable',
      ...LEASE,
      ...extra,
    ],
    { host: `127.0.0.${index + 1}`, env: { KUBECONFIG: cp.kubeconfigPath, POD_NAMESPACE: namespace } },
  );
  // A pod that dies on its own shows in later tests only as ECONNREFUSED; say why here.
  let stopping = false;
  const stop = pod.stop.bind(pod);
  pod.stop = (signal) => {
    stopping = true;
    return stop(signal);
  };
  pod.child.once('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(
      `pod-${index} exited on its own (code ${code}, signal ${signal}); its last output:\n${pod.logs().slice(-8_000)}\n`,
    );
  });
  pods[index] = pod;
  return pod;
}

/** An upstream on `pod` for `endpointId` that answers with `name`. */
async function upstream(pod: ServerProcess, endpointId: string, name: string): Promise<Listener> {
  const listener = await listen(endpointId, { url: pod.upstreamUrl });
  serve(
    listener,
    http.createServer((_req, res) => res.end(name)),
  );
  listeners.push(listener);
  return listener;
}

function get(pod: ServerProcess, endpointId: string, headers: Record<string, string> = {}) {
  return request(`${pod.proxyUrl}/`, { headers: { 'x-piko-endpoint': endpointId, ...headers } });
}

interface NodeStatus {
  id: string;
  status: 'active' | 'unreachable' | 'left';
  endpoints: number;
  upstreams: number;
}

async function clusterNodes(pod: ServerProcess): Promise<NodeStatus[]> {
  return JSON.parse((await request(`${pod.adminUrl}/status/cluster/nodes`)).body) as NodeStatus[];
}

/**
 * Waits until `check` holds for the pod's view of the cluster. The view
 * lives in another process, so its admin API is polled: every 50 ms, bounded.
 */
async function until(pod: ServerProcess, check: (nodes: NodeStatus[]) => boolean, timeoutMs = 15_000): Promise<NodeStatus[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = await clusterNodes(pod);
    if (check(nodes)) return nodes;
    if (Date.now() > deadline) throw new Error(`cluster view never matched: ${JSON.stringify(nodes)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  cp = await startControlPlane();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  namespace = `cross-pod-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await Promise.all([0, 1, 2].map((i) => startPod(i)));
}, START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(listeners.map((l) => l.close({ timeoutMs: 1000 }).catch(() => undefined)));
  await Promise.all(pods.map((p) => p.stop()));
  await stopAllPikoProcesses();
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
  await cp?.stop();
});

describe('routing across pods through the Kubernetes registry', () => {
  it('answers a request sent to pod 2 from an upstream on pod 0', async () => {
    const listener = await upstream(pods[0] as ServerProcess, 'svc', 'from-pod-0');
    // A pod knows no name in front of it: without proxy.public_url it tells agents no URL.
    expect(listener.url).toBeUndefined();
    // pod 2 holds the request (proxy.upstream-wait) until its registry view shows the endpoint.
    const res = await get(pods[2] as ServerProcess, 'svc');
    expect(res).toMatchObject({ status: 200, body: 'from-pod-0' });
  });

  it("exports every series the chart's dashboard and alerts query", async () => {
    const chart = path.join(__dirname, '..', '..', '..', 'helm', 'piko', 'files');
    const dashboard = JSON.parse(fs.readFileSync(path.join(chart, 'dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
      templating: { list: { query?: { query?: string } | string }[] };
    };
    const rules = parseYaml(fs.readFileSync(path.join(chart, 'prometheus-rules.yaml'), 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const queries = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
      ...dashboard.templating.list.map((v) => (typeof v.query === 'string' ? v.query : (v.query?.query ?? ''))),
      ...rules.groups.flatMap((g) => g.rules.map((r) => r.expr)),
    ];
    const wanted = new Set(queries.flatMap((q) => q.match(/\bpiko_[a-z_]+/g) ?? []).map((m) => m.replace(/_(bucket|sum|count)$/, '')));
    expect(wanted.size).toBeGreaterThan(5);
    const families = new Set(
      (await request(`${pods[0]!.adminUrl}/metrics`)).body
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .map((l) => l.split(' ')[2]),
    );
    expect([...wanted].filter((m) => !families.has(m))).toEqual([]);
  });

  it('follows the upstream when it moves from pod 0 to pod 1', async () => {
    const moving = listeners.pop() as Listener;
    await moving.close();
    await upstream(pods[1] as ServerProcess, 'svc', 'from-pod-1');
    await until(
      pods[2] as ServerProcess,
      (nodes) => nodes.find((n) => n.id === 'pod-0')?.endpoints === 0 && nodes.find((n) => n.id === 'pod-1')?.endpoints === 1,
    );
    for (let i = 0; i < 5; i++) expect((await get(pods[2] as ServerProcess, 'svc')).body).toBe('from-pod-1');
  });

  it('refuses a forged forwarding hop', async () => {
    for (const headers of <Record<string, string>[]>[
      { 'x-piko-forward': 'true' },
      { 'x-piko-forward': 'true', 'x-piko-forward-auth': `pod-0.${Math.floor(Date.now() / 1000)}.${'ab'.repeat(32)}` },
    ]) {
      const res = await get(pods[1] as ServerProcess, 'svc', headers);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ error: 'invalid forwarding credential' });
    }
  });

  it('stops using a pod killed with SIGKILL once its lease expires, and keeps serving from the others', async () => {
    await upstream(pods[0] as ServerProcess, 'shared', 'a');
    await upstream(pods[1] as ServerProcess, 'shared', 'b');
    await until(
      pods[2] as ServerProcess,
      (nodes) =>
        nodes.filter((n) => n.endpoints > 0 && n.id !== 'pod-2').length === 2 && (nodes.find((n) => n.id === 'pod-0')?.endpoints ?? 0) >= 1,
    );
    await (pods[0] as ServerProcess).stop('SIGKILL');
    const killedAt = Date.now();
    // While pod 0's records still stand, a request drawn to it fails to connect
    // and is sent to pod 1 instead: nothing fails.
    for (let i = 0; i < 10; i++) expect((await get(pods[2] as ServerProcess, 'shared')).body).toBe('b');
    // Expired nodes are kept in the status as unreachable, and no longer routed to.
    await until(pods[2] as ServerProcess, (nodes) => nodes.find((n) => n.id === 'pod-0')?.status === 'unreachable', 10_000);
    // 2 s lease: gone well within a few lease durations.
    expect(Date.now() - killedAt).toBeLessThan(8_000);
  });

  it('loses no request forwarded to a pod while it shuts down gracefully', async () => {
    const leaving = await startPod(3);
    await upstream(leaving, 'drain', 'leaving');
    await upstream(pods[1] as ServerProcess, 'drain', 'staying');
    await until(
      pods[2] as ServerProcess,
      (nodes) => nodes.find((n) => n.id === 'pod-3')?.endpoints === 1 && (nodes.find((n) => n.id === 'pod-1')?.endpoints ?? 0) >= 2,
    );
    // Warm pod 2's keep-alive connections to pod 3, so the shutdown races reuse.
    for (let i = 0; i < 20; i++) await get(pods[2] as ServerProcess, 'drain');
    let stopped = false;
    const load = (async () => {
      const statuses: number[] = [];
      while (!stopped) {
        const batch = await Promise.all(Array.from({ length: 10 }, () => get(pods[2] as ServerProcess, 'drain')));
        statuses.push(...batch.map((r) => r.status));
      }
      return statuses;
    })();
    // A drained server exits 0, so a rollout's terminated containers read as completed, not crashed.
    expect(await leaving.stop('SIGTERM')).toBe(0);
    // A little more load after it is gone, on whatever view pod 2 has by then.
    for (let i = 0; i < 5; i++) await get(pods[2] as ServerProcess, 'drain');
    stopped = true;
    const statuses = await load;
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it("passes the client's Piko token on to the pod that checks it again, and keeps it from the upstream, which still gets its own Authorization", async () => {
    const key = randomBytes(16).toString('hex');
    const auth = ['--proxy.auth.hmac-secret-key', key];
    const [holding, entry] = await Promise.all([startPod(4, auth), startPod(5, auth)]);
    try {
      const listener = await listen('auth-headers', { url: holding.upstreamUrl });
      listeners.push(listener);
      serve(
        listener,
        http.createServer((req, res) => res.end(JSON.stringify(req.headers))),
      );
      await until(entry, (nodes) => nodes.find((n) => n.id === 'pod-4')?.endpoints === 1);
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(key));
      const res = await get(entry, 'auth-headers', { 'x-piko-authorization': `Bearer ${token}`, authorization: 'Basic YXBwOnVzZXI=' });
      expect(res.status).toBe(200);
      const seen = JSON.parse(res.body) as Record<string, string>;
      expect(seen['authorization']).toBe('Basic YXBwOnVzZXI=');
      expect(seen['x-piko-authorization']).toBeUndefined();
      expect((await get(entry, 'auth-headers')).status).toBe(401);
    } finally {
      await Promise.all([holding.stop(), entry.stop()]);
    }
  });

  it('keeps routing established endpoints while the apiserver is down for 20 s', async () => {
    if (!cp.canRestart) {
      // An existing cluster (PIKO_TEST_KUBECONFIG) cannot be stopped from here; routing is still asserted.
      expect((await get(pods[2] as ServerProcess, 'svc')).body).toBe('from-pod-1');
      return;
    }
    await cp.stopApiServer();
    const until20s = Date.now() + 20_000;
    let served = 0;
    try {
      while (Date.now() < until20s) {
        const res = await get(pods[2] as ServerProcess, 'svc');
        expect(res).toMatchObject({ status: 200, body: 'from-pod-1' });
        served++;
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await cp.startApiServer();
    }
    expect(served).toBeGreaterThan(40);
    // Once it is back the pods catch up: a new endpoint is routable across pods again.
    await upstream(pods[1] as ServerProcess, 'after-outage', 'back');
    await until(pods[2] as ServerProcess, (nodes) => nodes.find((n) => n.id === 'pod-1')?.endpoints === 3, 30_000);
    expect((await get(pods[2] as ServerProcess, 'after-outage')).body).toBe('back');
  }, 90_000);
});
