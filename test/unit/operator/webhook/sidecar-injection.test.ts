import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { PikoCluster } from '../../../../operator/api/pikocluster';
import type { PikoClusterSpecInput } from '../../../../operator/api/pikocluster-spec';
import { injectAgent, type InjectionResult, type JsonPatchOp } from '../../../../operator/webhook/sidecar-injection';
import { DEFAULT_IMAGE, makeCluster } from '../fixtures';

const RULES: PikoClusterSpecInput = {
  auth: {
    upstream: {
      serviceAccounts: [
        { namespace: 'shop', name: 'web', endpoints: ['web', 'db'] },
        { namespace: 'shop', endpointPrefix: 'shop-' },
      ],
    },
  },
};

function pod(annotations: Record<string, string>, spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    metadata: { annotations },
    spec: { serviceAccountName: 'web', containers: [{ name: 'app', image: 'app:1' }], ...spec },
  };
}

function inject(p: V1Pod, clusters: PikoCluster[] = [makeCluster(RULES)]): InjectionResult {
  return injectAgent(p, {
    namespace: 'shop',
    defaultImage: DEFAULT_IMAGE,
    lookup: (ns, name) => clusters.find((c) => c.metadata.namespace === ns && c.metadata.name === name),
  });
}

/** The pod with a patch applied (the ops are whole-array adds and replaces, and annotation adds). */
function applied(p: V1Pod, patch: JsonPatchOp[]): V1Pod {
  const out = structuredClone(p);
  for (const op of patch) {
    const [, section, key] = op.path.split('/') as [string, 'spec' | 'metadata', string];
    if (section === 'metadata') {
      const name = op.path.split('/')[3]!.replace(/~1/g, '/').replace(/~0/g, '~');
      out.metadata!.annotations = { ...out.metadata!.annotations, [name]: op.value as string };
      continue;
    }
    (out.spec as unknown as Record<string, unknown>)[key] = structuredClone(op.value);
  }
  return out;
}

function patched(result: InjectionResult): JsonPatchOp[] {
  if (result.kind !== 'patch') throw new Error(`expected a patch, got ${JSON.stringify(result)}`);
  return result.patch;
}

function denied(result: InjectionResult): string {
  if (result.kind !== 'deny') throw new Error(`expected a denial, got ${JSON.stringify(result)}`);
  return result.message;
}

const annotated = { 'piko.dev/cluster': 'edge/piko', 'piko.dev/listeners': 'web=8080,db=5432/tcp' };

