/**
 * End to end, as a user meets it: the Helm chart installed with the real helm into a real
 * kube-apiserver (with kube-controller-manager for StatefulSet pods and garbage collection), a
 * PikoCluster applied with kubectl, the operator run in this process with the credentials of the
 * chart's own ServiceAccount, and `piko server` processes run as the StatefulSet's pods with the
 * configuration, arguments, environment and ServiceAccount the operator rendered. There is no
 * kubelet: this test plays its part (starting the processes, marking the Pod objects Ready), with
 * pod i on 127.0.0.<i+1>.
 */
import { EventEmitter, once } from 'node:events';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { V1Container, V1EnvVar, V1StatefulSet } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { parseDocument } from 'yaml';
import { listen, serve, type Listener } from '../../dataplane/client';
import { API_VERSION, KIND, type PikoCluster } from '../../operator/api/pikocluster';
import { Operator } from '../../operator/operator';
import { ClientNodeKubeClient, loadKubeConfig } from '../../operator/runtime/client-node-kube-client';
import { RESOURCES, type KubeObject, type ResourceType } from '../../operator/runtime/kube-client';
import { ItemExponentialRateLimiter, MaxOfRateLimiter, TokenBucketRateLimiter } from '../../operator/runtime/rate-limiter';
import { request } from '../helpers/http-client';
import { startPikoProcess, stopAllPikoProcesses, type PikoProcess } from '../helpers/piko-process';
import { runTool, type ToolResult } from '../integration/helm/cli';
import { adminClient, kubectl as kubectlWithTimeout, testLogger, waitFor } from '../integration/operator/harness';
import { startControlPlane, type ControlPlane } from '../k8s/control-plane';
import { lockNode } from '../k8s/node';

const ROOT = path.resolve(__dirname, '..', '..');
const CHART = path.join(ROOT, 'helm', 'piko');
// A cold build of the control plane compiles Kubernetes; a warm start takes seconds.
const START_TIMEOUT_MS = 60 * 60 * 1000;
const RELEASE = 'piko';
const RELEASE_NAMESPACE = 'piko-system';
const NAMESPACE = `e2e-${randomBytes(3).toString('hex')}`;
const CLUSTER = 'piko';
const REPLICAS = 3;
const ENDPOINT = 'my-service';
const IMAGE = 'ghcr.io/piko-k8s/piko:0.0.0-e2e';
// Unusual ports from the spec, so the rendered config is what binds them and nothing else on the
// machine is in the way.
const BASE_PORT = 20_000 + 3 * Math.floor(Math.random() * 3_000);
const PORTS = { proxy: BASE_PORT, upstream: BASE_PORT + 1, admin: BASE_PORT + 2 };
const WAIT_MS = 30_000;
/** The rolling restart's load: at least this many requests per second, round robin. */
const MIN_RATE = 200;
const TARGET_RATE = 260;

type Cluster = PikoCluster & KubeObject;
type Obj = KubeObject & { data?: Record<string, string>; spec?: Record<string, unknown> };

let cp: ControlPlane | undefined;
let admin: ClientNodeKubeClient;
let home: string;
let operatorKube: ClientNodeKubeClient | undefined;
let operator: Operator | undefined;
let listener: Listener | undefined;
let upstreamServer: http.Server | undefined;
let balancer: Balancer | undefined;
const pods: (Pod | undefined)[] = [];

interface Pod {
  index: number;
  host: string;
  proc: PikoProcess;
  proxyUrl: string;
  adminUrl: string;
}

function kubectl(args: readonly string[], input?: string): Promise<ToolResult> {
  return runTool(path.join(cp!.binDir, 'kubectl'), args, { home, kubeconfig: cp!.kubeconfigPath, ...(input === undefined ? {} : { input }) });
}

function helm(args: readonly string[]): Promise<ToolResult> {
  return runTool(path.join(cp!.binDir, 'helm'), args, { home, kubeconfig: cp!.kubeconfigPath });
}

function ok(result: ToolResult): string {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return result.stdout;
}

const condition = (c: Cluster | undefined, type: string) => c?.status?.conditions?.find((x) => x.type === type);

function waitForCluster(predicate: (c: Cluster | undefined) => boolean, what: string, timeoutMs = WAIT_MS) {
  return waitFor<Cluster>(admin, RESOURCES.pikoClusters, NAMESPACE, CLUSTER, predicate, what, timeoutMs);
}

function waitForObject(type: ResourceType, name: string, predicate: (o: Obj | undefined) => boolean, what: string, timeoutMs = WAIT_MS) {
  return waitFor<Obj>(admin, type, NAMESPACE, name, predicate, what, timeoutMs);
}

