/**
 * The test node (node.ts): it registers Ready, runs a pod from an image imported here, and
 * leaves nothing behind when stopped.
 */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { NODE_NAME, startNode, type TestNode } from './node';

const START_TIMEOUT_MS = 60 * 60 * 1000;
let node: TestNode | undefined;

afterAll(async () => {
  await node?.stop();
});

it('registers Ready and runs a pod from an imported image, with no pull', async () => {
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
}, START_TIMEOUT_MS);

it('leaves no network namespace, mount or cgroup behind', async () => {
  const dir = node!.dir;
  await node!.stop();
  node = undefined;
  expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain('piko-node-');
  expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  expect(fs.existsSync(dir)).toBe(false);
  expect(fs.readdirSync('/sys/fs/cgroup/memory').filter((d) => d.startsWith('piko-node-'))).toEqual([]);
});
