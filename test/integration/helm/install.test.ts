/**
 * The chart installed with the real helm into a real kube-apiserver (test/k8s/control-plane.ts).
 * The operator itself is not run here; its ServiceAccount's credentials are, so the chart's RBAC
 * is checked by the API server's own authoriser: the effective rules, every child of a
 * PikoCluster applied as the operator applies them (the registry Role included, which the API
 * server allows only to someone holding its verbs), status writes, garbage collection, Events and
 * the leader Lease. The examples under docs/examples are admitted by the same API server.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { V1PolicyRule } from '@kubernetes/client-node';
import { parse as parseYaml, stringify } from 'yaml';
import { startControlPlane, type ControlPlane } from '../../k8s/control-plane';
import type { PikoCluster } from '../../../operator/api/pikocluster';
import { buildChildren } from '../../../operator/builders/desired-children';
import { childNames } from '../../../operator/builders/names';
import { runTool, type ToolResult } from './cli';
import { OPERATOR_CLUSTER_ROLE_RULES, webhookConfigurationRules, webhookSecretRules } from '../../../operator/operator-role';
import { ruleGrants } from './rbac-expectations';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CHART = path.join(ROOT, 'helm', 'piko');
const EXAMPLES = path.join(ROOT, 'docs', 'examples');
const IMAGE = 'ghcr.io/piko-k8s/piko:0.1.0';
// Unique names, so a run against a shared cluster (PIKO_TEST_KUBECONFIG) collides with nothing.
const SUFFIX = randomBytes(3).toString('hex');
const RELEASE = `piko-${SUFFIX}`;
const NAMESPACE = `piko-system-${SUFFIX}`;
const APPS = `apps-${SUFFIX}`;
const OPERATOR = `${RELEASE}-operator`;
const FIELD_MANAGER = 'piko-operator';
// A cold build of the binaries compiles Kubernetes; a warm start takes a few seconds.
const START_TIMEOUT_MS = 60 * 60 * 1000;

let cp: ControlPlane | undefined;
let home: string;
let operatorKubeconfig: string;
/** A ServiceAccount bound to nothing. */
let bareKubeconfig: string;

function kubectl(args: readonly string[], input?: string, kubeconfig = cp!.kubeconfigPath): Promise<ToolResult> {
  return runTool(path.join(cp!.binDir, 'kubectl'), args, { home, kubeconfig, ...(input === undefined ? {} : { input }) });
}

/** kubectl as the operator's ServiceAccount, with a token from the TokenRequest API. */
function asOperator(args: readonly string[], input?: string): Promise<ToolResult> {
  return kubectl(args, input, operatorKubeconfig);
}

function helm(args: readonly string[]): Promise<ToolResult> {
  return runTool(path.join(cp!.binDir, 'helm'), args, { home, kubeconfig: cp!.kubeconfigPath });
}

function ok(result: ToolResult): string {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return result.stdout;
}

/** Every rule `kubeconfig`'s user holds in `namespace`, as the API server computes them. */
async function rulesOf(kubeconfig: string, namespace: string): Promise<string[]> {
  const review = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectRulesReview',
    spec: { namespace },
  };
  // --validate=false: kubectl's own check of the object lists CRDs, which the operator may not do.
  const out = ok(await kubectl(['create', '--validate=false', '-f', '-', '-o', 'json'], JSON.stringify(review), kubeconfig));
  const status = (JSON.parse(out) as { status: { resourceRules: V1PolicyRule[]; incomplete: boolean } }).status;
  expect(status.incomplete).toBe(false);
  return ruleGrants(status.resourceRules);
}

/**
 * The rules the chart gives the operator's ServiceAccount in `namespace`: what it holds, less what
 * every ServiceAccount holds (asking what it may do, reading cluster trust bundles, ...), which
 * varies with the Kubernetes release.
 */
