/**
 * The user path on real pods: `helm install` of the chart with our image, the PikoCluster of
 * docs/examples/pikocluster.yaml, and the agent sidecar of docs/examples/agent-sidecar.yaml, each
 * changed only in its image; then requests from a client pod, through the piko-proxy Service
 * (resolved by CoreDNS, routed by kube-proxy), reach the app behind the sidecar while the data
 * plane rolls, loses pods and scales.
 *
 * It runs on the node of test/k8s/node.ts, or on an existing cluster (kind, k3d, a cloud) named by
 * PIKO_TEST_KUBECONFIG with PIKO_TEST_IMAGE (test/k8s/cluster-under-test.ts, and
 * docs/testing-kubernetes.md). The one case that needs the node's processes, a crash of the
 * server process, runs only on the local node.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { issueCa, issueServing } from '../../operator/webhook/webhook-certificates';
import { clusterUnderTest, imageString, type ClusterUnderTest } from '../k8s/cluster-under-test';
import { InClusterClient, type HttpResult, type LoadResult } from '../k8s/in-cluster-client';

const REPO = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 60 * 60 * 1000;
const ON_EXISTING_CLUSTER = (process.env['PIKO_TEST_KUBECONFIG'] ?? '') !== '';
const PROXY_URL = 'http://piko-proxy.piko-system.svc.cluster.local:8000';
const ENDPOINT = 'my-service';

// The app behind the sidecar: an HTTP server in our image (the example's nginx cannot be pulled
// here) that also echoes WebSocket messages, with the ws package our image carries.
const APP_SCRIPT = [
  "const server = require('http').createServer((req, res) => res.end(JSON.stringify({ app: 'my-service', host: require('os').hostname(), url: req.url })));",
  "const wss = new (require('/app/node_modules/ws').WebSocketServer)({ server });",
  "wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));",
  "process.on('SIGTERM', () => server.close(() => process.exit(0)));",
  'server.listen(8080);',
].join(' ');

let cluster: ClusterUnderTest | undefined;
let client: InClusterClient | undefined;

function report(line: string): void {
  process.stderr.write(`real node: ${line}\n`);
}

function rate(result: LoadResult): number {
  return ((result.ok.length + result.failed.length) / result.elapsedMs) * 1000;
}

/** Outcomes after the load's first mark, with times relative to it. */
function sinceMark(result: LoadResult): { ok: number[]; failed: { at: number; detail: string }[] } {
  const mark = result.marks[0] ?? 0;
  return {
    ok: result.ok.filter((t) => t >= mark).map((t) => t - mark),
    failed: result.failed.filter((f) => f.at >= mark).map((f) => ({ ...f, at: f.at - mark })),
  };
}