/** Marks a pod Running and Ready with its loopback address, as kubelet would. */
async function markPodReady(name: string, podIP: string): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  await admin.apply(
    RESOURCES.pods,
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NAMESPACE },
      status: {
        phase: 'Running',
        podIP,
        podIPs: [{ ip: podIP }],
        conditions: [
          { type: 'Ready', status: 'True', lastTransitionTime: now },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
        ],
      },
    } as KubeObject,
    { subresource: 'status' },
  );
}

/** What the operator rendered, read once the PikoCluster's children exist. */
let rendered: { sts: V1StatefulSet; serverYaml: string; secrets: Map<string, Record<string, string>>; dataPlaneSa: string } | undefined;

/**
 * What kubelet would give pod `index`: the rendered server.yaml with the bind addresses moved from
 * every interface to the pod's own loopback address (the loader lets YAML beat flags, so the file
 * is where they change), the container's args pointing at that file, and its env resolved.
 */
interface PodRecipe {
  args: string[];
  env: NodeJS.ProcessEnv;
}

async function podRecipe(index: number): Promise<PodRecipe> {
  const { sts, serverYaml, secrets, dataPlaneSa } = rendered!;
  const host = `127.0.0.${index + 1}`;
  const podName = `${sts.metadata!.name!}-${index}`;
  const pod = await admin.get<Obj>(RESOURCES.pods, NAMESPACE, podName);

  const doc = parseDocument(serverYaml);
  for (const port of ['proxy', 'upstream', 'admin'] as const) {
    const bind = String(doc.getIn([port, 'bind_addr']));
    expect(bind).toBe(`:${PORTS[port]}`);
    doc.setIn([port, 'bind_addr'], `${host}${bind}`);
  }
  const container = sts.spec!.template.spec!.containers[0] as V1Container;
  const args = [...(container.args ?? [])];
  const at = args.indexOf('--config.path');
  expect(at).toBeGreaterThanOrEqual(0);
  const configPath = path.join(home, `server-${index}.yaml`);
  fs.writeFileSync(configPath, doc.toString());
  args[at + 1] = configPath;

  const fields: Record<string, string> = {
    'metadata.name': podName,
    'metadata.namespace': NAMESPACE,
    'metadata.uid': pod.metadata!.uid!,
    'status.podIP': host,
  };
  // As the kubelet projects it: a token bound to this Pod, which the registry write policy requires.
  const dataPlaneKubeconfig = await cp!.kubeconfigForServiceAccount(NAMESPACE, dataPlaneSa, { name: podName, uid: pod.metadata!.uid! });
  const env: NodeJS.ProcessEnv = { KUBECONFIG: dataPlaneKubeconfig };
  for (const v of container.env ?? ([] as V1EnvVar[])) {
    if (v.value !== undefined) env[v.name] = v.value;
    else if (v.valueFrom?.fieldRef !== undefined) {
      const value = fields[v.valueFrom.fieldRef.fieldPath];
      if (value === undefined) throw new Error(`no value for fieldRef ${v.valueFrom.fieldRef.fieldPath}`);
      env[v.name] = value;
    } else if (v.valueFrom?.secretKeyRef !== undefined) {
      const ref = v.valueFrom.secretKeyRef;
      const secretName = ref.name ?? '';
      const data = secrets.get(secretName) ?? (await admin.get<Obj>(RESOURCES.secrets, NAMESPACE, secretName)).data ?? {};
      secrets.set(secretName, data);
      env[v.name] = Buffer.from(data[ref.key] ?? '', 'base64').toString();
    } else {
      throw new Error(`env ${v.name}: a source this test does not resolve`);
    }
  }
  return { args, env };
}

async function startPod(index: number): Promise<Pod> {
  const recipe = await podRecipe(index);
  const proc = startPikoProcess(recipe.args, recipe.env);
  const started = await proc.waitForLog((r) => r.message === 'server started', 20_000);
  const host = `127.0.0.${index + 1}`;
  expect(started).toMatchObject({
    proxyAddr: `${host}:${PORTS.proxy}`,
    upstreamAddr: `${host}:${PORTS.upstream}`,
    adminAddr: `${host}:${PORTS.admin}`,
  });
  const pod = { index, host, proc, proxyUrl: `http://${host}:${PORTS.proxy}`, adminUrl: `http://${host}:${PORTS.admin}` };
  pods[index] = pod;
  return pod;
}

/** A request of the rolling restart that did not get the agent's answer. */
interface Failure {
  /** The pod it was sent to. */
  pod: number;
  /** The pod being restarted when it was sent; -1 between restarts. */
  restarting: number;
  result: string;
}

