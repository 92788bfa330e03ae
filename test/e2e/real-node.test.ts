/**
 * The user path on real pods (test/k8s/node.ts): `helm install` of the chart with our image, the
 * PikoCluster of docs/examples/pikocluster.yaml, and the agent sidecar of
 * docs/examples/agent-sidecar.yaml, each changed only in its image; then requests through the
 * piko-proxy Service's ClusterIP, routed by kube-proxy, reach the app behind the sidecar.
 */
import * as fs from 'node:fs';
import http from 'node:http';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { parseAllDocuments } from 'yaml';
import { loadForwardConfig } from '../../dataplane/config/forward-config';
import { Forwarder } from '../../dataplane/forward/forwarder';
import { silentLogger } from '../../dataplane/log/logger';
import { request } from '../helpers/http-client';
import { startNode, type TestNode } from '../k8s/node';

const REPO = path.resolve(__dirname, '..', '..');
const IMAGE_REPO = 'piko.local/piko';
const IMAGE_TAG = 'e2e';
const IMAGE = `${IMAGE_REPO}:${IMAGE_TAG}`;
const START_TIMEOUT_MS = 60 * 60 * 1000;

// The app behind the sidecar: an HTTP server in our image (the example's nginx cannot be pulled
// here) that also echoes WebSocket messages, with the ws package our image carries.
const APP_SCRIPT = [
  "const server = require('http').createServer((req, res) => res.end(JSON.stringify({ app: 'my-service', host: require('os').hostname(), url: req.url })));",
  "const wss = new (require('/app/node_modules/ws').WebSocketServer)({ server });",
  "wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));",
  'server.listen(8080);',
].join(' ');

let node: TestNode | undefined;

function report(line: string): void {
  process.stderr.write(`real node: ${line}\n`);
}

interface Outcome {
  at: number;
  ok: boolean;
  detail: string;
}

/**
 * Clients sending to the piko-proxy ClusterIP, each on a new connection per request as through
 * any load balancer, until stopped; every outcome recorded with its time.
 */
