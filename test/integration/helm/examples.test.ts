/**
 * The manifests under docs/examples are what users copy, so they are checked against the code
 * that will read them: the agent YAML in the sidecar's ConfigMap goes through the real agent
 * config loader and the real `piko` command line, and the PikoCluster through the CRD's schema
 * and the operator's builders.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { V1ConfigMap, V1Container, V1Deployment, V1EnvVar } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { CLUSTER_NAME } from '../../../operator/api/k8s-patterns';
import { API_VERSION, KIND, pikoClusterSpecSchema, type PikoCluster } from '../../../operator/api/pikocluster';
import type { PikoClusterSpec } from '../../../operator/api/pikocluster-spec';
import { valueProblems } from '../../../operator/api/schema-check';
import { applyDefaults } from '../../../operator/api/schema-defaults';
import { buildChildren } from '../../../operator/builders/desired-children';
import { childNames } from '../../../operator/builders/names';
import { validateSpec } from '../../../operator/builders/validate-spec';
import { runCli } from '../../../dataplane/cli/program';
import { loadAgentConfig, type AgentConfig } from '../../../dataplane/config/agent-config';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const EXAMPLES = path.join(ROOT, 'docs', 'examples');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The chart's default image (values.yaml image.repository, tag = appVersion). */
const IMAGE = `ghcr.io/piko-k8s/piko:${VERSION}`;
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJteS1zZXJ2aWNlIn0.c2lnbmF0dXJl';

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

function readManifests(file: string): Manifest[] {
  const docs = parseAllDocuments(fs.readFileSync(path.join(EXAMPLES, file), 'utf8'));
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    expect(doc.errors).toEqual([]);
  }
  return (Array.isArray(docs) ? docs : [docs]).map((d) => d.toJS() as Manifest).filter((m) => m !== null);
}

function only<T extends Manifest>(manifests: Manifest[], kind: string): T {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found).toHaveLength(1);
  return found[0] as T;
}

function examplePikoCluster(): PikoCluster {
  const manifest = only<Manifest & { spec: unknown }>(readManifests('pikocluster.yaml'), KIND);
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: manifest.metadata.name,
      namespace: manifest.metadata.namespace ?? 'default',
      uid: '00000000-0000-4000-8000-000000000000',
      generation: 1,
    },
    // As the API server stores it: defaulted from the CRD schema.
    spec: applyDefaults(pikoClusterSpecSchema(), manifest.spec) as PikoClusterSpec,
  };
}

/** The sidecar's environment as the kubelet would build it, with `secrets` standing in for Secret keys. */
function containerEnv(container: V1Container, secrets: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const e of container.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref !== undefined) {
      const value = secrets[`${ref.name}/${ref.key}`];
      if (value !== undefined) env[e.name] = value;
      else expect(ref.optional).toBe(true);
    } else {
      expect(e.value).toBeDefined();
      env[e.name] = e.value;
    }
  }
  return env;
}

