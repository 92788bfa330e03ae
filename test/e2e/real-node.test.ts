/**
 * The user path on real pods (test/k8s/node.ts): `helm install` of the chart with our image, the
 * PikoCluster of docs/examples/pikocluster.yaml, and the agent sidecar of
 * docs/examples/agent-sidecar.yaml, each changed only in its image; then requests through the
 * piko-proxy Service's ClusterIP, routed by kube-proxy, reach the app behind the sidecar.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { request } from '../helpers/http-client';
import { startNode, type TestNode } from '../k8s/node';

const REPO = path.resolve(__dirname, '..', '..');
const IMAGE_REPO = 'piko.local/piko';
const IMAGE_TAG = 'e2e';
const IMAGE = `${IMAGE_REPO}:${IMAGE_TAG}`;
const START_TIMEOUT_MS = 60 * 60 * 1000;

// The app behind the sidecar: an HTTP server in our image, since the example's nginx cannot be pulled here.
const APP_SCRIPT =
  "require('http').createServer((req, res) => res.end(JSON.stringify({ app: 'my-service', host: require('os').hostname(), url: req.url }))).listen(8080)";

let node: TestNode | undefined;

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
});