/** The load still succeeds at its end: its last 20 outcomes are all successes. */
function endsHealthy(result: LoadResult): boolean {
  const lastFailure = Math.max(-1, ...result.failed.map((f) => f.at));
  return result.ok.filter((t) => t > lastFailure).length >= 20;
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

/**
 * Waits for the data plane's StatefulSet to move past `generation` (for a spec change, once the
 * operator applied it), then for the controller to replace every pod, one at a time.
 */
async function rolledFrom(generation: number): Promise<void> {
  await cluster!.kubectl([
    '-n',
    'piko-system',
    'wait',
    `--for=jsonpath={.metadata.generation}=${generation + 1}`,
    'statefulset/piko',
    '--timeout=60s',
  ]);
  await cluster!.kubectl(['-n', 'piko-system', 'rollout', 'status', 'statefulset/piko', '--timeout=300s']);
}

/** Merges `spec` into the PikoCluster and waits until its StatefulSet has rolled to it. */
async function patchAndRoll(spec: Record<string, unknown>): Promise<void> {
  const generation = Number(
    await cluster!.kubectl(['-n', 'piko-system', 'get', 'statefulset', 'piko', '-o', 'jsonpath={.metadata.generation}']),
  );
  await cluster!.kubectl(['-n', 'piko-system', 'patch', 'pikocluster/piko', '--type=merge', '-p', JSON.stringify({ spec })]);
  await rolledFrom(generation);
}

/**
 * A request through piko-proxy for `endpoint`, asked again every 500 ms for up to 60 s until it is
 * answered 200: an agent in another pod registers in its own time, which this process cannot watch.
 */
async function servedThroughProxy(urlPath: string, endpoint: string): Promise<HttpResult> {
  const deadline = Date.now() + 60_000;
  let res = await client!.get(`${PROXY_URL}${urlPath}`, endpoint);
  while (res.status !== 200 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    res = await client!.get(`${PROXY_URL}${urlPath}`, endpoint);
  }
  return res;
}

async function json<T>(args: readonly string[]): Promise<T> {
  return JSON.parse(await cluster!.kubectl([...args, '-o', 'json'])) as T;
}

beforeAll(async () => {
  cluster = await clusterUnderTest();
}, START_TIMEOUT_MS);

afterAll(async () => {
  await client?.delete().catch(() => undefined);
  await cluster?.stop();
}, 120_000);

const image = (): { repository: string; tag: string; pullPolicy: string } => cluster!.image;

describe('the user path on a real node', () => {
  it('helm install (on the local node: of the release in an OCI registry) runs the operator as the chart Deployment, Ready by its probes, non-root on a read-only root', async () => {
    const chart = cluster!.chart;
    // The released chart installs its own image with its default pull policy; the clone's chart is told which.
    const values =
      cluster!.registry === undefined
        ? [
            '--set',
            `image.repository=${image().repository}`,
            '--set',
            `image.tag=${image().tag}`,
            '--set',
            `image.pullPolicy=${image().pullPolicy}`,
          ]
        : [];
    await cluster!.helm([
      'install',
      'piko',
      chart.ref,
      ...(chart.version === undefined ? [] : ['--version', chart.version]),
      ...(chart.plainHttp ? ['--plain-http'] : []),
      '--namespace',
      'piko-system',
      '--create-namespace',
      ...values,
      '--wait',
      '--timeout',
      '3m',
    ]);
    if (cluster!.registry !== undefined) {
      report(`installed ${chart.ref} ${chart.version ?? ''}`);
      type Deployments = { items: { spec: { template: { spec: { containers: { image: string; imagePullPolicy: string }[] } } } }[] };
      const deployments = await json<Deployments>(['-n', 'piko-system', 'get', 'deployments']);
      const container = deployments.items[0]?.spec.template.spec.containers[0];
      expect(container).toMatchObject({ image: `${image().repository}:${image().tag}`, imagePullPolicy: 'IfNotPresent' });
      // The node pulled it from the registry: containerd resolved the tag there.
      const resolved = cluster!.registry
        .log()
        .split('\n')
        .filter((line) => line.includes(`/v2/piko/manifests/${image().tag}`) && line.includes('"containerd/'));
      expect(resolved).not.toEqual([]);
    }
    const deployments = await json<{ items: Obj[] }>(['-n', 'piko-system', 'get', 'deployments']);
    expect(deployments.items).toHaveLength(1);
    const pods = await json<{
      items: {
        status: { conditions: { type: string; status: string }[] };
        spec: { securityContext?: Record<string, unknown>; containers: { securityContext?: Record<string, unknown> }[] };
      }[];
    }>(['-n', 'piko-system', 'get', 'pods', '-l', 'app.kubernetes.io/component=operator']);
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(pod.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect(pod.spec.containers[0]?.securityContext).toMatchObject({ readOnlyRootFilesystem: true });
  });

  it('runs the example PikoCluster: three pods Ready by their probes, every child owned by it, and the PikoCluster Ready', async () => {
    const [manifest] = example('pikocluster.yaml');
    (manifest!.spec as Record<string, unknown>)['image'] = image();
    await cluster!.kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
    await cluster!.kubectl(['-n', 'piko-system', 'wait', '--for=condition=Ready', 'pikocluster/piko', '--timeout=180s']);
    const live = await json<{
      metadata: { uid: string };
      status: { readyReplicas?: number; conditions: { type: string; status: string }[] };
    }>(['-n', 'piko-system', 'get', 'pikocluster', 'piko']);
    expect(live.status).toMatchObject({ readyReplicas: 3 });
    expect(live.status.conditions.find((c) => c.type === 'Degraded')?.status).toBe('False');
    // What the operator made is owned by the PikoCluster, so the garbage collector removes it with it.
    const owner = {
      apiVersion: 'piko.dev/v1alpha1',
      kind: 'PikoCluster',
      name: 'piko',
      uid: live.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    };
    for (const child of [
      'serviceaccount/piko',
      'role/piko-registry',
      'rolebinding/piko-registry',
      'configmap/piko-config',
      'secret/piko-cluster',
      'service/piko-nodes',
      'service/piko-proxy',
      'service/piko-upstream',
      'poddisruptionbudget/piko',
      'networkpolicy/piko',
      'statefulset/piko',
    ]) {
      const object = await json<{ metadata: { ownerReferences?: unknown[] } }>(['-n', 'piko-system', 'get', child]);
      expect({ child, owners: object.metadata.ownerReferences }).toEqual({ child, owners: [owner] });
    }
    // The NetworkPolicy names the apiserver by the address it publishes for the kubernetes Service
    // (this node's CNI does not enforce NetworkPolicy; the object is what is asserted).
    const policy = await json<{ spec: { egress: { to?: { ipBlock?: { cidr: string } }[] }[] } }>([
      '-n',
      'piko-system',
      'get',
      'networkpolicy',
      'piko',
    ]);
    const endpoints = await json<{ subsets: { addresses: { ip: string }[] }[] }>(['-n', 'default', 'get', 'endpoints', 'kubernetes']);
    const cidrs = policy.spec.egress.flatMap((r) => (r.to ?? []).map((t) => t.ipBlock?.cidr)).filter((c) => c !== undefined);
    expect(cidrs).toEqual(endpoints.subsets.flatMap((s) => s.addresses.map((a) => `${a.ip}/32`)));
    // The client pod every request below comes from.
    client = await InClusterClient.start(cluster!, 'default');
  }, 300_000);

  it('runs the example agent sidecar, which resolves piko-upstream through the cluster DNS and registers', async () => {
    const objects = example('agent-sidecar.yaml');
    const deployment = objects.find((o) => o.kind === 'Deployment') as Obj & {
      spec: { template: { spec: { initContainers: Record<string, unknown>[]; containers: Record<string, unknown>[] } } };
    };
    const pod = deployment.spec.template.spec;
    pod.initContainers[0]!['image'] = imageString(cluster!.image);
    pod.initContainers[0]!['imagePullPolicy'] = image().pullPolicy;
    pod.containers[0] = {
      ...pod.containers[0],
      image: imageString(cluster!.image),
      imagePullPolicy: image().pullPolicy,
      command: ['node', '-e', APP_SCRIPT],
      securityContext: { ...(pod.containers[0]!['securityContext'] as object), runAsUser: 65532, readOnlyRootFilesystem: true },
    };
    await cluster!.kubectl(['apply', '-n', 'default', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    await cluster!.kubectl(['-n', 'default', 'rollout', 'status', 'deployment/my-service', '--timeout=180s']);
    // Both replicas' agents registered: the PikoCluster counts them, from the pods' registry records.
    await cluster!.kubectl(['-n', 'piko-system', 'wait', '--for=jsonpath={.status.upstreams}=2', 'pikocluster/piko', '--timeout=60s']);
    const status = await json<{ status: { upstreams?: number; endpoints?: number } }>(['-n', 'piko-system', 'get', 'pikocluster', 'piko']);
    expect(status.status).toMatchObject({ endpoints: 1, upstreams: 2 });
  }, 240_000);

  it('answers a request sent to the piko-proxy Service from the app behind the sidecar', async () => {
    const res = await client!.get(`${PROXY_URL}/hello`, ENDPOINT);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body ?? '')).toMatchObject({ app: ENDPOINT, url: '/hello' });
  });

  it('carries a WebSocket and raw TCP (piko forward) through the piko-proxy Service', async () => {
    const ws = await client!.websocket(PROXY_URL.replace(/^http/, 'ws') + '/chat', ENDPOINT, 'through the tunnel');
    expect(ws).toEqual({ echo: 'through the tunnel' });
    // piko forward: a local port in the client pod whose bytes cross the proxy's TCP path to the
    // sidecar, which hands them to the app as a connection; HTTP is as good a byte stream as any.
    const res = await client!.forward(PROXY_URL, ENDPOINT, '/over-tcp');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body ?? '')).toMatchObject({ app: ENDPOINT, url: '/over-tcp' });
  });

  it('rolls every pod under 200+ requests/s with zero failed requests (kubectl rollout restart, then a spec change)', async () => {
    for (const [what, roll] of [
      ['rollout restart', () => cluster!.kubectl(['-n', 'piko-system', 'rollout', 'restart', 'statefulset/piko'])],
      [
        'spec change',
        () => cluster!.kubectl(['-n', 'piko-system', 'patch', 'pikocluster/piko', '--type=merge', '-p', '{"spec":{"upstreamWait":"6s"}}']),
      ],
    ] as const) {
      const generation = Number(
        await cluster!.kubectl(['-n', 'piko-system', 'get', 'statefulset', 'piko', '-o', 'jsonpath={.metadata.generation}']),
      );
      const traffic = client!.load(PROXY_URL, ENDPOINT, 8);
      const started = performance.now();
      await roll();
      await rolledFrom(generation);
      const rolledMs = performance.now() - started;
      const result = await traffic.stop();
      const failures = result.failed.map((f) => f.detail);
      report(
        `${what}: ${result.ok.length + failures.length} requests in ${(rolledMs / 1000).toFixed(1)} s of rollout ` +
          `(${rate(result).toFixed(0)}/s), ${failures.length} failed ${JSON.stringify(failures.slice(0, 5))}`,
      );
      expect(failures).toEqual([]);
      expect(rate(result)).toBeGreaterThanOrEqual(200);
    }
  }, 900_000);

  /** Sends load, marks, runs `kill`, waits for `recovered`, then keeps the load for `settleMs` more. */
  async function underLoad(kill: () => Promise<void>, recovered: () => Promise<void>, settleMs: number): Promise<LoadResult> {
    const traffic = client!.load(PROXY_URL, ENDPOINT, 4);
    // The load is flowing before the kill: its first success came back through the tunnel.
    await traffic.flowing;
    traffic.mark();
    await kill();
    await recovered();
    // Long enough for the agents to reconnect elsewhere and the registry to drop the dead pod's
    // records; the load's own outcomes then say when requests succeeded again.
    await new Promise((r) => setTimeout(r, settleMs));
    return traffic.stop();
  }

  function failover(what: string, result: LoadResult): void {
    const after = sinceMark(result);
    const lastFailure = after.failed.length > 0 ? Math.max(...after.failed.map((f) => f.at)) : 0;
    const firstSuccess = after.ok.find((t) => t >= lastFailure);
    report(
      `${what}: ${after.failed.length} of ${after.ok.length + after.failed.length} requests failed, ` +
        `the last ${(lastFailure / 1000).toFixed(2)} s after the kill; first success after that at ${((firstSuccess ?? NaN) / 1000).toFixed(2)} s ` +
        JSON.stringify([...new Set(after.failed.map((f) => f.detail.slice(0, 80)))].slice(0, 4)),
    );
    // Requests succeed again, and keep succeeding to the end.
    expect(endsHealthy(result)).toBe(true);
  }

  async function holder(): Promise<string> {
    const status = await json<{ status: { nodes: { name: string; upstreams: number }[] } }>([
      '-n',
      'piko-system',
      'get',
      'pikocluster',
      'piko',
    ]);
    const name = status.status.nodes.find((n) => n.upstreams > 0)?.name;
    expect(name).toBeDefined();
    return name as string;
  }

  it('recovers when the pod holding a tunnel is deleted with --grace-period=0 --force', async () => {
    const pod = await holder();
    const result = await underLoad(
      async () => void (await cluster!.kubectl(['-n', 'piko-system', 'delete', 'pod', pod, '--grace-period=0', '--force'])),
      async () => undefined,
      15_000,
    );
    failover(`force-deleted ${pod}`, result);
    await cluster!.kubectl(['-n', 'piko-system', 'rollout', 'status', 'statefulset/piko', '--timeout=180s']);
  }, 300_000);

  // A crash as the kernel delivers it needs the node's processes: SIGKILL to PID 1 of a container
  // from inside its PID namespace is ignored, so there is no way to do it through the API.
  (ON_EXISTING_CLUSTER ? it.skip : it)(
    'recovers when the server process of the pod holding a tunnel is killed, and kubelet restarts it',
    async () => {
      const name = await holder();
      const pod = await json<{ metadata: { uid: string }; status: { containerStatuses: { restartCount: number }[] } }>([
        '-n',
        'piko-system',
        'get',
        'pod',
        name,
      ]);
      // The container's processes, found by the pod's cgroup, as kubelet placed them.
      const uid = pod.metadata.uid.replace(/-/g, '_');
      const pids = fs
        .readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            const cgroup = fs.readFileSync(`/proc/${p}/cgroup`, 'utf8');
            return (
              (cgroup.includes(pod.metadata.uid) || cgroup.includes(uid)) &&
              fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('main.js')
            );
          } catch {
            return false;
          }
        });
      expect(pids.length).toBeGreaterThan(0);
      let restartedMs = 0;
      const killedAt = performance.now();
      const result = await underLoad(
        async () => {
          for (const p of pids) process.kill(Number(p), 'SIGKILL');
        },
        async () => {
          const restarts = String((pod.status.containerStatuses[0]?.restartCount ?? 0) + 1);
          await cluster!.kubectl([
            '-n',
            'piko-system',
            'wait',
            `pod/${name}`,
            `--for=jsonpath={.status.containerStatuses[0].restartCount}=${restarts}`,
            '--timeout=60s',
          ]);
          await cluster!.kubectl(['-n', 'piko-system', 'wait', `pod/${name}`, '--for=condition=Ready', '--timeout=60s']);
          restartedMs = performance.now() - killedAt;
        },
        // Until the agent reconnects and the restarted server's registry records replace those its
        // previous process left (same pod, same name), some requests still fail.
        15_000,
      );
      failover(`killed the server process of ${name} (restarted and Ready after ${(restartedMs / 1000).toFixed(1)} s)`, result);
    },
    300_000,
  );

  it("scales 3 → 5 → 2 through the scale subresource without failing requests, and drops removed pods' records", async () => {
    for (const replicas of [5, 2]) {
      const traffic = client!.load(PROXY_URL, ENDPOINT, 4);
      await cluster!.kubectl(['-n', 'piko-system', 'scale', 'pikocluster/piko', `--replicas=${replicas}`]);
      await cluster!.kubectl([
        '-n',
        'piko-system',
        'wait',
        `--for=jsonpath={.status.readyReplicas}=${replicas}`,
        'pikocluster/piko',
        '--timeout=180s',
      ]);
      await cluster!.kubectl(['-n', 'piko-system', 'rollout', 'status', 'statefulset/piko', '--timeout=180s']);
      const result = await traffic.stop();
      const failures = result.failed.map((f) => f.detail);
      report(
        `scale to ${replicas}: ${result.ok.length + failures.length} requests, ${failures.length} failed ${JSON.stringify(failures.slice(0, 3))}`,
      );
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

  /** The app of the examples, in a pod of our image, for the injected agent to forward to. */
  const appContainer = (): Record<string, unknown> => ({
    name: 'app',
    image: imageString(cluster!.image),
    imagePullPolicy: image().pullPolicy,
    command: ['node', '-e', APP_SCRIPT],
    securityContext: { runAsNonRoot: true, runAsUser: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
  });

  it('injects the agent into an annotated Deployment of a labelled namespace; it registers with its ServiceAccount token and serves through piko-proxy', async () => {
    await cluster!.kubectl(['create', 'namespace', 'shop']);
    await cluster!.kubectl(['label', 'namespace', 'shop', 'piko.dev/injection=enabled']);
    await cluster!.kubectl(['-n', 'shop', 'create', 'serviceaccount', 'web']);
    await cluster!.kubectl(['-n', 'shop', 'create', 'serviceaccount', 'batch']);
    // The PikoCluster admits shop/web to the endpoint shop-web; its pods roll to the new config.
    await patchAndRoll({ auth: { upstream: { serviceAccounts: [{ namespace: 'shop', name: 'web', endpoints: ['shop-web'] }] } } });

    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shopfront', namespace: 'shop' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'shopfront' } },
        template: {
          metadata: {
            labels: { app: 'shopfront' },
            // The one-annotation form of docs/agent-sidecar.md.
            annotations: { 'piko.dev/cluster': 'piko-system/piko', 'piko.dev/listeners': 'shop-web=8080' },
          },
          spec: { serviceAccountName: 'web', containers: [appContainer()] },
        },
      },
    };
    const applied = performance.now();
    await cluster!.kubectl(['apply', '-f', '-'], JSON.stringify(deployment));
    await cluster!.kubectl(['-n', 'shop', 'rollout', 'status', 'deployment/shopfront', '--timeout=180s']);
    const pods = await json<{ items: { spec: { initContainers?: { name: string; restartPolicy?: string }[] } }[] }>([
      '-n',
      'shop',
      'get',
      'pods',
      '-l',
      'app=shopfront',
    ]);
    expect(pods.items).toHaveLength(1);
    expect(pods.items[0]!.spec.initContainers?.filter((c) => c.name === 'piko-agent')).toEqual([
      expect.objectContaining({ restartPolicy: 'Always' }),
    ]);
    const res = await servedThroughProxy('/shop', 'shop-web');
    report(`injected sidecar: deployment applied to first request served in ${((performance.now() - applied) / 1000).toFixed(1)} s`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body ?? '')).toMatchObject({ app: ENDPOINT, url: '/shop' });
  }, 600_000);

  it('refuses a pod of another ServiceAccount asking for the endpoint at admission, and at the server when it bypasses the webhook', async () => {
    const annotations = { 'piko.dev/cluster': 'piko-system/piko', 'piko.dev/listeners': 'shop-web=8080' };
    const pod = (name: string, extra: Record<string, unknown>): string =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'shop', annotations, ...extra },
        spec: { serviceAccountName: 'batch', restartPolicy: 'Never', containers: [appContainer()] },
      });
    await expect(cluster!.kubectl(['apply', '-f', '-'], pod('intruder', {}))).rejects.toThrow(
      'ServiceAccount shop/batch may not listen on endpoint',
    );
    // Opted out of injection, with an agent of its own presenting batch's token for the cluster.
    const bypass = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bypass', namespace: 'shop', labels: { 'piko.dev/injection': 'disabled' } },
      spec: {
        serviceAccountName: 'batch',
        restartPolicy: 'Never',
        containers: [
          {
            name: 'agent',
            image: imageString(cluster!.image),
            imagePullPolicy: image().pullPolicy,
            args: [
              'agent',
              'start',
              '--connect.url=http://piko-upstream.piko-system.svc:8001',
              '--listen=shop-web=8080',
              '--connect.token-file=/var/run/secrets/piko.dev/token',
              '--connect.timeout=20s',
            ],
            securityContext: { runAsNonRoot: true, runAsUser: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
            volumeMounts: [{ name: 'token', mountPath: '/var/run/secrets/piko.dev', readOnly: true }],
          },
        ],
        volumes: [
          {
            name: 'token',
            projected: {
              defaultMode: 0o444,
              sources: [{ serviceAccountToken: { audience: 'piko.dev/piko-system/piko', expirationSeconds: 600, path: 'token' } }],
            },
          },
        ],
      },
    };
    await cluster!.kubectl(['apply', '-f', '-'], JSON.stringify(bypass));
    await cluster!.kubectl(['-n', 'shop', 'wait', '--for=jsonpath={.status.phase}=Failed', 'pod/bypass', '--timeout=120s']);
    const logs = await cluster!.kubectl(['-n', 'shop', 'logs', 'bypass']);
    expect(logs).toContain('endpoint not permitted');
  }, 300_000);

  it('serves the upstream port over TLS to injected agents, which verify it with the CA the operator hands them', async () => {
    // A private CA, as cert-manager's CA issuer writes its Secret: tls.crt, tls.key and ca.crt.
    const now = Date.now();
    const ca = issueCa(now, 24 * 3600_000, 'piko-e2e-upstream-ca');
    const serving = issueServing(ca, ['piko-upstream.piko-system.svc', 'piko-upstream.piko-system.svc.cluster.local'], now);
    const b64 = (text: string): string => Buffer.from(text).toString('base64');
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: 'piko-upstream-tls', namespace: 'piko-system' },
      data: { 'tls.crt': b64(serving.cert), 'tls.key': b64(serving.key), 'ca.crt': b64(ca.cert) },
    };
    await cluster!.kubectl(['apply', '-f', '-'], JSON.stringify(secret));
    await patchAndRoll({ tls: { upstream: { secretName: 'piko-upstream-tls' } } });
    await cluster!.kubectl(['-n', 'piko-system', 'wait', '--for=jsonpath={.status.upstreamCA}', 'pikocluster/piko', '--timeout=60s']);
    // The agent from before speaks plain HTTP to a port that now wants TLS: new pods get the CA and https.
    await cluster!.kubectl(['-n', 'shop', 'rollout', 'restart', 'deployment/shopfront']);
    await cluster!.kubectl(['-n', 'shop', 'rollout', 'status', 'deployment/shopfront', '--timeout=180s']);
    const pods = await json<{
      items: {
        metadata: { annotations?: Record<string, string>; deletionTimestamp?: string };
        spec: { initContainers?: { name: string; args?: string[] }[] };
      }[];
    }>(['-n', 'shop', 'get', 'pods', '-l', 'app=shopfront']);
    const [restarted] = pods.items.filter((p) => p.metadata.deletionTimestamp === undefined);
    const agent = restarted?.spec.initContainers?.find((c) => c.name === 'piko-agent');
    expect(agent?.args).toContain('--connect.url=https://piko-upstream.piko-system.svc:8001');
    expect(restarted?.metadata.annotations?.['piko.dev/upstream-ca']?.replace(/\r/g, '').trim()).toBe(ca.cert.replace(/\r/g, '').trim());
    const res = await servedThroughProxy('/tls', 'shop-web');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body ?? '')).toMatchObject({ app: ENDPOINT, url: '/tls' });
  }, 600_000);

  it('leaves no Lease, ConfigMap, Secret, Role or pod behind after the PikoCluster is deleted and the chart uninstalled', async () => {
    await client!.delete();
    client = undefined;
    await cluster!.kubectl(['-n', 'default', 'delete', 'deployment', 'my-service', '--wait=true']);
    await cluster!.kubectl(['delete', 'namespace', 'shop', '--wait=true', '--timeout=120s']);
    // Foreground: the PikoCluster goes only once the garbage collector has deleted what it owns.
    await cluster!.kubectl(['-n', 'piko-system', 'delete', 'pikocluster', 'piko', '--cascade=foreground', '--wait=true', '--timeout=120s']);
    await cluster!.helm(['uninstall', 'piko', '--namespace', 'piko-system', '--wait', '--timeout', '2m']);
    // The one object of ours that the user made, not the operator: the upstream port's certificate.
    await cluster!.kubectl(['-n', 'piko-system', 'delete', 'secret', 'piko-upstream-tls', '--ignore-not-found']);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const left = (
        await cluster!.kubectl([
          '-n',
          'piko-system',
          'get',
          'leases,configmaps,secrets,roles,rolebindings,pods,statefulsets,services',
          '-o',
          'name',
        ])
      )
        .split('\n')
        .filter((l) => l !== '' && !l.includes('kube-root-ca.crt'));
      if (left.length === 0) break;
      if (Date.now() > deadline) throw new Error(`left behind: ${left.join(', ')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // The token-review grant is cluster-scoped, so no owner reference took it: the operator did, before it went.
    expect(await cluster!.kubectl(['get', 'clusterrolebindings', '-l', 'piko.dev/cluster-name=piko', '-o', 'name'])).toBe('');
    // Every image came from the node's own store or our registry: containerd tried no other.
    if (cluster!.local) {
      const pulls = cluster!.local.logs('containerd').match(/PullImage "[^"]*"/g) ?? [];
      expect(pulls.filter((p) => !p.startsWith(`PullImage "${cluster!.registry?.host ?? '-'}/`))).toEqual([]);
    }
  }, 300_000);
});
