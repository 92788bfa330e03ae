/**
 * Cluster benchmark (issue 4): two `piko server` processes sharing the
 * Kubernetes registry of a real kube-apiserver built by test/k8s.
 *
 * - Route propagation: an upstream connects to pod A; one request is sent
 *   at once to pod B, which holds it (proxy.upstream-wait) until B's view of
 *   the registry shows the endpoint, so the reply time is the propagation
 *   time plus one request, measured without polling.
 * - apiserver writes under churn: upstreams connect to and leave pod A at
 *   200/s; pod A's own counter of apiserver writes gives writes/s.
 * - Cross-pod throughput: wrk through pod B (forwarded to A) against wrk
 *   through pod A (same pod), alternating.
 *
 * Run: `npx ts-node --transpile-only bench/cluster.ts` (after `make build`).
 * Prints a table and writes bench/results/cluster.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { listen, serve, type Listener } from '../dataplane/client';
import { request } from '../test/helpers/http-client';
import { startServerProcess, stopAllPikoProcesses, type ServerProcess } from '../test/helpers/piko-process';
import { startHttpService } from '../test/helpers/raw-upstream';
import { startControlPlane } from '../test/k8s/control-plane';
import { runWrk } from './lib/wrk';
import { startChild, killAllChildren } from './lib/procs';

const QUICK = process.env.BENCH_QUICK === '1';
const PROPAGATION_SAMPLES = QUICK ? 30 : 200;
const CHURN_SECONDS = QUICK ? 5 : 15;
const CHURN_PER_SECOND = 200;
const WRK_SECONDS = QUICK ? 3 : 6;
const SECRET = randomBytes(24).toString('hex');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function registryWrites(pod: ServerProcess): Promise<{ configmaps: number; leases: number }> {
  const text = (await request(`${pod.adminUrl}/metrics`)).body;
  const sum = (kind: string): number =>
    text
      .split('\n')
      .filter((l) => l.startsWith('piko_registry_apiserver_writes_total{') && l.includes(`kind="${kind}"`))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return { configmaps: sum('configmap') + sum('ConfigMap'), leases: sum('lease') + sum('Lease') };
}

async function main(): Promise<void> {
  const started = Date.now();
  const cp = await startControlPlane();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const namespace = `bench-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const env = { KUBECONFIG: cp.kubeconfigPath, POD_NAMESPACE: namespace };
  const common = [
    '--cluster.registry',
    'kubernetes',
    '--cluster.secret',
    SECRET,
    '--proxy.access-log.disable',
    '--proxy.upstream-wait',
    '5s',
  ];
  const podA = await startServerProcess([...common, '--cluster.node-id', 'pod-a'], { host: '127.0.0.1', env });
  const podB = await startServerProcess([...common, '--cluster.node-id', 'pod-b'], { host: '127.0.0.2', env });
  const app = http.createServer((_req, res) => res.end('ok'));
  const results: Record<string, unknown> = { date: new Date().toISOString(), quick: QUICK };

  try {
    // 1. Route propagation, one endpoint at a time.
    const samples: number[] = [];
    const held: Listener[] = [];
    for (let i = 0; i < PROPAGATION_SAMPLES; i++) {
      const listener = await listen(`prop-${i}`, { url: podA.upstreamUrl });
      serve(listener, app);
      const t0 = performance.now();
      const res = await request(`${podB.proxyUrl}/`, { headers: { 'x-piko-endpoint': `prop-${i}` } });
      if (res.status !== 200) throw new Error(`propagation request ${i} failed with ${res.status}: ${res.body}`);
      samples.push(performance.now() - t0);
      held.push(listener);
      // Isolated events: past the writer's flush interval (500 ms), so each
      // is the first change of a quiet period. Under sustained churn a change
      // can wait up to one flush interval; the churn run below shows the rate.
      await new Promise((r) => setTimeout(r, 600));
    }
    await Promise.all(held.map((l) => l.close({ timeoutMs: 1000 })));
    samples.sort((a, b) => a - b);
    results.propagationMs = {
      samples: samples.length,
      p50: percentile(samples, 50),
      p99: percentile(samples, 99),
      max: samples[samples.length - 1],
    };

    // 2. apiserver writes while upstreams connect and leave at 200/s.
    const before = await registryWrites(podA);
    const churnStart = performance.now();
    const live: Listener[] = [];
    let connects = 0;
    while (performance.now() - churnStart < CHURN_SECONDS * 1000) {
      const tickStart = performance.now();
      const batch = await Promise.all(
        Array.from({ length: CHURN_PER_SECOND / 10 }, (_, j) => listen(`churn-${connects + j}`, { url: podA.upstreamUrl })),
      );
      connects += batch.length;
      live.push(...batch);
      // Keep about 1 s of upstreams alive: each leaves a second after it came.
      const leaving = live.splice(0, Math.max(0, live.length - CHURN_PER_SECOND));
      await Promise.all(leaving.map((l) => l.close({ timeoutMs: 1000 })));
      const spent = performance.now() - tickStart;
      if (spent < 100) await new Promise((r) => setTimeout(r, 100 - spent));
    }
    const churnSeconds = (performance.now() - churnStart) / 1000;
    await Promise.all(live.map((l) => l.close({ timeoutMs: 1000 })));
    const after = await registryWrites(podA);
    results.churn = {
      seconds: churnSeconds,
      connectsPerSecond: connects / churnSeconds,
      configMapWritesPerSecond: (after.configmaps - before.configmaps) / churnSeconds,
      leaseWritesPerSecond: (after.leases - before.leases) / churnSeconds,
    };

    // 3. Cross-pod against same-pod throughput, through our agent on pod A.
    const service = await startHttpService((_req, res) => {
      res.setHeader('content-length', 100);
      res.end(Buffer.alloc(100, 'x'));
    });
    const root = path.resolve(__dirname, '..');
    const agent = startChild('agent', path.join(root, 'bin/piko'), [
      'agent',
      'http',
      'xpod',
      String(service.port),
      '--connect.url',
      podA.upstreamUrl,
      '--log.level',
      'warn',
      '--access-log.disable',
    ]);
    await podA.waitForLog((r) => r.message === 'upstream connected' && r.endpointId === 'xpod', 15_000).catch(() => undefined);
    await request(`${podB.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'xpod' } });
    const dir = mkdtempSync(path.join(tmpdir(), 'piko-cluster-bench-'));
    const same: number[] = [];
    const cross: number[] = [];
    const sameP99: number[] = [];
    const crossP99: number[] = [];
    for (let round = 0; round < 2; round++) {
      const a = await runWrk({
        url: `${podA.proxyUrl}/`,
        connections: 50,
        threads: 1,
        durationS: WRK_SECONDS,
        headers: { 'x-piko-endpoint': 'xpod' },
        dir,
      });
      const b = await runWrk({
        url: `${podB.proxyUrl}/`,
        connections: 50,
        threads: 1,
        durationS: WRK_SECONDS,
        headers: { 'x-piko-endpoint': 'xpod' },
        dir,
      });
      same.push(a.rps);
      cross.push(b.rps);
      sameP99.push(a.latencyUs.p99);
      crossP99.push(b.latencyUs.p99);
    }
    await agent.stop();
    await service.close();
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    results.crossPod = {
      samePodRps: mean(same),
      crossPodRps: mean(cross),
      ratio: mean(cross) / mean(same),
      samePodP99Ms: mean(sameP99) / 1000,
      crossPodP99Ms: mean(crossP99) / 1000,
    };
  } finally {
    await podA.stop();
    await podB.stop();
    await stopAllPikoProcesses();
    killAllChildren();
    await cp.stop();
  }
  results.seconds = (Date.now() - started) / 1000;
  mkdirSync(path.resolve(__dirname, 'results'), { recursive: true });
  writeFileSync(path.resolve(__dirname, 'results/cluster.json'), JSON.stringify(results, null, 2));
  console.log(JSON.stringify(results, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  killAllChildren();
  process.exit(1);
});