describe('sidecar injection', () => {
  it('adds the agent as a native sidecar after the init containers, with a projected token for the cluster audience', () => {
    const p = pod(annotated, { initContainers: [{ name: 'migrate', image: 'app:1' }] });
    const after = applied(p, patched(inject(p)));
    const inits = after.spec!.initContainers!;
    expect(inits.map((c) => c.name)).toEqual(['migrate', 'piko-agent']);
    const agent = inits[1] as V1Container;
    expect(agent).toMatchObject({
      image: DEFAULT_IMAGE,
      restartPolicy: 'Always',
      resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '128Mi' } },
      securityContext: {
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      },
      volumeMounts: [{ name: 'piko-agent-token', mountPath: '/var/run/secrets/piko.dev/serviceaccount', readOnly: true }],
    });
    expect(agent.args).toEqual([
      'agent',
      'start',
      '--connect.url=http://piko-upstream.edge.svc:8001',
      '--listen=web=8080/http,db=5432/tcp',
      '--log.level=info',
      '--connect.token-file=/var/run/secrets/piko.dev/serviceaccount/token',
    ]);
    const volume = after.spec!.volumes!.find((v) => v.name === 'piko-agent-token') as V1Volume;
    expect(volume.projected?.sources).toEqual([
      { serviceAccountToken: { audience: 'piko.dev/edge/piko', expirationSeconds: 3600, path: 'token' } },
    ]);
  });

  it('changes nothing on a second pass, and replaces (never duplicates) an agent left from another spec', () => {
    const once = applied(pod(annotated), patched(inject(pod(annotated))));
    expect(inject(once)).toEqual({ kind: 'unchanged' });
    const changed = { ...once, metadata: { annotations: { ...annotated, 'piko.dev/agent-log-level': 'debug' } } };
    const twice = applied(changed, patched(inject(changed)));
    expect(twice.spec!.initContainers!.filter((c) => c.name === 'piko-agent')).toHaveLength(1);
    expect(twice.spec!.initContainers![0]!.args).toContain('--log.level=debug');
    expect(twice.spec!.volumes!.filter((v) => v.name === 'piko-agent-token')).toHaveLength(1);
  });

  it('still sees its own agent once the apiserver has filled in defaults (reinvocation)', () => {
    const once = applied(pod(annotated), patched(inject(pod(annotated))));
    const agent = once.spec!.initContainers![0]!;
    agent.terminationMessagePath = '/dev/termination-log';
    agent.terminationMessagePolicy = 'File';
    expect(inject(once)).toEqual({ kind: 'unchanged' });
  });

  it('skips a pod without piko.dev/cluster', () => {
    expect(inject(pod({ 'piko.dev/listeners': 'web=8080' }))).toEqual({ kind: 'skip' });
  });

  it('refuses bad annotations with a message naming the annotation and what is wrong', () => {
    const cases: [Record<string, string>, string][] = [
      [{ 'piko.dev/cluster': 'edge/nope' }, 'piko.dev/cluster: PikoCluster edge/nope not found'],
      [{ 'piko.dev/cluster': 'a/b/c' }, 'piko.dev/cluster: "a/b/c" is not <namespace>/<name> of a PikoCluster'],
      [{ 'piko.dev/listeners': ' ' }, 'piko.dev/listeners: required with piko.dev/cluster'],
      [{ 'piko.dev/listeners': ',' }, 'piko.dev/listeners: lists no endpoint'],
      [{ 'piko.dev/listeners': 'we b=8080' }, 'piko.dev/listeners: "we b=8080": endpoint id "we b" contains " "'],
      [{ 'piko.dev/listeners': 'web=0' }, 'piko.dev/listeners: "web=0": port 0 is out of range (1-65535)'],
      [{ 'piko.dev/listeners': 'web=localhost:80' }, 'piko.dev/listeners: "web=localhost:80": "localhost:80" is not a port'],
      [{ 'piko.dev/listeners': 'web=8080,web=8081' }, 'piko.dev/listeners: endpoint "web" is listed twice'],
      [{ 'piko.dev/listeners': 'web=8080/udp' }, 'piko.dev/listeners: "web=8080/udp": protocol "udp" is not http or tcp'],
      [{ 'piko.dev/agent-log-level': 'loud' }, 'piko.dev/agent-log-level: "loud" is not one of debug, info, warn, error'],
      [{ 'piko.dev/agent-image': 'Not An Image' }, 'piko.dev/agent-image: "Not An Image" is not an image reference'],
    ];
    for (const [extra, message] of cases) {
      expect(denied(inject(pod({ ...annotated, ...extra })))).toContain(message);
    }
  });

  it("refuses an endpoint the pod's ServiceAccount may not serve, and admits one by prefix", () => {
    expect(denied(inject(pod({ ...annotated, 'piko.dev/listeners': 'admin=9000' })))).toBe(
      'piko.dev/listeners: ServiceAccount shop/web may not listen on endpoint "admin" of PikoCluster edge/piko (spec.auth.upstream.serviceAccounts)',
    );
    expect(denied(inject(pod(annotated, { serviceAccountName: 'batch' })))).toContain(
      'ServiceAccount shop/batch may not listen on endpoint "web"',
    );
    expect(inject(pod({ ...annotated, 'piko.dev/listeners': 'shop-orders=9000' }, { serviceAccountName: 'batch' })).kind).toBe('patch');
  });

  it("connects over TLS to a cluster that serves it, with the CA of its status in the pod's own annotation, mounted by the downward API", () => {
    const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const tls = makeCluster({ ...RULES, tls: { upstream: { secretName: 'upstream-tls' } } });
    // Not yet read by the operator: admitting the pod now would leave its agent without the CA for good.
    expect(denied(inject(pod(annotated), [tls]))).toBe(
      'piko.dev/cluster: PikoCluster edge/piko serves its upstream port over TLS and has not yet published the CA of upstream-tls (status.upstreamCA); retry',
    );
    tls.status = { upstreamCA: CA };
    const after = applied(pod(annotated), patched(inject(pod(annotated), [tls])));
    expect(after.metadata!.annotations!['piko.dev/upstream-ca']).toBe(CA);
    const agent = after.spec!.initContainers![0]!;
    expect(agent.args).toContain('--connect.url=https://piko-upstream.edge.svc:8001');
    expect(agent.args).toContain('--connect.tls.root-cas=/var/run/secrets/piko.dev/upstream-ca/ca.crt');
    expect(agent.volumeMounts).toContainEqual({
      name: 'piko-agent-ca',
      mountPath: '/var/run/secrets/piko.dev/upstream-ca',
      readOnly: true,
    });
    expect(after.spec!.volumes!.find((v) => v.name === 'piko-agent-ca')).toEqual({
      name: 'piko-agent-ca',
      downwardAPI: {
        defaultMode: 0o444,
        items: [{ path: 'ca.crt', fieldRef: { fieldPath: "metadata.annotations['piko.dev/upstream-ca']" } }],
      },
    });
    expect(inject(after, [tls])).toEqual({ kind: 'unchanged' });
    // A renewed CA: the next pod gets the new one.
    tls.status = { upstreamCA: CA.replace('MIIB', 'MIIC') };
    expect(applied(after, patched(inject(after, [tls]))).metadata!.annotations!['piko.dev/upstream-ca']).toContain('MIIC');
    // A Secret without ca.crt (a public certificate): the system's roots, and nothing mounted.
    tls.status = { upstreamCA: '' };
    const publicCert = applied(pod(annotated), patched(inject(pod(annotated), [tls])));
    expect(publicCert.metadata!.annotations!['piko.dev/upstream-ca']).toBeUndefined();
    expect(publicCert.spec!.initContainers![0]!.args).toContain('--connect.url=https://piko-upstream.edge.svc:8001');
    expect(publicCert.spec!.initContainers![0]!.args!.some((a) => a.startsWith('--connect.tls.root-cas'))).toBe(false);
    expect(publicCert.spec!.volumes!.map((v) => v.name)).toEqual(['piko-agent-token']);
  });

  it('needs no token for a cluster without upstream auth, and refuses one that admits agents by JWT only', () => {
    const open = applied(pod(annotated), patched(inject(pod(annotated), [makeCluster()])));
    expect(open.spec!.initContainers![0]!.args!.some((a) => a.startsWith('--connect.token-file'))).toBe(false);
    expect(open.spec!.volumes ?? []).toEqual([]);
    const jwt = makeCluster({ auth: { upstream: { hmacSecretKeyRef: { name: 's', key: 'k' } } } });
    expect(denied(inject(pod(annotated), [jwt]))).toContain('admits agents by JWT only');
  });

  it("takes the agent's image, resources and log level from spec.agent, and the annotations over them", () => {
    const cluster = makeCluster({
      ...RULES,
      image: { repository: 'registry.local/piko', tag: '1.2.3', pullPolicy: 'Always' },
      agent: { logLevel: 'warn', resources: { requests: { cpu: '5m' } } },
    });
    const agent = applied(pod(annotated), patched(inject(pod(annotated), [cluster]))).spec!.initContainers![0]!;
    expect(agent).toMatchObject({ image: 'registry.local/piko:1.2.3', imagePullPolicy: 'Always', resources: { requests: { cpu: '5m' } } });
    expect(agent.args).toContain('--log.level=warn');
    const over = pod({ ...annotated, 'piko.dev/agent-image': 'mirror.local/piko:1.2.3', 'piko.dev/agent-log-level': 'debug' });
    const overridden = applied(over, patched(inject(over, [cluster]))).spec!.initContainers![0]!;
    expect(overridden.image).toBe('mirror.local/piko:1.2.3');
    expect(overridden.args).toContain('--log.level=debug');
  });

  it('reads a bare cluster name as one in the pod namespace', () => {
    const local = makeCluster(RULES, { namespace: 'shop' });
    const result = inject(pod({ ...annotated, 'piko.dev/cluster': 'piko' }), [local]);
    expect(result).toMatchObject({ kind: 'patch', cluster: 'shop/piko', endpoints: ['web', 'db'] });
  });
});