interface NodeStatus {
  id: string;
  status: string;
  endpoints: number;
}

/** Polls a pod's admin API (another process's view of the cluster) every 50 ms, bounded. */
async function untilNodes(pod: Pod, check: (nodes: NodeStatus[]) => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await request(`${pod.adminUrl}/status/cluster/nodes`);
    const nodes = res.status === 200 ? (JSON.parse(res.body) as NodeStatus[]) : [];
    if (check(nodes)) return;
    if (Date.now() > deadline) throw new Error(`pod ${pod.index}'s cluster view never matched: ${res.body}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A TCP load balancer in front of the pods' upstream ports, standing for the upstream Service:
 * each new connection goes to the next pod in rotation, so the agent's reconnect lands on a pod
 * that is up.
 */
class Balancer {
  readonly up = new Set<number>();
  private next = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((client) => this.forward(client));

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  private forward(client: net.Socket): void {
    const order = [...this.up].sort();
    if (order.length === 0) {
      client.destroy();
      return;
    }
    const index = order[this.next++ % order.length] as number;
    const backend = net.connect(PORTS.upstream, `127.0.0.${index + 1}`);
    for (const s of [client, backend]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        backend.destroy();
      });
    }
    client.pipe(backend).pipe(client);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

let unlock: (() => void) | undefined;

beforeAll(async () => {
  // Not beside the real node's end-to-end test: both measure a rolling restart under load.
  unlock = await lockNode();
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-e2e-'));
  cp = await startControlPlane({ withControllerManager: true });
  admin = adminClient(cp);
}, START_TIMEOUT_MS);

afterAll(async () => {
  await listener?.close({ timeoutMs: 1_000 }).catch(() => undefined);
  upstreamServer?.close();
  await balancer?.close();
  await Promise.all(pods.map((p) => p?.proc.stop()));
  await stopAllPikoProcesses();
  await operator?.stop();
  await operatorKube?.close();
  if (cp !== undefined) {
    // Against a shared cluster these must go; a local control plane goes with them anyway.
    await kubectl(['delete', 'namespace', NAMESPACE, '--ignore-not-found', '--wait=false']);
    await helm(['uninstall', RELEASE, '--namespace', RELEASE_NAMESPACE, '--ignore-not-found']);
    await admin?.close();
    await cp.stop();
  }
  fs.rmSync(home, { recursive: true, force: true });
  unlock?.();
}, 60_000);

describe('helm install, a PikoCluster, the operator and its pods', () => {
  it('installs the chart, which brings the CRD', async () => {
    ok(await helm(['install', RELEASE, CHART, '--namespace', RELEASE_NAMESPACE, '--create-namespace']));
    ok(await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/pikoclusters.piko.dev']));
  }, 60_000);

  it('runs the operator with the chart ServiceAccount and creates every child of an applied PikoCluster', async () => {
    const deployment = JSON.parse(ok(await kubectl(['get', '-n', RELEASE_NAMESPACE, 'deployments', '-o', 'json']))) as {
      items: { spec: { template: { spec: { serviceAccountName?: string } } } }[];
    };
    expect(deployment.items).toHaveLength(1);
    const serviceAccount = deployment.items[0]!.spec.template.spec.serviceAccountName!;
    const kubeconfig = await cp!.kubeconfigForServiceAccount(RELEASE_NAMESPACE, serviceAccount);
    operatorKube = new ClientNodeKubeClient(loadKubeConfig(kubeconfig));
    operator = new Operator({
      client: operatorKube,
      defaultImage: IMAGE,
      logger: testLogger('e2e'),
      metricsRegistry: new Registry(),
      // The chart grants the leader Lease in its own namespace: campaign there, as the Deployment does.
      leaderElection: { namespace: RELEASE_NAMESPACE, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 },
      identity: 'e2e-operator',
      controller: {
        informerBackoff: { minMs: 200, maxMs: 2_000 },
        rateLimiter: () =>
          new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 2_000), new TokenBucketRateLimiter({ qps: 50, burst: 100 })),
      },
    });
    operator.start();
    await operator.synced;

    ok(await kubectl(['create', 'namespace', NAMESPACE]));
    const manifest = {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: CLUSTER, namespace: NAMESPACE },
      spec: {
        replicas: REPLICAS,
        ports: PORTS,
        upstreamWait: '5s',
        gracePeriod: '5s',
        registry: { leaseDuration: '4s', renewInterval: '1s' },
      },
    };
    ok(await kubectl(['apply', '-f', '-'], JSON.stringify(manifest)));
    const cluster = (await waitForCluster(
      (c) => c?.status?.observedGeneration === 1 && condition(c, 'Ready') !== undefined,
      'conditions on the new PikoCluster',
    ))!;
    expect(condition(cluster, 'Degraded')).toMatchObject({ status: 'False' });
    const owner = { apiVersion: API_VERSION, kind: KIND, name: CLUSTER, uid: cluster.metadata.uid, controller: true, blockOwnerDeletion: true };
    const children: [ResourceType, string][] = [
      [RESOURCES.serviceAccounts, 'piko'],
      [RESOURCES.roles, 'piko-registry'],
      [RESOURCES.roleBindings, 'piko-registry'],
      [RESOURCES.configMaps, 'piko-config'],
      [RESOURCES.secrets, 'piko-cluster'],
      [RESOURCES.services, 'piko-nodes'],
      [RESOURCES.services, 'piko-proxy'],
      [RESOURCES.services, 'piko-upstream'],
      [RESOURCES.podDisruptionBudgets, 'piko'],
      [RESOURCES.statefulSets, 'piko'],
    ];
    for (const [type, name] of children) {
      const live = (await waitForObject(type, name, (o) => o !== undefined, `${type.kind} ${name}`))!;
      expect(live.metadata?.ownerReferences).toEqual([owner]);
    }
    const sts = await admin.get<V1StatefulSet & KubeObject>(RESOURCES.statefulSets, NAMESPACE, 'piko');
    expect(sts.spec).toMatchObject({ replicas: REPLICAS, serviceName: 'piko-nodes' });
    expect(sts.spec?.template.spec?.containers[0]?.image).toBe(IMAGE);
    const config = await admin.get<Obj>(RESOURCES.configMaps, NAMESPACE, 'piko-config');
    const serverYaml = config.data?.['server.yaml'] ?? '';
    expect(serverYaml).toContain('registry: kubernetes');
    const dataPlaneSa = sts.spec!.template.spec!.serviceAccountName!;
    rendered = {
      sts,
      serverYaml,
      secrets: new Map(),
      dataPlaneSa,
    };
  }, 90_000);

  it("runs the StatefulSet's pods as processes with the rendered config, and the cluster becomes Ready", async () => {
    // The StatefulSet controller creates the Pod objects; the processes take their names and uids.
    for (let i = 0; i < REPLICAS; i++) {
      await waitForObject(RESOURCES.pods, `piko-${i}`, (p) => p?.metadata?.uid !== undefined, `pod piko-${i}`);
    }
    await Promise.all([0, 1, 2].map((i) => startPod(i)));
    for (let i = 0; i < REPLICAS; i++) {
      expect((await request(`${pods[i]!.adminUrl}/ready`)).status).toBe(200);
      await markPodReady(`piko-${i}`, pods[i]!.host);
    }
    // Every pod sees all three, through the Role the operator made for their ServiceAccount.
    for (const pod of pods) {
      await untilNodes(pod!, (nodes) => ['piko-0', 'piko-1', 'piko-2'].every((id) => nodes.some((n) => n.id === id && n.status === 'active')));
    }
    // Registry objects carry the pod as owner, so they go with it.
    const lease = await admin.get<Obj>(RESOURCES.leases, NAMESPACE, 'piko-node-piko-0');
    const pod0 = await admin.get<Obj>(RESOURCES.pods, NAMESPACE, 'piko-0');
    expect(lease.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Pod', name: 'piko-0', uid: pod0.metadata?.uid });
    const ready = (await waitForCluster((c) => condition(c, 'Ready')?.status === 'True', 'the PikoCluster to be Ready'))!;
    expect(ready.status).toMatchObject({ replicas: 3, readyReplicas: 3 });
  }, 90_000);

  it('routes requests through every pod to an agent connected as a sidecar would', async () => {
    balancer = new Balancer();
    for (let i = 0; i < REPLICAS; i++) balancer.up.add(i);
    const balancerUrl = await balancer.start();
    upstreamServer = http.createServer((_req, res) => res.end('hello from the sidecar'));
    // The sidecar's agent dials the upstream Service; the balancer stands for it, pod 0 first.
    listener = await listen(ENDPOINT, { url: balancerUrl, minReconnectBackoffMs: 50, maxReconnectBackoffMs: 500 });
    serve(listener, upstreamServer);
    for (const pod of pods) {
      const res = await request(`${pod!.proxyUrl}/`, { headers: { 'x-piko-endpoint': ENDPOINT } });
      expect(res).toMatchObject({ status: 200, body: 'hello from the sidecar' });
    }
    const counted = (await waitForCluster((c) => c?.status?.endpoints === 1 && c.status.upstreams === 1, 'endpoints counted in status'))!;
    expect(counted.status?.nodes?.reduce((n, p) => n + (p.upstreams ?? 0), 0)).toBe(1);
  }, 60_000);

  it(`restarts every pod in turn under ${MIN_RATE}+ requests/s with zero failed requests, the agent following to another pod`, async () => {
    const agent = new http.Agent({ keepAlive: false });
    const inFlight = [0, 0, 0];
    const drained = new EventEmitter();
    const failures: Failure[] = [];
    let restarting = -1;
    let sent = 0;
    let answered = 0;
    let next = 0;
    const one = (index: number): void => {
      inFlight[index]!++;
      sent++;
      const during = restarting;
      let finished = false;
      const done = (): void => {
        if (finished) return;
        finished = true;
        if (--inFlight[index]! === 0) drained.emit(`drained-${index}`);
      };
      const req = http.get(
        { host: `127.0.0.${index + 1}`, port: PORTS.proxy, path: '/', agent, headers: { 'x-piko-endpoint': ENDPOINT }, timeout: 15_000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => {
            if (res.statusCode !== 200 || body !== 'hello from the sidecar') failures.push({ pod: index, restarting: during, result: `${res.statusCode} ${body.trim()}` });
            else answered++;
            done();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        failures.push({ pod: index, restarting: during, result: err.message });
        done();
      });
    };
    const started = Date.now();
    const ticker = setInterval(() => {
      const due = Math.floor(((Date.now() - started) * TARGET_RATE) / 1000) - sent;
      const order = [0, 1, 2].filter((i) => balancer!.up.has(i));
      for (let k = 0; k < due && order.length > 0; k++) one(order[next++ % order.length]!);
    }, 5);
    const exits: (number | null)[] = [];
    try {
      for (let i = 0; i < REPLICAS; i++) {
        restarting = i;
        // Out of rotation first, as the endpoints controller takes a terminating pod out during
        // preStop; then SIGTERM once what was sent to it has been answered.
        balancer!.up.delete(i);
        if (inFlight[i]! > 0) await once(drained, `drained-${i}`);
        const stopping = pods[i]!.proc;
        const exited = stopping.stop('SIGTERM');
        // The drain itself keeps to the grace period (5 s in the spec).
        await stopping.waitForLog((r) => r.message === 'shutdown complete', 6_000);
        // It must then exit by itself, well within the grace period: nothing left holding it open
        // (spare connections to peers once kept it alive until SIGKILL).
        exits.push(await exited);
        const pod = await startPod(i);
        expect((await request(`${pod.adminUrl}/ready`)).status).toBe(200);
        // Back in rotation once it sees its peers, as a readiness gate would wait.
        await untilNodes(pod, (nodes) => nodes.filter((n) => n.status === 'active').length === REPLICAS);
        restarting = -1;
        balancer!.up.add(i);
        // A little load on the restarted pod before the next goes.
        await new Promise((r) => setTimeout(r, 1_000));
      }
    } finally {
      clearInterval(ticker);
    }
    const elapsedS = (Date.now() - started) / 1000;
    while (inFlight.some((n) => n > 0)) await once(drained, `drained-${inFlight.findIndex((n) => n > 0)}`);
    agent.destroy();
    process.stderr.write(`rolling restart: ${sent} requests in ${elapsedS.toFixed(1)} s, failures ${JSON.stringify(failures)}, exit codes ${JSON.stringify(exits)}\n`);
    expect(sent / elapsedS).toBeGreaterThanOrEqual(MIN_RATE);
    expect(failures).toEqual([]);
    expect(exits).toEqual([0, 0, 0]);
    expect(answered).toBe(sent);
  }, 120_000);

  it('removes everything the PikoCluster owned when it is deleted', async () => {
    await listener?.close({ timeoutMs: 1_000 });
    listener = undefined;
    await Promise.all(pods.map((p) => p?.proc.stop()));
    // Foreground: the PikoCluster goes once the garbage collector has deleted its children.
    await kubectlWithTimeout(cp!, ['delete', 'pikocluster', CLUSTER, '-n', NAMESPACE, '--cascade=foreground', '--wait=true', '--timeout=120s'], 130_000);
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
      [RESOURCES.pods, 'piko-0'],
      [RESOURCES.leases, 'piko-node-piko-0'],
    ];
    for (const [type, name] of gone) {
      await waitForObject(type, name, (o) => o === undefined, `${type.kind} ${name} to be collected`, 60_000);
    }
  }, 150_000);
});
