/**
 * The whole pod contract without a cluster: the container's args and
 * environment as kubelet would resolve them (downward API, Secret keys,
 * `$(VAR)` in args) and the ConfigMap's server.yaml, parsed by the real
 * `piko server` command line.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { V1ConfigMap, V1Container, V1StatefulSet } from '@kubernetes/client-node';
import { parseServerCommand } from '../../../../dataplane/cli/parse';
import type { ServerConfig } from '../../../../dataplane/config/server-config';
import type { PikoCluster } from '../../../../operator/api/pikocluster';
import { buildChildren } from '../../../../operator/builders/desired-children';
import { CONFIG_PATH } from '../../../../operator/builders/pod-paths';
import { DEFAULT_IMAGE, makeCluster } from '../fixtures';

const POD = { 'metadata.name': 'piko-2', 'metadata.namespace': 'edge', 'metadata.uid': 'pod-uid', 'status.podIP': '10.4.0.9' };

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'piko-operator-pod-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function startPod(cluster: PikoCluster, secrets: Record<string, Record<string, string>>): ServerConfig {
  const children = buildChildren(cluster, { defaultImage: DEFAULT_IMAGE, clusterSecretValue: 'f'.repeat(64) });
  for (const s of children.createOnly) secrets[s.metadata.name] = { ...(s.stringData ?? {}) };
  const configMap = children.apply.find((o) => o.kind === 'ConfigMap') as V1ConfigMap;
  const sts = children.apply.find((o) => o.kind === 'StatefulSet') as V1StatefulSet;
  const container = sts.spec!.template.spec!.containers[0] as V1Container;

  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    const ref = e.valueFrom?.secretKeyRef;
    if (field !== undefined) env[e.name] = POD[field as keyof typeof POD];
    else if (ref !== undefined) env[e.name] = secrets[ref.name!]![ref.key]!;
    else env[e.name] = e.value ?? '';
  }
  const file = path.join(dir, `${cluster.metadata.name}.yaml`);
  writeFileSync(file, configMap.data!['server.yaml']!);
  const args = (container.args ?? [])
    .map((a) => a.replace(/\$\((\w+)\)/g, (_m, name: string) => env[name] ?? ''))
    .map((a) => (a === CONFIG_PATH ? file : a));
  expect(args[0]).toBe('server');
  return parseServerCommand(args.slice(1), { env });
}

describe('a data-plane pod built by the operator', () => {
  it('starts as a kubernetes-registry node named after its pod', () => {
    const config = startPod(makeCluster(), {});
    expect(config.cluster).toMatchObject({ nodeId: 'piko-2', name: 'piko', registry: 'kubernetes', secret: 'f'.repeat(64) });
    expect(config.proxy.advertiseAddr).toBe('[10.4.0.9]:8000');
  });

  it('gets every auth key from its Secret unchanged, PEM line breaks included', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const ecdsa = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const hmac = 'sEcr3t+/="\\$x';
    const cluster = makeCluster({
      auth: {
        proxy: { hmacSecretKeyRef: { name: 'keys', key: 'hmac' }, rsaPublicKeyRef: { name: 'keys', key: 'rsa' } },
        upstream: { ecdsaPublicKeyRef: { name: 'keys', key: 'ecdsa' } },
      },
    });
    const config = startPod(cluster, { keys: { hmac, rsa, ecdsa } });
    expect(config.proxy.auth.hmacSecretKey).toBe(hmac);
    expect(config.proxy.auth.rsaPublicKey).toBe(rsa);
    expect(config.upstream.auth.ecdsaPublicKey).toBe(ecdsa);
    expect(config.admin.auth.hmacSecretKey).toBeUndefined();
  });
});