async function operatorRules(namespace: string): Promise<string[]> {
  const everyone = new Set(await rulesOf(bareKubeconfig, namespace));
  return (await rulesOf(operatorKubeconfig, namespace)).filter((g) => !everyone.has(g));
}

/** The example PikoCluster, moved into `namespace`. */
function examplePikoCluster(namespace: string): { metadata: { name: string; namespace: string } } {
  const manifest = parseYaml(fs.readFileSync(path.join(EXAMPLES, 'pikocluster.yaml'), 'utf8')) as {
    metadata: { name: string; namespace: string };
  };
  manifest.metadata.namespace = namespace;
  return manifest;
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-helm-install-'));
  cp = await startControlPlane();
  ok(await helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--create-namespace']));
  ok(await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/pikoclusters.piko.dev']));
  ok(await kubectl(['create', 'namespace', APPS]));
  operatorKubeconfig = await cp.kubeconfigForServiceAccount(NAMESPACE, OPERATOR);
  ok(await kubectl(['create', 'serviceaccount', '--namespace', APPS, 'bare']));
  bareKubeconfig = await cp.kubeconfigForServiceAccount(APPS, 'bare');
}, START_TIMEOUT_MS);

afterAll(async () => {
  if (cp !== undefined) {
    // Against a shared cluster these must go; a local control plane goes with them anyway.
    await helm(['uninstall', RELEASE, '--namespace', NAMESPACE, '--ignore-not-found']);
    await kubectl(['delete', 'namespace', NAMESPACE, APPS, '--ignore-not-found', '--wait=false']);
    await cp.stop();
  }
  fs.rmSync(home, { recursive: true, force: true });
});

describe('the chart installed into a real API server', () => {
  it('creates the operator, its ServiceAccount, RBAC and metrics Service', async () => {
    ok(await kubectl(['get', '--namespace', NAMESPACE, `deployment/${OPERATOR}`, `serviceaccount/${OPERATOR}`]));
    ok(await kubectl(['get', '--namespace', NAMESPACE, `service/${OPERATOR}-metrics`, `role/${OPERATOR}-leader-election`]));
    ok(await kubectl(['get', `clusterrole/${OPERATOR}`, `clusterrolebinding/${OPERATOR}`]));
  });

  it('gives the operator exactly the ClusterRole rules in any namespace, and its one webhook configuration', async () => {
    expect(await operatorRules(APPS)).toEqual(ruleGrants([...OPERATOR_CLUSTER_ROLE_RULES, ...webhookConfigurationRules(OPERATOR)]));
  });

  it('adds only the leader Lease verbs and the webhook Secret in the release namespace', async () => {
    const leader: V1PolicyRule = { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] };
    expect(await operatorRules(NAMESPACE)).toEqual(
      ruleGrants([
        ...OPERATOR_CLUSTER_ROLE_RULES,
        ...webhookConfigurationRules(OPERATOR),
        leader,
        ...webhookSecretRules(`${OPERATOR}-webhook-tls`),
      ]),
    );
  });

  it('admits the example PikoCluster, defaulted by the CRD', async () => {
    const manifest = examplePikoCluster(APPS);
    ok(await kubectl(['apply', '-f', '-'], JSON.stringify(manifest)));
    const stored = JSON.parse(ok(await kubectl(['get', '--namespace', APPS, 'pkc', manifest.metadata.name, '-o', 'json']))) as PikoCluster;
    expect(stored.spec.replicas).toBe(3);
    expect(stored.spec.ports).toEqual({ proxy: 8000, upstream: 8001, admin: 8002 });
  });

  it('lets the operator apply every child of a PikoCluster, the registry Role included', async () => {
    const name = examplePikoCluster(APPS).metadata.name;
    // The operator reads PikoClusters from its informer cache (list and watch), not with get.
    const cluster = JSON.parse(ok(await kubectl(['get', '--namespace', APPS, 'pkc', name, '-o', 'json']))) as PikoCluster;
    const children = buildChildren(cluster, { defaultImage: IMAGE, clusterSecretValue: randomBytes(32).toString('hex') });
    for (const secret of children.createOnly) {
      ok(await asOperator(['create', '-f', '-', '-o', 'name'], JSON.stringify(secret)));
    }
    const applied = await asOperator(
      ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--force-conflicts', '-f', '-', '-o', 'name'],
      children.apply.map((c) => stringify(c)).join('---\n'),
    );
    ok(applied);
    expect(applied.stdout.trim().split('\n')).toHaveLength(children.apply.length);
    // The second pass is what every later reconcile does: a patch of objects that exist.
    ok(
      await asOperator(
        ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--force-conflicts', '-f', '-', '-o', 'name'],
        children.apply.map((c) => stringify(c)).join('---\n'),
      ),
    );
    const names = childNames(cluster);
    ok(await asOperator(['delete', '--namespace', APPS, `poddisruptionbudget/${names.podDisruptionBudget}`]));
  });

  it("lets the operator write a PikoCluster's status but not its spec", async () => {
    const name = examplePikoCluster(APPS).metadata.name;
    // Server-side apply (a patch), as the operator writes status.
    const status = { apiVersion: 'piko.dev/v1alpha1', kind: 'PikoCluster', metadata: { name, namespace: APPS }, status: { replicas: 1 } };
    ok(
      await asOperator(
        ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--subresource=status', '-f', '-', '-o', 'name'],
        JSON.stringify(status),
      ),
    );
    const after = JSON.parse(ok(await kubectl(['get', '--namespace', APPS, 'pkc', name, '-o', 'json']))) as PikoCluster;
    expect(after.status?.replicas).toBe(1);
    const spec = await asOperator(['patch', '--namespace', APPS, 'pkc', name, '--type=merge', '-p', '{"spec":{"replicas":1}}']);
    expect(spec.code).not.toBe(0);
    expect(spec.stderr).toContain('forbidden');
    const del = await asOperator(['delete', '--namespace', APPS, 'pkc', name]);
    expect(del.stderr).toContain('forbidden');
  });

  it('lets the operator delete registry Leases and ConfigMaps left in any namespace', async () => {
    ok(await kubectl(['create', 'configmap', '--namespace', APPS, 'piko-registry-gone-0']));
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'piko-gone-0', namespace: APPS } };
    ok(await kubectl(['create', '-f', '-'], JSON.stringify(lease)));
    const listed = ok(await asOperator(['get', 'leases,configmaps', '--all-namespaces', '-o', 'name']));
    expect(listed).toContain('lease.coordination.k8s.io/piko-gone-0');
    ok(await asOperator(['delete', '--namespace', APPS, 'lease/piko-gone-0', 'configmap/piko-registry-gone-0']));
  });

  it('lets the operator record Events', async () => {
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `piko.${SUFFIX}`, namespace: APPS },
      involvedObject: { apiVersion: 'piko.dev/v1alpha1', kind: 'PikoCluster', name: 'piko', namespace: APPS },
      reason: 'InvalidPodLabels',
      message: 'spec.podLabels: test',
      type: 'Warning',
      source: { component: 'piko-operator' },
    };
    ok(await asOperator(['create', '-f', '-', '-o', 'name'], JSON.stringify(event)));
  });

  it('lets the operator create and renew its leader Lease in the release namespace only', async () => {
    const lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'piko-operator-leader', namespace: NAMESPACE },
      spec: { holderIdentity: 'piko-operator-0', leaseDurationSeconds: 15 },
    };
    ok(await asOperator(['create', '-f', '-', '-o', 'name'], JSON.stringify(lease)));
    const stored = JSON.parse(ok(await asOperator(['get', '--namespace', NAMESPACE, 'lease/piko-operator-leader', '-o', 'json']))) as {
      spec: { holderIdentity: string };
    };
    stored.spec.holderIdentity = 'piko-operator-1';
    // replace is a PUT: the update verb leader election renews with.
    ok(await asOperator(['replace', '-f', '-', '-o', 'name'], JSON.stringify(stored)));
    const elsewhere = await asOperator(['auth', 'can-i', 'update', 'leases.coordination.k8s.io', '--namespace', APPS]);
    expect(elsewhere.stdout.trim()).toBe('no');
  });

  it('prints NOTES whose PikoCluster command the API server accepts', async () => {
    const notes = ok(await helm(['get', 'notes', RELEASE, '--namespace', NAMESPACE]));
    const json = /echo '([^']+)' \|\s+kubectl -n (\S+) apply -f -/.exec(notes);
    expect(json?.[2]).toBe(NAMESPACE);
    const out = ok(await kubectl(['apply', '--dry-run=server', '--namespace', NAMESPACE, '-f', '-', '-o', 'json'], json![1]));
    expect((JSON.parse(out) as PikoCluster).spec.replicas).toBe(3);
  });

  it('admits a PikoCluster rendered from values', async () => {
    const rendered = ok(
      await helm([
        'template',
        RELEASE,
        CHART,
        '--namespace',
        APPS,
        '--show-only',
        'templates/pikocluster.yaml',
        '--set',
        'pikoCluster.enabled=true',
        '--set',
        'pikoCluster.spec.replicas=2',
        '--set',
        'pikoCluster.spec.services.proxy.type=LoadBalancer',
      ]),
    );
    const out = ok(await kubectl(['apply', '--dry-run=server', '-f', '-', '-o', 'json'], rendered));
    const stored = JSON.parse(out) as PikoCluster;
    expect(stored.metadata.name).toBe(RELEASE);
    expect(stored.spec.replicas).toBe(2);
    expect(stored.spec.services.proxy.type).toBe('LoadBalancer');
  });

  it('admits the agent sidecar example: a native sidecar init container', async () => {
    const out = ok(await kubectl(['apply', '--dry-run=server', '--namespace', APPS, '-f', path.join(EXAMPLES, 'agent-sidecar.yaml')]));
    expect(out).toContain('deployment.apps/my-service created (server dry run)');
    expect(out).toContain('configmap/my-service-piko-agent created (server dry run)');
  });

  it('admits the autoscaling example against the PikoCluster scale subresource', async () => {
    const name = examplePikoCluster(APPS).metadata.name;
    const hpa = parseYaml(fs.readFileSync(path.join(EXAMPLES, 'hpa.yaml'), 'utf8')) as {
      metadata: { namespace: string };
      spec: { scaleTargetRef: { name: string } };
    };
    hpa.metadata.namespace = APPS;
    hpa.spec.scaleTargetRef.name = name;
    const out = ok(await kubectl(['apply', '--dry-run=server', '-f', '-', '-o', 'json'], JSON.stringify(hpa)));
    expect((JSON.parse(out) as { spec: { scaleTargetRef: unknown } }).spec.scaleTargetRef).toEqual({
      apiVersion: 'piko.dev/v1alpha1',
      kind: 'PikoCluster',
      name,
    });
    // What the autoscaler reads and writes: the scale subresource of that PikoCluster.
    const scale = JSON.parse(
      ok(await kubectl(['get', '--raw', `/apis/piko.dev/v1alpha1/namespaces/${APPS}/pikoclusters/${name}/scale`])),
    ) as {
      kind: string;
      spec: { replicas: number };
    };
    expect(scale).toMatchObject({ kind: 'Scale', spec: { replicas: 3 } });
  });

  it('uninstalls, leaving the CRD (and so every PikoCluster) in place', async () => {
    ok(await helm(['uninstall', RELEASE, '--namespace', NAMESPACE]));
    expect((await kubectl(['get', `clusterrole/${OPERATOR}`])).stderr).toContain('NotFound');
    ok(await kubectl(['get', 'crd/pikoclusters.piko.dev']));
  });
});