describe('docs/examples/agent-sidecar.yaml', () => {
  const manifests = readManifests('agent-sidecar.yaml');
  const configMap = only<Manifest & V1ConfigMap>(manifests, 'ConfigMap');
  const deployment = only<Manifest & V1Deployment>(manifests, 'Deployment');
  const podSpec = deployment.spec!.template.spec!;
  const sidecar = (podSpec.initContainers ?? []).find((c) => c.name === 'piko-agent');
  let dir: string;
  let configPath: string;

  beforeAll(() => {
    // Where the ConfigMap volume puts the file, as the sidecar sees it.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-agent-sidecar-'));
    configPath = path.join(dir, 'agent.yaml');
    fs.writeFileSync(configPath, configMap.data?.['agent.yaml'] ?? '');
  });

  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs the agent as a native sidecar: an init container with restartPolicy Always', () => {
    expect(sidecar).toBeDefined();
    expect(sidecar!.restartPolicy).toBe('Always');
    expect(sidecar!.image).toBe(IMAGE);
    expect(sidecar!.args).toEqual(['agent', 'start', '--config.path', '/etc/piko-agent/agent.yaml', '--config.expand-env']);
    expect(sidecar!.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('mounts the ConfigMap holding agent.yaml where --config.path points', () => {
    const mount = (sidecar!.volumeMounts ?? []).find((m) => m.mountPath === '/etc/piko-agent');
    expect(mount).toBeDefined();
    const volume = (podSpec.volumes ?? []).find((v) => v.name === mount!.name);
    expect(volume?.configMap?.name).toBe(configMap.metadata.name);
    expect(Object.keys(configMap.data ?? {})).toEqual(['agent.yaml']);
  });

  it('takes the token from a Secret through the environment, never from the manifest', () => {
    const token = (sidecar!.env ?? []).find((e: V1EnvVar) => e.name === 'PIKO_TOKEN');
    expect(token?.value).toBeUndefined();
    expect(token?.valueFrom?.secretKeyRef).toEqual({ name: 'piko-agent-token', key: 'token', optional: true });
    expect(configMap.data!['agent.yaml']).toContain('${PIKO_TOKEN}');
  });

  it('loads with the real agent config loader after env expansion', () => {
    const env = containerEnv(sidecar!, { 'piko-agent-token/token': TOKEN });
    const config = loadAgentConfig({ configPath, expandEnv: true, env });
    expect(config.connect.url).toBe('http://piko-upstream.piko-system.svc:8001');
    expect(config.connect.token).toBe(TOKEN);
    expect(config.connect.timeoutMs).toBe(30_000);
    expect(config.log.level).toBe('info');
    expect(config.gracePeriodMs).toBe(20_000);
    expect(config.listeners).toHaveLength(1);
    expect(config.listeners[0]).toMatchObject({
      endpointId: 'my-service',
      addr: 'http://localhost:8080',
      protocol: 'http',
      timeoutMs: 30_000,
    });
  });

  it('loads without a token when the optional Secret is absent', () => {
    const config = loadAgentConfig({ configPath, expandEnv: true, env: containerEnv(sidecar!, {}) });
    expect(config.connect.token).toBeUndefined();
    expect(config.connect.url).toBe('http://piko-upstream.piko-system.svc:8001');
  });

  it('is accepted by `piko agent start` with exactly the container args', async () => {
    const env = containerEnv(sidecar!, { 'piko-agent-token/token': TOKEN });
    const args = sidecar!.args!.map((a) => (a === '/etc/piko-agent/agent.yaml' ? configPath : a));
    const started: AgentConfig[] = [];
    const errors: string[] = [];
    const code = await runCli(args, {
      runServer: async () => undefined,
      runForward: async () => undefined,
      runAgent: async (config) => {
        started.push(config);
      },
      env,
      writeOut: () => undefined,
      writeErr: (text) => {
        errors.push(text);
      },
    });
    expect(errors).toEqual([]);
    expect(code).toBe(0);
    expect(started).toEqual([loadAgentConfig({ configPath, expandEnv: true, env })]);
  });

  it('forwards to the port the app container listens on', () => {
    const config = loadAgentConfig({ configPath, expandEnv: true, env: containerEnv(sidecar!, {}) });
    const port = Number(new URL(config.listeners[0]!.addr).port);
    const appPorts = podSpec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
    expect(appPorts).toContain(port);
  });

  it('connects to the upstream Service of the example PikoCluster', () => {
    const cluster = examplePikoCluster();
    const port = cluster.spec.services.upstream.port ?? cluster.spec.ports.upstream;
    const url = `http://${childNames(cluster).upstreamService}.${cluster.metadata.namespace}.svc:${port}`;
    const connect = (sidecar!.env ?? []).find((e) => e.name === 'PIKO_CONNECT_URL');
    expect(connect?.value).toBe(url);
  });
});

describe('docs/examples/pikocluster.yaml', () => {
  it('fits the CRD schema and has a valid name', () => {
    const manifest = only<Manifest & { spec: unknown }>(readManifests('pikocluster.yaml'), KIND);
    expect(manifest.apiVersion).toBe(API_VERSION);
    expect(manifest.metadata.name).toMatch(new RegExp(CLUSTER_NAME));
    expect(valueProblems(pikoClusterSpecSchema(), manifest.spec, 'spec')).toEqual([]);
  });

  it('passes the operator spec checks and builds its children', () => {
    const cluster = examplePikoCluster();
    expect(validateSpec(cluster)).toEqual([]);
    const children = buildChildren(cluster, { defaultImage: IMAGE, clusterSecretValue: 'x'.repeat(64) });
    expect(children.apply.map((c) => c.kind)).toContain('StatefulSet');
  });
});
