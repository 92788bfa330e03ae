/**
 * The test node (node.ts): it registers Ready, runs a pod from an image imported here, and
 * leaves nothing behind when stopped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { request } from '../helpers/http-client';
import { NODE_NAME, startNode, type TestNode } from './node';

const PIKO_IMAGE = 'piko.local/piko:node-test';

const START_TIMEOUT_MS = 60 * 60 * 1000;
let node: TestNode | undefined;

afterAll(async () => {
  await node?.stop();
});

it(
  'registers Ready and runs a pod from an imported image, with no pull',
  async () => {
    node = await startNode();
    const nodes = JSON.parse(await node.kubectl(['get', 'nodes', '-o', 'json'])) as {
      items: { metadata: { name: string }; status: { conditions: { type: string; status: string }[] } }[];
    };
    expect(nodes.items.map((n) => n.metadata.name)).toEqual([NODE_NAME]);
    expect(nodes.items[0]?.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');

    await node.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'sleeper', namespace: 'default' },
        spec: { containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10.2', imagePullPolicy: 'Never' }] },
      }),
    );
    await node.kubectl(['wait', '--for=condition=Ready', 'pod/sleeper', '--timeout=60s']);
    const pod = JSON.parse(await node.kubectl(['get', 'pod', 'sleeper', '-o', 'json'])) as { status: { podIP: string } };
    expect(pod.status.podIP).toMatch(/^198\.18\.0\./);
    expect(node.logs('containerd')).not.toMatch(/PullImage|pulling image/i);
  },
  START_TIMEOUT_MS,
);

it(
  'resolves cluster names through CoreDNS and routes a ClusterIP through kube-proxy, from pods and from the host',
  async () => {
    const archive = execFileSync('bash', [path.join(__dirname, 'images', 'piko', 'build.sh'), PIKO_IMAGE, node!.dir], {
      maxBuffer: 64 * 1024 * 1024,
    })
      .toString()
      .trim()
      .split('\n')
      .pop() as string;
    await node!.importImage(archive, 'piko.local/piko');
    const labels = { app: 'server' };
    await node!.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'server', namespace: 'default' },
            spec: {
              selector: { matchLabels: labels },
              template: {
                metadata: { labels },
                spec: {
                  containers: [
                    {
                      name: 'server',
                      image: PIKO_IMAGE,
                      imagePullPolicy: 'Never',
                      args: ['server'],
                      readinessProbe: { httpGet: { path: '/ready', port: 8002 }, periodSeconds: 1 },
                      securityContext: { readOnlyRootFilesystem: true, runAsNonRoot: true },
                    },
                  ],
                },
              },
            },
          },
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'server', namespace: 'default' },
            spec: { selector: labels, ports: [{ name: 'admin', port: 80, targetPort: 8002 }] },
          },
        ],
      }),
    );
    await node!.kubectl(['rollout', 'status', 'deployment/server', '--timeout=90s']);
    // kube-proxy programs the new endpoint shortly after the pod turns Ready: the client retries for 10 s.
    const script =
      "const go = (n) => fetch('http://server.default.svc.cluster.local/ready').then(async (r) => console.log(r.status, await r.text()))" +
      '.catch((e) => (n > 0 ? setTimeout(() => go(n - 1), 250) : (console.error(e), process.exit(1)))); go(40);';
    await node!.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'resolver', namespace: 'default' },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'resolver', image: PIKO_IMAGE, imagePullPolicy: 'Never', command: ['node', '-e', script] }],
        },
      }),
    );
    await node!.kubectl(['wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/resolver', '--timeout=90s']);
    // From a pod: the Service's name through CoreDNS, its ClusterIP through kube-proxy.
    expect((await node!.kubectl(['logs', 'resolver'])).trim()).toMatch(/^200\b/);
    // From the host, as a cluster's client: the ClusterIP, routed into the node.
    const clusterIp = (await node!.kubectl(['get', 'service', 'server', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    expect(clusterIp).toMatch(/^198\.19\./);
    expect((await request(`http://${clusterIp}/ready`)).status).toBe(200);
  },
  10 * 60 * 1000,
);

it('leaves no network namespace, mount or cgroup behind', async () => {
  const dir = node!.dir;
  await node!.stop();
  node = undefined;
  expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain('piko-node-');
  expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  expect(fs.existsSync(dir)).toBe(false);
  expect(fs.readdirSync('/sys/fs/cgroup/memory').filter((d) => d.startsWith('piko-node-'))).toEqual([]);
});