function load(ip: string, workers: number): { stop(): Promise<Outcome[]> } {
  const agent = new http.Agent({ keepAlive: false });
  const outcomes: Outcome[] = [];
  let running = true;
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ host: ip, port: 8000, path: '/load', agent, headers: { 'x-piko-endpoint': 'my-service' }, timeout: 15_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => {
          const ok = res.statusCode === 200 && body.includes('"app":"my-service"');
          outcomes.push({ at: performance.now(), ok, detail: ok ? '' : `${res.statusCode} ${body}` });
          resolve();
        });
        res.on('error', (err) => {
          outcomes.push({ at: performance.now(), ok: false, detail: err.message });
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        outcomes.push({ at: performance.now(), ok: false, detail: err.message });
        resolve();
      });
    });
  const loops = Array.from({ length: workers }, async () => {
    while (running) await once();
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

async function proxyIp(): Promise<string> {
  return (await node!.kubectl(['-n', 'piko-system', 'get', 'service', 'piko-proxy', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
}

interface Obj {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

function example(file: string): Obj[] {
  return parseAllDocuments(fs.readFileSync(path.join(REPO, 'docs', 'examples', file), 'utf8')).map((d) => d.toJS() as Obj);
}

async function json<T>(args: readonly string[]): Promise<T> {
  return JSON.parse(await node!.kubectl([...args, '-o', 'json'])) as T;
}

beforeAll(async () => {
  node = await startNode();
  const archive = execFileSync('bash', [path.join(REPO, 'test', 'k8s', 'images', 'piko', 'build.sh'), IMAGE, node.dir], {
    maxBuffer: 64 * 1024 * 1024,
  })
    .toString()
    .trim()
    .split('\n')
    .pop() as string;
  await node.importImage(archive, IMAGE_REPO);
}, START_TIMEOUT_MS);

afterAll(async () => {
  await node?.stop();
}, 120_000);

describe('the user path on a real node', () => {
  it('helm install runs the operator as the chart Deployment, Ready by its probes, non-root on a read-only root', async () => {
    await node!.helm([
      'install',
      'piko',
      path.join(REPO, 'helm', 'piko'),
      '--namespace',
      'piko-system',
      '--create-namespace',
      '--set',
      `image.repository=${IMAGE_REPO}`,
      '--set',
      `image.tag=${IMAGE_TAG}`,
      '--set',
      'image.pullPolicy=Never',
      '--wait',
      '--timeout',
      '3m',
    ]);
    const deployments = await json<{ items: Obj[] }>(['-n', 'piko-system', 'get', 'deployments']);
    expect(deployments.items).toHaveLength(1);
    const pods = await json<{
      items: {
        status: { conditions: { type: string; status: string }[] };
        spec: { securityContext?: Record<string, unknown>; containers: { securityContext?: Record<string, unknown> }[] };
      }[];
    }>([
      '-n',
      'piko-system',
      'get',
      'pods',
      '-l',
      'app.kubernetes.io/component=operator',
    ]);
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(pod.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect(pod.spec.containers[0]?.securityContext).toMatchObject({ readOnlyRootFilesystem: true });
  });

  it('runs the example PikoCluster: three pods Ready by their probes, and the PikoCluster Ready', async () => {
    const [cluster] = example('pikocluster.yaml');
    (cluster!.spec as Record<string, unknown>)['image'] = { repository: IMAGE_REPO, tag: IMAGE_TAG, pullPolicy: 'Never' };
    await node!.kubectl(['apply', '-f', '-'], JSON.stringify(cluster));
    await node!.kubectl(['-n', 'piko-system', 'wait', '--for=condition=Ready', 'pikocluster/piko', '--timeout=180s']);
    const status = (await json<{ status: { readyReplicas?: number; replicas?: number } }>(['-n', 'piko-system', 'get', 'pikocluster', 'piko'])).status;
    expect(status).toMatchObject({ readyReplicas: 3 });
  }, 240_000);

  it('runs the example agent sidecar, which resolves piko-upstream through CoreDNS and registers', async () => {
    const objects = example('agent-sidecar.yaml');
    const deployment = objects.find((o) => o.kind === 'Deployment') as Obj & {
      spec: { template: { spec: { initContainers: Record<string, unknown>[]; containers: Record<string, unknown>[] } } };
    };
    const pod = deployment.spec.template.spec;
    pod.initContainers[0]!['image'] = IMAGE;
    pod.initContainers[0]!['imagePullPolicy'] = 'Never';
    pod.containers[0] = {
      ...pod.containers[0],
      image: IMAGE,
      imagePullPolicy: 'Never',
      command: ['node', '-e', APP_SCRIPT],
      securityContext: { ...(pod.containers[0]!['securityContext'] as object), runAsUser: 65532, readOnlyRootFilesystem: true },
    };
    await node!.kubectl(['apply', '-n', 'default', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    await node!.kubectl(['-n', 'default', 'rollout', 'status', 'deployment/my-service', '--timeout=180s']);
    // Both replicas' agents registered: the PikoCluster counts them, from the pods' registry records.
    await node!.kubectl(['-n', 'piko-system', 'wait', '--for=jsonpath={.status.upstreams}=2', 'pikocluster/piko', '--timeout=60s']);
    const cluster = await json<{ status: { upstreams?: number; endpoints?: number } }>(['-n', 'piko-system', 'get', 'pikocluster', 'piko']);
    expect(cluster.status).toMatchObject({ endpoints: 1, upstreams: 2 });
  }, 240_000);

  it('answers a request sent to the piko-proxy ClusterIP from the app behind the sidecar', async () => {
    const ip = (await node!.kubectl(['-n', 'piko-system', 'get', 'service', 'piko-proxy', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    expect(ip).toMatch(/^198\.19\./);
    // The agent registers once its sidecar runs; the proxy holds a request for upstreamWait (5 s) meanwhile.
    const res = await request(`http://${ip}:8000/hello`, { headers: { 'x-piko-endpoint': 'my-service' } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ app: 'my-service', url: '/hello' });
  });

  it('carries a WebSocket and raw TCP (piko forward) through the proxy ClusterIP', async () => {
    const ip = await proxyIp();
    const ws = new WebSocket(`ws://${ip}:8000/chat`, { headers: { 'x-piko-endpoint': 'my-service' } });
    await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
    ws.send('through the tunnel');
    const echo = await new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString())));
    expect(echo).toBe('through the tunnel');
    ws.close();

    // piko forward: a local port whose bytes cross the proxy's TCP path to the sidecar, which
    // hands them to the app as a connection; an HTTP request is as good a byte stream as any.
    const base = loadForwardConfig({ flags: { 'connect.url': `http://${ip}:8000` }, port: { addr: '127.0.0.1:1', endpointId: 'my-service' } });
    const forwarder = new Forwarder({ ...base, ports: [{ addr: '127.0.0.1:0', endpointId: 'my-service' }] }, { logger: silentLogger() });
    const [address] = await forwarder.start();
    try {
      const res = await request(`http://127.0.0.1:${address!.port}/over-tcp`);
      expect(JSON.parse(res.body)).toMatchObject({ app: 'my-service', url: '/over-tcp' });
    } finally {
      await forwarder.close();
    }
  });

  it('rolls every pod under 200+ requests/s with zero failed requests (kubectl rollout restart, then a spec change)', async () => {
    const ip = await proxyIp();
    for (const [what, roll] of [
      ['rollout restart', () => node!.kubectl(['-n', 'piko-system', 'rollout', 'restart', 'statefulset/piko'])],
      ['spec change', () => node!.kubectl(['-n', 'piko-system', 'patch', 'pikocluster/piko', '--type=merge', '-p', '{"spec":{"upstreamWait":"6s"}}'])],
    ] as const) {
      const generation = Number(await node!.kubectl(['-n', 'piko-system', 'get', 'statefulset', 'piko', '-o', 'jsonpath={.metadata.generation}']));
      const traffic = load(ip, 8);
      const started = performance.now();
      await roll();
      // The new template reached the StatefulSet (for a spec change, once the operator applied
      // it); rollout status then waits as the controller replaces one pod at a time.
      await node!.kubectl(['-n', 'piko-system', 'wait', `--for=jsonpath={.metadata.generation}=${generation + 1}`, 'statefulset/piko', '--timeout=60s']);
      await node!.kubectl(['-n', 'piko-system', 'rollout', 'status', 'statefulset/piko', '--timeout=300s']);
      const rolledMs = performance.now() - started;
      const outcomes = await traffic.stop();
      const rate = (outcomes.length / (performance.now() - started)) * 1000;
      const failures = outcomes.filter((o) => !o.ok).map((o) => o.detail);
      report(`${what}: ${outcomes.length} requests in ${(rolledMs / 1000).toFixed(1)} s of rollout (${rate.toFixed(0)}/s), ${failures.length} failed ${JSON.stringify(failures.slice(0, 5))}`);
      expect(failures).toEqual([]);
      expect(rate).toBeGreaterThanOrEqual(200);
    }
  }, 900_000);

  it('recovers when the pod holding a tunnel is deleted with --grace-period=0 --force', async () => {
    const ip = await proxyIp();
    const status = await json<{ status: { nodes: { name: string; upstreams: number }[] } }>(['-n', 'piko-system', 'get', 'pikocluster', 'piko']);
    const holder = status.status.nodes.find((n) => n.upstreams > 0)?.name;
    expect(holder).toBeDefined();
    const traffic = load(ip, 4);
    await new Promise((r) => setTimeout(r, 1_000));
    const killedAt = performance.now();
    await node!.kubectl(['-n', 'piko-system', 'delete', 'pod', holder as string, '--grace-period=0', '--force']);
    // Long enough for the agents to reconnect elsewhere and the registry to drop the dead pod's records.
    await new Promise((r) => setTimeout(r, 15_000));
    const outcomes = (await traffic.stop()).filter((o) => o.at >= killedAt);
    const failed = outcomes.filter((o) => !o.ok);
    const lastFailure = failed.length > 0 ? (failed[failed.length - 1] as Outcome).at - killedAt : 0;
    const firstSuccessAfter = outcomes.find((o) => o.ok && o.at - killedAt >= lastFailure);
    report(
      `force-deleted ${holder}: ${failed.length} of ${outcomes.length} requests failed, the last ${(lastFailure / 1000).toFixed(2)} s after the kill; ` +
        `first success after that at ${(((firstSuccessAfter?.at ?? NaN) - killedAt) / 1000).toFixed(2)} s`,
    );
    // Requests succeed again, and keep succeeding to the end.
    expect(outcomes.slice(-20).every((o) => o.ok)).toBe(true);
    await node!.kubectl(['-n', 'piko-system', 'rollout', 'status', 'statefulset/piko', '--timeout=180s']);
  }, 300_000);

  it("recovers when the server process of the pod holding a tunnel is killed, and kubelet restarts it", async () => {
    const ip = await proxyIp();
    const cluster = await json<{ status: { nodes: { name: string; upstreams: number }[] } }>(['-n', 'piko-system', 'get', 'pikocluster', 'piko']);
    const holder = cluster.status.nodes.find((n) => n.upstreams > 0)?.name as string;
    const pod = await json<{ metadata: { uid: string }; status: { containerStatuses: { restartCount: number }[] } }>(['-n', 'piko-system', 'get', 'pod', holder]);
    // The container's processes, found by the pod's cgroup, as kubelet placed them.
    const uid = pod.metadata.uid.replace(/-/g, '_');
    const pids = fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const cgroup = fs.readFileSync(`/proc/${p}/cgroup`, 'utf8');
          return (cgroup.includes(pod.metadata.uid) || cgroup.includes(uid)) && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('main.js');
        } catch {
          return false;
        }
      });
    expect(pids.length).toBeGreaterThan(0);
    const traffic = load(ip, 4);
    await new Promise((r) => setTimeout(r, 1_000));
    const killedAt = performance.now();
    for (const p of pids) process.kill(Number(p), 'SIGKILL');
    await node!.kubectl(['-n', 'piko-system', 'wait', `pod/${holder}`, '--for=jsonpath={.status.containerStatuses[0].restartCount}=' + String((pod.status.containerStatuses[0]?.restartCount ?? 0) + 1), '--timeout=60s']);
    await node!.kubectl(['-n', 'piko-system', 'wait', `pod/${holder}`, '--for=condition=Ready', '--timeout=60s']);
    const restartedMs = performance.now() - killedAt;
    // Until the agent reconnects and the restarted server's registry records replace those its
    // previous process left (same pod, same name), some requests still fail; 15 s covers both.
    await new Promise((r) => setTimeout(r, 15_000));
    const outcomes = (await traffic.stop()).filter((o) => o.at >= killedAt);
    const failed = outcomes.filter((o) => !o.ok);
    report(
      `killed the server process of ${holder}: restarted and Ready after ${(restartedMs / 1000).toFixed(1)} s; ` +
        `${failed.length} of ${outcomes.length} requests failed${failed.length ? `, the last ${(((failed[failed.length - 1] as Outcome).at - killedAt) / 1000).toFixed(2)} s after the kill` : ''} ` +
        JSON.stringify([...new Set(failed.map((o) => o.detail.slice(0, 80)))].slice(0, 4)),
    );
    expect(outcomes.slice(-20).every((o) => o.ok)).toBe(true);
  }, 300_000);

  it('scales 3 → 5 → 2 through the scale subresource without failing requests, and drops removed pods\' records', async () => {
    const ip = await proxyIp();
    for (const replicas of [5, 2]) {
      const traffic = load(ip, 4);
      await node!.kubectl(['-n', 'piko-system', 'scale', 'pikocluster/piko', `--replicas=${replicas}`]);
      await node!.kubectl(['-n', 'piko-system', 'wait', `--for=jsonpath={.status.readyReplicas}=${replicas}`, 'pikocluster/piko', '--timeout=180s']);
      await node!.kubectl(['-n', 'piko-system', 'rollout', 'status', 'statefulset/piko', '--timeout=180s']);
      const outcomes = await traffic.stop();
      const failures = outcomes.filter((o) => !o.ok).map((o) => o.detail);
      report(`scale to ${replicas}: ${outcomes.length} requests, ${failures.length} failed ${JSON.stringify(failures.slice(0, 3))}`);
      expect(failures).toEqual([]);
    }
    // The registry objects of piko-2, piko-3 and piko-4 go with their pods.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const leases = await json<{ items: Obj[] }>(['-n', 'piko-system', 'get', 'leases', '-l', 'app.kubernetes.io/component=registry']);
      const names = leases.items.map((l) => l.metadata.name).sort();
      if (names.join() === 'piko-node-piko-0,piko-node-piko-1') break;
      if (Date.now() > deadline) throw new Error(`registry Leases left: ${names.join(', ')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }, 600_000);

  it('leaves no Lease, ConfigMap, Secret, Role or pod behind after the PikoCluster is deleted and the chart uninstalled', async () => {
    await node!.kubectl(['-n', 'default', 'delete', 'deployment', 'my-service', '--wait=true']);
    await node!.kubectl(['-n', 'piko-system', 'delete', 'pikocluster', 'piko', '--wait=true']);
    await node!.helm(['uninstall', 'piko', '--namespace', 'piko-system', '--wait', '--timeout', '2m']);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const left = (await node!.kubectl(['-n', 'piko-system', 'get', 'leases,configmaps,secrets,roles,rolebindings,pods,statefulsets,services', '-o', 'name']))
        .split('\n')
        .filter((l) => l !== '' && !l.includes('kube-root-ca.crt'));
      if (left.length === 0) break;
      if (Date.now() > deadline) throw new Error(`left behind: ${left.join(', ')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // Every image came from the node's own store: containerd never tried a registry.
    expect(node!.logs('containerd')).not.toMatch(/PullImage|pulling image|fetch failed|resolving/i);
  }, 300_000);
});
