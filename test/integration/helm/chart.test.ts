/**
 * The Helm chart (helm/piko) through the real helm binary, the one build-control-plane.sh builds:
 * `helm lint`, values.schema.json, and the objects `helm template` renders, parsed and checked
 * field by field.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1Container,
  V1Deployment,
  V1MutatingWebhookConfiguration,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import { isMap, isScalar, parseAllDocuments, parseDocument, type YAMLMap } from 'yaml';
import { controlPlaneBinDir } from '../../k8s/control-plane';
import { CRD_YAML_PATH } from '../../../operator/api/crd-yaml';
import { runTool, type ToolResult } from './cli';
import { API_VERSION, KIND, pikoClusterSpecSchema, type PikoCluster } from '../../../operator/api/pikocluster';
import type { PikoClusterSpec } from '../../../operator/api/pikocluster-spec';
import { applyDefaults } from '../../../operator/api/schema-defaults';
import { buildChildren } from '../../../operator/builders/desired-children';
import {
  LEADER_ELECTION_RULES,
  OPERATOR_CLUSTER_ROLE_RULES,
  TOKEN_REVIEW_OPERATOR_RULES,
  webhookConfigurationRules,
  webhookSecretRules,
} from '../../../operator/operator-role';
import { buildRole } from '../../../operator/builders/dataplane-role';
import { chartFiles } from '../../../operator/scripts/sync-chart';
import { resourceFor } from '../../../dataplane/kube/client';
import { WRITE_VERBS, allowedClusterWrites, ownedResources, ruleGrants } from './rbac-expectations';
import { registryWritePolicy, registryWritePolicyBinding } from '../../../operator/admission/registry-write-policy';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CHART = path.join(ROOT, 'helm', 'piko');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const IMAGE = `ghcr.io/piko-k8s/piko:${VERSION}`;
const RELEASE = 'piko';
const NAMESPACE = 'piko-system';
// A cold build of the binaries compiles Kubernetes and Helm; a warm one takes a second.
const BUILD_TIMEOUT_MS = 90 * 60 * 1000;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

let helmBin: string;
let helmHome: string;

beforeAll(async () => {
  helmBin = path.join(await controlPlaneBinDir(), 'helm');
  helmHome = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-helm-'));
}, BUILD_TIMEOUT_MS);

afterAll(() => {
  if (helmHome !== undefined) fs.rmSync(helmHome, { recursive: true, force: true });
});

function helm(args: readonly string[]): Promise<ToolResult> {
  return runTool(helmBin, args, { home: helmHome });
}

function setArgs(values: Readonly<Record<string, string>>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
}

/** `helm template` of the chart, CRDs included, parsed into objects. */
async function render(values: Readonly<Record<string, string>> = {}): Promise<K8sObject[]> {
  const result = await helm(['template', RELEASE, CHART, '--namespace', NAMESPACE, '--include-crds', ...setArgs(values)]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const docs = parseAllDocuments(result.stdout);
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) expect(doc.errors).toEqual([]);
  return list.map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
}

function all<T>(objects: readonly K8sObject[], kind: string): (K8sObject & T)[] {
  return objects.filter((o) => o.kind === kind) as (K8sObject & T)[];
}

/** The sidecar injector's objects (templates/webhook.yaml), tested on their own below. */
const isWebhookPart = (o: K8sObject): boolean => o.metadata.name.startsWith(`${RELEASE}-operator-webhook`);

/** The one object of a kind, the webhook's own left aside. */
function one<T>(objects: readonly K8sObject[], kind: string): K8sObject & T {
  const found = all<T>(objects, kind).filter((o) => !isWebhookPart(o));
  expect(found.map((o) => o.metadata.name)).toHaveLength(1);
  return found[0]!;
}

function named<T>(objects: readonly K8sObject[], kind: string, name: string): K8sObject & T {
  const found = all<T>(objects, kind).filter((o) => o.metadata.name === name);
  expect(found).toHaveLength(1);
  return found[0]!;
}

function operatorContainer(objects: readonly K8sObject[]): V1Container {
  const deployment = one<V1Deployment>(objects, 'Deployment');
  const containers = deployment.spec!.template.spec!.containers;
  expect(containers.map((c) => c.name)).toEqual(['operator']);
  return containers[0]!;
}

/** The value following `flag` in args; undefined when the flag is absent. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** A PikoCluster as the API server stores one with an empty spec. */
function sampleCluster(): PikoCluster {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: 'piko', namespace: 'apps', uid: '00000000-0000-4000-8000-000000000000', generation: 1 },
    spec: applyDefaults(pikoClusterSpecSchema(), {}) as PikoClusterSpec,
  };
}

describe('helm lint', () => {
  it.each([
    ['default values', {}],
    ['a PikoCluster from values', { 'pikoCluster.enabled': 'true', 'pikoCluster.spec.replicas': '5' }],
    ['two replicas watching one namespace', { replicaCount: '2', 'operator.watchNamespaces': '{apps}' }],
  ])('is clean with %s', async (_name, values) => {
    const result = await helm(['lint', '--strict', CHART, '--namespace', NAMESPACE, ...setArgs(values)]);
    expect(result.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(result.stdout).toContain('0 chart(s) failed');
    expect(result.code).toBe(0);
  });
});

describe('the chart CRD', () => {
  it('is a byte-for-byte copy of the generated crds/pikocluster.yaml', () => {
    const generated = fs.readFileSync(path.join(ROOT, CRD_YAML_PATH));
    const inChart = fs.readFileSync(path.join(CHART, 'crds', 'pikocluster.yaml'));
    expect(inChart.equals(generated)).toBe(true);
  });

  it('is, with the ClusterRole rules, what operator/scripts/sync-chart.ts writes', () => {
    for (const file of chartFiles()) {
      expect([file.path, fs.readFileSync(path.join(ROOT, file.path), 'utf8')]).toEqual([file.path, file.content]);
    }
  });

  it("is installed from the chart's crds/ folder", async () => {
    const objects = await render();
    const crd = one<{ spec: { names: { shortNames: string[] } } }>(objects, 'CustomResourceDefinition');
    expect(crd.metadata.name).toBe('pikoclusters.piko.dev');
    expect(crd.spec.names.shortNames).toEqual(['pkc']);
  });
});

describe('helm template with default values', () => {
  let objects: K8sObject[];

  beforeAll(async () => {
    objects = await render();
  });

  it('renders the CRD, the operator, its ServiceAccount, RBAC and metrics Service, and nothing else', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        'ClusterRole/piko-operator',
        'ClusterRole/piko-operator-token-reviewer',
        'ClusterRole/piko-operator-webhook',
        'ClusterRoleBinding/piko-operator',
        'ClusterRoleBinding/piko-operator-webhook',
        'ConfigMap/piko-dashboard',
        'MutatingWebhookConfiguration/piko-operator',
        'Role/piko-operator-webhook',
        'RoleBinding/piko-operator-webhook',
        'Service/piko-operator-webhook',
        'CustomResourceDefinition/pikoclusters.piko.dev',
        'Deployment/piko-operator',
        'Role/piko-operator-leader-election',
        'RoleBinding/piko-operator-leader-election',
        'Service/piko-operator-metrics',
        'ServiceAccount/piko-operator',
        'ValidatingAdmissionPolicy/piko-registry-writes',
        'ValidatingAdmissionPolicyBinding/piko-registry-writes',
      ].sort(),
    );
    for (const o of objects) {
      const clusterScoped = [
        'CustomResourceDefinition',
        'ClusterRole',
        'ClusterRoleBinding',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
        'MutatingWebhookConfiguration',
      ].includes(o.kind);
      expect([o.kind, o.metadata.namespace]).toEqual([o.kind, clusterScoped ? undefined : NAMESPACE]);
    }
  });

  it('installs the registry write policy of operator/admission, bound to every namespace', () => {
    const policy = one<{ spec: unknown }>(objects, 'ValidatingAdmissionPolicy');
    expect(policy.spec).toEqual((registryWritePolicy(policy.metadata.name) as { spec: unknown }).spec);
    const binding = one<{ spec: unknown }>(objects, 'ValidatingAdmissionPolicyBinding');
    expect(binding.spec).toEqual((registryWritePolicyBinding(policy.metadata.name) as { spec: unknown }).spec);
  });

  it('gives the ClusterRole exactly the rules of operator/operator-role.ts', () => {
    const role = named<V1ClusterRole>(objects, 'ClusterRole', 'piko-operator');
    expect(ruleGrants(role.rules ?? [])).toEqual(ruleGrants(OPERATOR_CLUSTER_ROLE_RULES));
  });

  it('grants no cluster-wide write beyond what the operator does, and no wildcard', () => {
    const rules: V1PolicyRule[] = named<V1ClusterRole>(objects, 'ClusterRole', 'piko-operator').rules ?? [];
    for (const rule of rules) {
      expect([...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs]).not.toContain('*');
      expect(rule.nonResourceURLs).toBeUndefined();
    }
    const allowed = allowedClusterWrites();
    const writes = ruleGrants(rules).filter((g) => WRITE_VERBS.includes(g.split(' ')[0]!));
    expect(writes.filter((g) => !allowed.includes(g))).toEqual([]);
    // Never a PikoCluster's spec, nor pods.
    expect(writes.filter((g) => g.endsWith(' piko.dev/pikoclusters') || g.endsWith(' core/pods'))).toEqual([]);
  });

  it('grants what server-side apply and pruning need on every kind a PikoCluster owns', () => {
    const grants = ruleGrants(named<V1ClusterRole>(objects, 'ClusterRole', 'piko-operator').rules ?? []);
    // An apply that creates the object is authorised as a create as well as a patch.
    const applied = buildChildren(sampleCluster(), { defaultImage: IMAGE, clusterSecretValue: 'x'.repeat(64) }).apply.map((c) => {
      const type = resourceFor(c.apiVersion!, c.kind!)!;
      return `${type.group === '' ? 'core' : type.group}/${type.plural}`;
    });
    const needed = [
      ...ownedResources().flatMap((r) => ['list', 'watch', 'create', 'delete'].map((v) => `${v} ${r}`)),
      ...applied.map((r) => `patch ${r}`),
    ];
    expect(needed.filter((g) => !grants.includes(g))).toEqual([]);
  });

  it('holds every verb of the registry Role the operator creates, as RBAC requires of its creator', () => {
    const grants = ruleGrants(named<V1ClusterRole>(objects, 'ClusterRole', 'piko-operator').rules ?? []);
    const registry = ruleGrants(buildRole(sampleCluster()).rules ?? []);
    expect(registry.filter((g) => !grants.includes(g))).toEqual([]);
  });

  it('installs the ClusterRole the operator binds to data planes that review ServiceAccount tokens: create on tokenreviews, nothing else', () => {
    const reviewer = named<V1ClusterRole>(objects, 'ClusterRole', 'piko-operator-token-reviewer');
    expect(ruleGrants(reviewer.rules ?? [])).toEqual(['create authentication.k8s.io/tokenreviews']);
  });

  it('binds the ClusterRole cluster-wide to the operator ServiceAccount', () => {
    const sa = one<V1ServiceAccount>(objects, 'ServiceAccount');
    const binding = one<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding');
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: named<V1ClusterRole>(objects, 'ClusterRole', 'piko-operator').metadata.name,
    });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE }]);
  });

  it('lets the operator hold its leader Lease in the release namespace only', () => {
    const role = one<V1Role>(objects, 'Role');
    expect(role.metadata.namespace).toBe(NAMESPACE);
    // The same rules as operator/operator-role.ts's LEADER_ELECTION_RULES, which the operator's tests run with.
    expect(role.rules).toEqual(LEADER_ELECTION_RULES.map((r) => ({ ...r })));
    const binding = one<V1RoleBinding>(objects, 'RoleBinding');
    expect(binding.metadata.namespace).toBe(NAMESPACE);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: one<V1ServiceAccount>(objects, 'ServiceAccount').metadata.name, namespace: NAMESPACE },
    ]);
  });

  it('runs `piko operator` from the image with leader election and its listen addresses', () => {
    const container = operatorContainer(objects);
    expect(container.image).toBe(IMAGE);
    expect(container.imagePullPolicy).toBe('IfNotPresent');
    const args = container.args ?? [];
    expect(args[0]).toBe('operator');
    expect(args).toContain('--leader-elect');
    expect(flagValue(args, '--leader-election-namespace')).toBe(NAMESPACE);
    expect(flagValue(args, '--metrics-bind-addr')).toBe(':8080');
    expect(flagValue(args, '--health-bind-addr')).toBe(':8081');
    expect(flagValue(args, '--default-image')).toBe(IMAGE);
    expect(flagValue(args, '--log.level')).toBe('info');
    expect(flagValue(args, '--token-reviewer-cluster-role')).toBe('piko-operator-token-reviewer');
    expect(args).not.toContain('--namespace');
    expect(container.ports).toEqual([
      { name: 'metrics', containerPort: 8080, protocol: 'TCP' },
      { name: 'health', containerPort: 8081, protocol: 'TCP' },
      { name: 'webhook', containerPort: 9443, protocol: 'TCP' },
    ]);
  });

  it('reads its namespace from the downward API', () => {
    const env = operatorContainer(objects).env ?? [];
    expect(env.find((e) => e.name === 'POD_NAMESPACE')).toEqual({
      name: 'POD_NAMESPACE',
      valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    expect(env.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
  });

  it('probes /healthz for liveness and /readyz for readiness on the health port', () => {
    const container = operatorContainer(objects);
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
  });

  it('runs as non-root on a read-only root filesystem with no capabilities', () => {
    const pod = one<V1Deployment>(objects, 'Deployment').spec!.template.spec!;
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(operatorContainer(objects).securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.serviceAccountName).toBe(one<V1ServiceAccount>(objects, 'ServiceAccount').metadata.name);
  });

  it('sets resource requests and a memory limit', () => {
    expect(operatorContainer(objects).resources).toEqual({
      requests: { cpu: '50m', memory: '128Mi' },
      limits: { memory: '256Mi' },
    });
  });

  it('selects the operator pods, and never data-plane pods, from the Deployment and metrics Service', () => {
    const deployment = one<V1Deployment>(objects, 'Deployment');
    const selector = deployment.spec!.selector.matchLabels!;
    expect(selector).toEqual({
      'app.kubernetes.io/name': 'piko',
      'app.kubernetes.io/instance': RELEASE,
      'app.kubernetes.io/component': 'operator',
    });
    expect(deployment.spec!.template.metadata!.labels).toMatchObject(selector);
    const service = one<V1Service>(objects, 'Service');
    expect(service.spec!.selector).toEqual(selector);
    expect(service.spec!.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
    // A PikoCluster named like the release labels its pods component=dataplane (operator/builders/names.ts).
    expect(selector['app.kubernetes.io/component']).not.toBe('dataplane');
  });

  it('runs one replica', () => {
    expect(one<V1Deployment>(objects, 'Deployment').spec!.replicas).toBe(1);
  });
});

describe('helm template with other values', () => {
  it('creates a PikoCluster in the release namespace with the spec passed through', async () => {
    const objects = await render({
      'pikoCluster.enabled': 'true',
      'pikoCluster.spec.replicas': '5',
      'pikoCluster.spec.services.proxy.type': 'LoadBalancer',
    });
    const cluster = one<{ spec: unknown }>(objects, 'PikoCluster');
    expect(cluster.apiVersion).toBe('piko.dev/v1alpha1');
    expect(cluster.metadata).toMatchObject({ name: RELEASE, namespace: NAMESPACE });
    expect(cluster.spec).toEqual({ replicas: 5, services: { proxy: { type: 'LoadBalancer' } } });
  });

  it('creates a PikoCluster with an empty spec, and a given name, when only enabled', async () => {
    const objects = await render({ 'pikoCluster.enabled': 'true', 'pikoCluster.name': 'edge' });
    const cluster = one<{ spec: unknown }>(objects, 'PikoCluster');
    expect(cluster.metadata.name).toBe('edge');
    expect(cluster.spec).toEqual({});
  });

  it('runs two replicas with leader election', async () => {
    const objects = await render({ replicaCount: '2' });
    expect(one<V1Deployment>(objects, 'Deployment').spec!.replicas).toBe(2);
    expect(operatorContainer(objects).args).toContain('--leader-elect');
  });

  it('refuses two replicas without leader election', async () => {
    const result = await helm(['template', RELEASE, CHART, ...setArgs({ replicaCount: '2', 'operator.leaderElection.enabled': 'false' })]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('needs operator.leaderElection.enabled');
  });

  it('drops the leader-election flags and Role when leader election is off', async () => {
    const objects = await render({ 'operator.leaderElection.enabled': 'false' });
    const args = operatorContainer(objects).args ?? [];
    expect(args).not.toContain('--leader-elect');
    expect(args).not.toContain('--leader-election-namespace');
    expect(all(objects, 'Role').filter((o) => !isWebhookPart(o))).toEqual([]);
  });

  it('watches a list of namespaces with a RoleBinding of the ClusterRole in each instead of a ClusterRoleBinding', async () => {
    const objects = await render({ 'operator.watchNamespaces': '{apps,tunnels}' });
    expect(flagValue(operatorContainer(objects).args ?? [], '--namespace')).toBe('apps,tunnels');
    // Only the cluster-scoped rules (token-review bindings), which no RoleBinding can grant, are bound cluster-wide.
    const clusterWide = all<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding');
    expect(clusterWide.filter((b) => !isWebhookPart(b)).map((b) => b.roleRef.name)).toEqual(['piko-operator-token-review']);
    expect(ruleGrants(named<V1ClusterRole>(objects, 'ClusterRole', 'piko-operator-token-review').rules ?? [])).toEqual(
      ruleGrants(TOKEN_REVIEW_OPERATOR_RULES),
    );
    const bindings = all<V1RoleBinding>(objects, 'RoleBinding');
    const scoped = bindings.filter((b) => b.roleRef.kind === 'ClusterRole');
    expect(scoped.map((b) => b.metadata.namespace)).toEqual(['apps', 'tunnels']);
    for (const binding of scoped) {
      expect(binding.roleRef.name).toBe('piko-operator');
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'piko-operator', namespace: NAMESPACE }]);
    }
    // The leader Lease stays in the release namespace.
    expect(bindings.find((b) => b.roleRef.kind === 'Role')?.metadata.namespace).toBe(NAMESPACE);
  });

  it('refuses a PikoCluster from values in a namespace the operator would not watch', async () => {
    const result = await helm([
      'template',
      RELEASE,
      CHART,
      '--namespace',
      NAMESPACE,
      ...setArgs({ 'operator.watchNamespaces': '{apps}', 'pikoCluster.enabled': 'true' }),
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('never reconciles');
  });

  it('passes scheduling, pod labels and annotations through to the operator pods', async () => {
    const objects = await render({
      'nodeSelector.pool': 'system',
      'tolerations[0].key': 'dedicated',
      'tolerations[0].operator': 'Exists',
      'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key': 'zone',
      'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator': 'Exists',
      priorityClassName: 'system-cluster-critical',
      'podLabels.team': 'edge',
      'podLabels.app\\.kubernetes\\.io/component': 'overridden',
      'podAnnotations.example\\.com/note': 'hello',
    });
    const pod = one<V1Deployment>(objects, 'Deployment').spec!.template;
    expect(pod.spec!.nodeSelector).toEqual({ pool: 'system' });
    expect(pod.spec!.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists' }]);
    expect(pod.spec!.affinity).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }],
        },
      },
    });
    expect(pod.spec!.priorityClassName).toBe('system-cluster-critical');
    // Extra labels are added, but never replace the selector's.
    expect(pod.metadata!.labels).toMatchObject({ team: 'edge', 'app.kubernetes.io/component': 'operator' });
    expect(pod.metadata!.annotations).toEqual({ 'example.com/note': 'hello' });
  });

  it('pins the image by digest and uses a separate default data-plane image', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const objects = await render({
      'image.digest': digest,
      'operator.defaultImage': 'mirror.example.com/piko:1.2.3',
      'operator.logLevel': 'debug',
    });
    const container = operatorContainer(objects);
    expect(container.image).toBe(`ghcr.io/piko-k8s/piko@${digest}`);
    expect(flagValue(container.args ?? [], '--default-image')).toBe('mirror.example.com/piko:1.2.3');
    expect(flagValue(container.args ?? [], '--log.level')).toBe('debug');
  });

  it('adds a ServiceMonitor on the metrics Service behind a flag', async () => {
    const objects = await render({ 'metrics.serviceMonitor.enabled': 'true', 'metrics.serviceMonitor.labels.release': 'prom' });
    const monitor = one<{ spec: { selector: { matchLabels: Record<string, string> }; endpoints: unknown[] } }>(objects, 'ServiceMonitor');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.metadata.labels).toMatchObject({ release: 'prom', 'app.kubernetes.io/component': 'operator' });
    const service = one<V1Service>(objects, 'Service');
    expect(monitor.spec.selector.matchLabels).toEqual(service.spec!.selector);
    expect(monitor.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }]);
  });

  it('leaves out the ServiceAccount and RBAC when told to', async () => {
    const objects = await render({
      'serviceAccount.create': 'false',
      'serviceAccount.name': 'mine',
      'rbac.create': 'false',
      'rbac.registryWritePolicy': 'false',
    });
    expect(objects.map((o) => o.kind).sort()).toEqual([
      'ConfigMap',
      'CustomResourceDefinition',
      'Deployment',
      'MutatingWebhookConfiguration',
      'Service',
      'Service',
    ]);
    expect(one<V1Deployment>(objects, 'Deployment').spec!.template.spec!.serviceAccountName).toBe('mine');
  });

  it('installs the sidecar injector: its Service, a webhook scoped to labelled namespaces (never its own), and grants on its configuration and Secret only', async () => {
    const objects = await render();
    const config = one<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
    expect(config.metadata.name).toBe('piko-operator');
    const [hook] = config.webhooks ?? [];
    expect(hook).toMatchObject({
      name: 'inject.piko.dev',
      failurePolicy: 'Fail',
      timeoutSeconds: 5,
      reinvocationPolicy: 'IfNeeded',
      sideEffects: 'None',
      clientConfig: { service: { name: 'piko-operator-webhook', namespace: NAMESPACE, path: '/mutate-pods', port: 443 } },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
    });
    expect(hook!.clientConfig.caBundle).toBeUndefined();
    expect(hook!.namespaceSelector?.matchExpressions).toEqual([
      { key: 'piko.dev/injection', operator: 'In', values: ['enabled'] },
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NAMESPACE] },
    ]);
    expect(hook!.objectSelector?.matchExpressions).toEqual([{ key: 'piko.dev/injection', operator: 'NotIn', values: ['disabled'] }]);
    const service = named<V1Service>(objects, 'Service', 'piko-operator-webhook');
    expect(service.spec?.ports).toEqual([{ name: 'webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
    expect(service.spec?.selector).toEqual(one<V1Deployment>(objects, 'Deployment').spec!.selector.matchLabels);
    expect(named<V1ClusterRole>(objects, 'ClusterRole', 'piko-operator-webhook').rules).toEqual(webhookConfigurationRules('piko-operator'));
    expect(named<V1Role>(objects, 'Role', 'piko-operator-webhook').rules).toEqual(webhookSecretRules('piko-operator-webhook-tls'));
    const args = operatorContainer(objects).args ?? [];
    expect(flagValue(args, '--webhook.bind-addr')).toBe(':9443');
    expect(flagValue(args, '--webhook.configuration')).toBe('piko-operator');
    expect(flagValue(args, '--webhook.service')).toBe('piko-operator-webhook');
    expect(flagValue(args, '--webhook.secret')).toBe('piko-operator-webhook-tls');
    expect(args).not.toContain('--webhook.cert-dir');
  });

  it('hands the webhook certificate to cert-manager when asked, with a self-signed Issuer by default', async () => {
    const objects = await render({ 'webhook.certManager.enabled': 'true' });
    const config = one<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
    expect(config.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${NAMESPACE}/piko-operator-webhook` });
    const cert = named<{ spec: { secretName: string; dnsNames: string[]; issuerRef: unknown } }>(
      objects,
      'Certificate',
      'piko-operator-webhook',
    );
    expect(cert.spec.dnsNames).toEqual([`piko-operator-webhook.${NAMESPACE}.svc`, `piko-operator-webhook.${NAMESPACE}.svc.cluster.local`]);
    expect(cert.spec.issuerRef).toEqual({ name: 'piko-operator-webhook', kind: 'Issuer' });
    expect(named<{ spec: unknown }>(objects, 'Issuer', 'piko-operator-webhook').spec).toEqual({ selfSigned: {} });
    expect(flagValue(operatorContainer(objects).args ?? [], '--webhook.cert-dir')).toBe('/etc/piko-webhook');
    expect(one<V1Deployment>(objects, 'Deployment').spec!.template.spec!.volumes).toEqual([
      { name: 'webhook-cert', secret: { secretName: cert.spec.secretName } },
    ]);
    expect(all(objects, 'Role').filter(isWebhookPart)).toEqual([]);
    expect(all(objects, 'Secret')).toEqual([]);
    const issued = await render({
      'webhook.certManager.enabled': 'true',
      'webhook.certManager.issuerRef.name': 'corp-ca',
      'webhook.certManager.issuerRef.kind': 'ClusterIssuer',
    });
    expect(all(issued, 'Issuer')).toEqual([]);
    expect(named<{ spec: { issuerRef: unknown } }>(issued, 'Certificate', 'piko-operator-webhook').spec.issuerRef).toEqual({
      name: 'corp-ca',
      kind: 'ClusterIssuer',
    });
  });

  it("ships the dashboard for Grafana's sidecar, and the alerts as a PrometheusRule when asked", async () => {
    const objects = await render();
    const dashboard = named<{ metadata: { labels: Record<string, string> }; data: Record<string, string> }>(
      objects,
      'ConfigMap',
      'piko-dashboard',
    );
    expect(dashboard.metadata.labels['grafana_dashboard']).toBe('1');
    const file = fs.readFileSync(path.join(CHART, 'files', 'dashboard.json'), 'utf8');
    expect(JSON.parse(dashboard.data['piko.json']!)).toEqual(JSON.parse(file));
    expect(all(objects, 'PrometheusRule')).toEqual([]);
    const withRules = await render({ 'monitoring.prometheusRule.enabled': 'true', 'monitoring.prometheusRule.labels.release': 'kps' });
    const rule = one<{ metadata: { labels: Record<string, string> }; spec: { groups: { rules: { alert: string; expr: string }[] }[] } }>(
      withRules,
      'PrometheusRule',
    );
    expect(rule.metadata.labels['release']).toBe('kps');
    expect(rule.spec.groups[0]!.rules.map((r) => r.alert)).toEqual([
      'PikoClusterNoReadyPods',
      'PikoPodLeaseExpired',
      'PikoRegistryWritesFailing',
      'PikoProxyErrorRate',
    ]);
    // Prometheus' own templates survive Helm untouched.
    expect(JSON.stringify(rule.spec)).toContain('{{ $labels.namespace }}');
  });

  it('leaves the webhook out when disabled', async () => {
    const objects = await render({ 'webhook.enabled': 'false' });
    expect(objects.filter((o) => isWebhookPart(o) || o.kind === 'MutatingWebhookConfiguration')).toEqual([]);
    expect((operatorContainer(objects).args ?? []).some((a) => a.startsWith('--webhook'))).toBe(false);
  });
});

describe('values.yaml', () => {
  interface SchemaNode {
    type?: string | string[];
    description?: string;
    properties?: Record<string, SchemaNode>;
  }
  const doc = parseDocument(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
  const schema = JSON.parse(fs.readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;

  /** Each key of values.yaml with its path, whether a comment precedes or follows it, and its schema node. */
  function keys(): { path: string; commented: boolean; schema: SchemaNode | undefined; within: boolean }[] {
    const out: { path: string; commented: boolean; schema: SchemaNode | undefined; within: boolean }[] = [];
    const walk = (map: YAMLMap, prefix: string, parent: SchemaNode | undefined, within: boolean): void => {
      map.items.forEach((pair, i) => {
        const key = pair.key as { value: unknown; commentBefore?: string | null };
        const keyPath = prefix === '' ? String(key.value) : `${prefix}.${String(key.value)}`;
        // A comment above the first key of a map belongs to the map (or, at the top, the document).
        const above = key.commentBefore ?? (i === 0 ? (map.commentBefore ?? (prefix === '' ? doc.commentBefore : null)) : null);
        const inline = isScalar(pair.value) ? pair.value.comment : null;
        const node = parent?.properties?.[String(key.value)];
        out.push({ path: keyPath, commented: Boolean(above ?? inline), schema: node, within });
        // Below a free-form object (podSecurityContext, resources.requests) the schema has no properties.
        if (isMap(pair.value)) walk(pair.value, keyPath, node, within && node?.properties !== undefined);
      });
    };
    walk(doc.contents as YAMLMap, '', schema, true);
    return out;
  }

  it('comments every value', () => {
    expect(
      keys()
        .filter((k) => !k.commented)
        .map((k) => k.path),
    ).toEqual([]);
  });

  it('has every value described in values.schema.json', () => {
    const undescribed = keys()
      .filter((k) => k.within && (k.schema === undefined || k.schema.description === undefined))
      .map((k) => k.path);
    expect(undescribed).toEqual([]);
  });
});

describe('values.schema.json', () => {
  it.each([
    ['a replicaCount that is not a number', { replicaCount: 'x' }, '/replicaCount'],
    ['an unknown pull policy', { 'image.pullPolicy': 'Sometimes' }, '/image/pullPolicy'],
    ['an unknown log level', { 'operator.logLevel': 'verbose' }, '/operator/logLevel'],
    ['a port out of range', { 'operator.metricsPort': '70000' }, '/operator/metricsPort'],
    ['an invalid PikoCluster name', { 'pikoCluster.name': 'Not_Valid' }, '/pikoCluster/name'],
    ['a misspelt key', { replicas: '2' }, 'replicas'],
  ])('rejects %s', async (_name, values, where) => {
    const result = await helm(['template', RELEASE, CHART, ...setArgs(values)]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
    expect(result.stderr).toContain(where);
  });

  it('rejects a wrong type given as a string with --set-string', async () => {
    const result = await helm(['template', RELEASE, CHART, '--set-string', 'replicaCount=2']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('/replicaCount');
  });
});

describe('NOTES.txt', () => {
  async function notes(values: Readonly<Record<string, string>>): Promise<string> {
    const result = await helm(['install', RELEASE, CHART, '--dry-run=client', '--namespace', NAMESPACE, ...setArgs(values)]);
    expect(result.code).toBe(0);
    const at = result.stdout.indexOf('NOTES:');
    expect(at).toBeGreaterThanOrEqual(0);
    return result.stdout.slice(at);
  }

  it('tells the user to create a PikoCluster, reach the proxy and run an agent', async () => {
    const text = await notes({});
    expect(text).toContain('"kind": "PikoCluster"');
    expect(text).toContain(`kubectl -n ${NAMESPACE} apply -f -`);
    expect(text).toContain(`kubectl -n ${NAMESPACE} get pkc piko`);
    expect(text).toContain(`kubectl -n ${NAMESPACE} port-forward svc/piko-proxy 8000:8000`);
    expect(text).toContain(`http://piko-upstream.${NAMESPACE}.svc:8001`);
    expect(text).toContain('docs/agent-sidecar.md');
  });

  it('creates the PikoCluster in the first watched namespace when the operator watches a list', async () => {
    const text = await notes({ 'operator.watchNamespaces': '{apps,tunnels}' });
    expect(text).toContain('watches PikoClusters in apps, tunnels only');
    expect(text).toContain('kubectl -n apps apply -f -');
    expect(text).toContain('kubectl -n apps get pkc piko');
  });

  it('names the PikoCluster, its proxy Service and its upstream URL when the release created one', async () => {
    const text = await notes({ 'pikoCluster.enabled': 'true', 'pikoCluster.spec.services.upstream.port': '443' });
    expect(text).toContain(`kubectl -n ${NAMESPACE} get pkc piko`);
    expect(text).toContain('port-forward svc/piko-proxy 8000:8000');
    expect(text).toContain(`http://piko-upstream.${NAMESPACE}.svc:443`);
  });
});
