/**
 * The sidecar injector behind a real kube-apiserver: `piko operator` serves the webhook with the
 * certificates it keeps in its Secret, the apiserver calls it for pods of labelled namespaces
 * (as the chart's MutatingWebhookConfiguration scopes it, but by URL on loopback: there is no
 * Service without a node), and what is stored is what the injector decided.
 */
import * as net from 'node:net';
import { Registry } from 'prom-client';
import { API_VERSION, KIND } from '../../../operator/api/pikocluster';
import type { PikoClusterSpecInput } from '../../../operator/api/pikocluster-spec';
import { loadOperatorConfig } from '../../../operator/operator-config';
import { runOperator } from '../../../operator/run-operator';
import { webhookConfigurationRules, webhookSecretRules } from '../../../operator/operator-role';
import { SidecarInjector } from '../../../operator/webhook/sidecar-injector';
import { MUTATE_PODS_PATH } from '../../../operator/webhook/admission-server';
import { MUTATING_WEBHOOK_CONFIGURATIONS } from '../../../operator/webhook/webhook-tls';
import { dueForRenewal } from '../../../operator/webhook/webhook-certificates';
import { ClientNodeKubeClient, loadKubeConfig } from '../../../dataplane/kube/client-node';
import { KubeApiError } from '../../../dataplane/kube/errors';
import { RESOURCES, type KubeObject, type ResourceType } from '../../../dataplane/kube/client';
import type { ControlPlane } from '../../k8s/control-plane';
import { grantOperator, newNamespace, startOperatorControlPlane, testLogger, waitFor } from './harness';
import { FIELD_MANAGER } from '../../../operator/field-manager';

const START_TIMEOUT_MS = 60 * 60 * 1000;
const OPERATOR_NAMESPACE = 'piko-system';
const CONFIGURATION = 'piko-operator';
const CLUSTER_ROLES: ResourceType = { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', plural: 'clusterroles' };
const DEPLOYMENTS: ResourceType = { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments' };
const NAMESPACES: ResourceType = { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces' };

type Pod = KubeObject & {
  spec: {
    serviceAccountName?: string;
    initContainers?: { name: string; restartPolicy?: string; args?: string[]; image?: string }[];
    containers: { name: string; image: string }[];
    volumes?: { name: string; projected?: { sources: { serviceAccountToken?: { audience: string } }[] }; downwardAPI?: unknown }[];
  };
};

let cp: ControlPlane;
let admin: ClientNodeKubeClient;
let operatorKc: string;
let stopOperator: (() => void) | undefined;
let operatorDone: Promise<void> | undefined;
let shop: string;

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The chart's webhook, reached by URL: pods of labelled namespaces, Fail when unreachable. */
function webhookConfiguration(name: string, port: number): KubeObject {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'inject.piko.dev',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
        reinvocationPolicy: 'IfNeeded',
        clientConfig: { url: `https://localhost:${port}${MUTATE_PODS_PATH}` },
        namespaceSelector: { matchLabels: { 'piko.dev/injection': 'enabled' } },
        objectSelector: { matchExpressions: [{ key: 'piko.dev/injection', operator: 'NotIn', values: ['disabled'] }] },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
      },
    ],
  } as KubeObject;
}

function pod(namespace: string, name: string, annotations: Record<string, string>, serviceAccountName = 'web'): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, annotations },
    spec: { serviceAccountName, containers: [{ name: 'app', image: 'app:1' }] },
  } as Pod;
}

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KubeApiError) return err.message;
    throw err;
  }
  throw new Error('expected the apiserver to refuse the pod');
}

const splitPem = (bundle: string): string[] => bundle.match(/-----BEGIN CERTIFICATE-----/g) ?? [];

const ANNOTATED = { 'piko.dev/cluster': 'edge/piko', 'piko.dev/listeners': 'web=8080,db=5432/tcp' };

beforeAll(async () => {
  ({ cp, admin, operatorKc } = await startOperatorControlPlane(OPERATOR_NAMESPACE));
  // The webhook's own grants, as the chart's templates/webhook.yaml gives them.
  await grantOperator(admin, OPERATOR_NAMESPACE, 'piko-operator-webhook', webhookConfigurationRules(CONFIGURATION));
  await grantOperator(
    admin,
    OPERATOR_NAMESPACE,
    'piko-operator-webhook',
    [...webhookSecretRules('piko-operator-webhook-tls'), ...webhookSecretRules('rotation-webhook-tls')],
    OPERATOR_NAMESPACE,
  );

  const port = await freePort();
  await admin.create(MUTATING_WEBHOOK_CONFIGURATIONS, webhookConfiguration(CONFIGURATION, port));
  await admin.create(NAMESPACES, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'edge' },
  } as KubeObject);
  const spec: PikoClusterSpecInput = {
    replicas: 1,
    auth: { upstream: { serviceAccounts: [{ namespace: 'shop', name: 'web', endpoints: ['web', 'db'] }] } },
  };
  await admin.create(RESOURCES.pikoClusters, {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: 'piko', namespace: 'edge' },
    spec,
  } as KubeObject);

  shop = 'shop';
  await admin.create(NAMESPACES, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: shop, labels: { 'piko.dev/injection': 'enabled' } },
  } as KubeObject);
  for (const sa of ['web', 'batch']) {
    await admin.create(RESOURCES.serviceAccounts, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: shop } });
  }

  const config = loadOperatorConfig({
    version: '0.0.0-test',
    env: {},
    flags: {
      kubeconfig: operatorKc,
      leader_elect: false,
      leader_election_namespace: OPERATOR_NAMESPACE,
      metrics_bind_addr: '0',
      health_bind_addr: '127.0.0.1:0',
      default_image: 'ghcr.io/piko-k8s/piko:0.0.0-test',
      'webhook.bind_addr': `127.0.0.1:${port}`,
      'webhook.service': 'localhost',
      'webhook.configuration': CONFIGURATION,
    },
  });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  stopOperator = stop;
  const listening = new Promise<void>((resolve) => {
    operatorDone = runOperator(config, { logger: testLogger('webhook'), stopSignal: stopped, onListening: () => resolve() });
  });
  await listening;
  // The apiserver trusts the webhook once the operator has published its CA: a dry-run pod says when.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await admin.create(RESOURCES.pods, pod(shop, 'probe', ANNOTATED), { dryRun: true });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}, START_TIMEOUT_MS);

afterAll(async () => {
  stopOperator?.();
  await operatorDone;
  await admin?.close();
  await cp?.stop();
});

describe('sidecar injection through the apiserver', () => {
  it('stores an annotated pod with the agent as a native sidecar and a projected token for the cluster', async () => {
    const created = await admin.create<Pod>(RESOURCES.pods, pod(shop, 'web-1', ANNOTATED));
    const agent = created.spec.initContainers?.find((c) => c.name === 'piko-agent');
    expect(agent).toMatchObject({ restartPolicy: 'Always', image: 'ghcr.io/piko-k8s/piko:0.0.0-test' });
    expect(agent?.args).toContain('--connect.url=http://piko-upstream.edge.svc:8001');
    expect(agent?.args).toContain('--listen=web=8080/http,db=5432/tcp');
    const token = created.spec.volumes?.find((v) => v.name === 'piko-agent-token');
    expect(token?.projected?.sources[0]?.serviceAccountToken?.audience).toBe('piko.dev/edge/piko');
  });

  it('refuses bad annotations, and an endpoint the ServiceAccount may not serve, with the message', async () => {
    expect(
      await rejection(admin.create(RESOURCES.pods, pod(shop, 'bad-port', { ...ANNOTATED, 'piko.dev/listeners': 'web=99999' }))),
    ).toContain('piko.dev/listeners: "web=99999": port 99999 is out of range (1-65535)');
    expect(
      await rejection(admin.create(RESOURCES.pods, pod(shop, 'no-cluster', { ...ANNOTATED, 'piko.dev/cluster': 'edge/nope' }))),
    ).toContain('piko.dev/cluster: PikoCluster edge/nope not found');
    expect(await rejection(admin.create(RESOURCES.pods, pod(shop, 'other-sa', ANNOTATED, 'batch')))).toContain(
      'ServiceAccount shop/batch may not listen on endpoint "web" of PikoCluster edge/piko',
    );
  });

  it("gives agents of a TLS cluster its CA from status, through the pod's own annotation, and follows a renewed one", async () => {
    const pem = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    await admin.create(RESOURCES.secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: 'secure-upstream-tls', namespace: 'edge' },
      data: { 'tls.crt': b64(pem('U0VSVkVS')), 'tls.key': b64('key'), 'ca.crt': b64(pem('Q0EtMQ==')) },
    } as KubeObject);
    await admin.create(RESOURCES.pikoClusters, {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: 'secure', namespace: 'edge' },
      spec: {
        replicas: 1,
        tls: { upstream: { secretName: 'secure-upstream-tls' } },
        auth: { upstream: { serviceAccounts: [{ namespace: 'shop', name: 'web', endpoints: ['web'] }] } },
      } satisfies PikoClusterSpecInput,
    } as KubeObject);
    type Secure = KubeObject & { status?: { upstreamCA?: string } };
    await waitFor<Secure>(
      admin,
      RESOURCES.pikoClusters,
      'edge',
      'secure',
      (c) => c?.status?.upstreamCA === pem('Q0EtMQ=='),
      'status.upstreamCA',
    );

    const annotations = { 'piko.dev/cluster': 'edge/secure', 'piko.dev/listeners': 'web=8080' };
    const created = await admin.create<Pod>(RESOURCES.pods, pod(shop, 'secure-1', annotations));
    expect(created.metadata?.annotations?.['piko.dev/upstream-ca']).toBe(pem('Q0EtMQ=='));
    const agent = created.spec.initContainers?.find((c) => c.name === 'piko-agent');
    expect(agent?.args).toContain('--connect.url=https://secure-upstream.edge.svc:8001');
    expect(agent?.args).toContain('--connect.tls.root-cas=/var/run/secrets/piko.dev/upstream-ca/ca.crt');
    // The apiserver took the downward API item that turns the annotation into the file.
    expect(created.spec.volumes?.find((v) => v.name === 'piko-agent-ca')?.downwardAPI).toMatchObject({
      items: [{ path: 'ca.crt', fieldRef: { fieldPath: "metadata.annotations['piko.dev/upstream-ca']" } }],
    });

    // cert-manager renews into the same Secret: status follows, and so does the next pod.
    const secret = await admin.get<KubeObject & { data: Record<string, string> }>(RESOURCES.secrets, 'edge', 'secure-upstream-tls');
    secret.data['ca.crt'] = b64(pem('Q0EtMg=='));
    await admin.update(RESOURCES.secrets, secret);
    await waitFor<Secure>(
      admin,
      RESOURCES.pikoClusters,
      'edge',
      'secure',
      (c) => c?.status?.upstreamCA === pem('Q0EtMg=='),
      'the renewed CA',
    );
    const next = await admin.create<Pod>(RESOURCES.pods, pod(shop, 'secure-2', annotations));
    expect(next.metadata?.annotations?.['piko.dev/upstream-ca']).toBe(pem('Q0EtMg=='));
  });

  it('leaves an unlabelled namespace and an opted-out pod untouched', async () => {
    const plain = await newNamespace(admin, 'plain');
    const untouched = await admin.create<Pod>(RESOURCES.pods, pod(plain, 'p', ANNOTATED, 'default'));
    expect(untouched.spec.initContainers ?? []).toEqual([]);
    const optedOut = {
      ...pod(shop, 'opted-out', ANNOTATED),
      metadata: { name: 'opted-out', namespace: shop, annotations: ANNOTATED, labels: { 'piko.dev/injection': 'disabled' } },
    };
    const stored = await admin.create<Pod>(RESOURCES.pods, optedOut as Pod);
    expect(stored.spec.initContainers ?? []).toEqual([]);
  });

  it('injects once into the pods of a Deployment, across kubectl rollout restart', async () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shopfront', namespace: shop },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'shopfront' } },
        template: {
          metadata: { labels: { app: 'shopfront' }, annotations: { ...ANNOTATED } as Record<string, string> },
          spec: { serviceAccountName: 'web', containers: [{ name: 'app', image: 'app:1' }] },
        },
      },
    };
    await admin.create(DEPLOYMENTS, deployment as KubeObject);
    const podsOf = async (): Promise<Pod[]> =>
      (await admin.list<Pod>(RESOURCES.pods, { namespace: shop, labelSelector: 'app=shopfront' })).items;
    const waitPods = async (predicate: (pods: Pod[]) => boolean, what: string): Promise<Pod[]> => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const pods = await podsOf();
        if (predicate(pods)) return pods;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${pods.map((p) => p.metadata?.name).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    const first = await waitPods((p) => p.length === 1, 'the first pod');
    expect(first[0]!.spec.initContainers!.filter((c) => c.name === 'piko-agent')).toHaveLength(1);
    // kubectl rollout restart: a template annotation, so a new ReplicaSet and new pods.
    const live = await admin.get<KubeObject & { spec: typeof deployment.spec }>(DEPLOYMENTS, shop, 'shopfront');
    live.spec.template.metadata.annotations = { ...ANNOTATED, 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() };
    await admin.update(DEPLOYMENTS, live);
    const names = new Set(first.map((p) => p.metadata?.name));
    const after = await waitPods((p) => p.some((x) => !names.has(x.metadata?.name)), 'a restarted pod');
    for (const p of after) expect(p.spec.initContainers!.filter((c) => c.name === 'piko-agent')).toHaveLength(1);
  });
});

describe('webhook certificate rotation', () => {
  it('renews the serving certificate and rotates the CA without a failed admission', async () => {
    const port = await freePort();
    const configuration = 'rotation-test';
    const cfg = webhookConfiguration(configuration, port) as KubeObject & { webhooks: { name: string }[] };
    cfg.webhooks[0]!.name = 'rotation.piko.dev';
    await admin.create(MUTATING_WEBHOOK_CONFIGURATIONS, cfg);
    // The operator's credentials, with the grants on this configuration too.
    await admin.apply(CLUSTER_ROLES, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'piko-operator-webhook' },
      rules: [...webhookConfigurationRules(CONFIGURATION), ...webhookConfigurationRules(configuration)],
    } as KubeObject);
    const kube = new ClientNodeKubeClient(loadKubeConfig(operatorKc), { fieldManager: FIELD_MANAGER });
    const metrics = new Registry();
    const injector = new SidecarInjector({
      config: { bindAddr: `127.0.0.1:${port}`, configuration, service: 'localhost', secret: 'rotation-webhook-tls', certDir: '' },
      namespace: OPERATOR_NAMESPACE,
      client: kube,
      lookup: () => undefined,
      defaultImage: 'ghcr.io/piko-k8s/piko:0.0.0-test',
      logger: testLogger('rotation'),
      metricsRegistry: metrics,
      syncIntervalMs: 3_600_000,
      // Short enough to age within the test: the serving certificate is due after 4 s, the CA after 8 s.
      validity: { caMs: 12_000, servingMs: 6_000 },
    });
    let failures: string[] = [];
    const latencies: number[] = [];
    let admitted = 0;
    let running = true;
    // Pods in flight all the time: each is a dry run the apiserver sends through both webhooks.
    const load = (async () => {
      while (running) {
        try {
          const started = performance.now();
          await admin.create(RESOURCES.pods, pod(shop, `rotate-${admitted}`, { note: 'x' }), { dryRun: true });
          latencies.push(performance.now() - started);
          admitted++;
        } catch (err) {
          if (failures.length < 20) failures.push(err instanceof Error ? err.message : String(err));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    })();
    /** Resolves once `n` more admissions succeeded; fails with the failures seen meanwhile. */
    const admissions = async (n: number): Promise<void> => {
      const target = admitted + n;
      const deadline = Date.now() + 20_000;
      while (admitted < target) {
        if (Date.now() > deadline) throw new Error(`${target - admitted} admissions short; failures: ${failures.join(' | ')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    try {
      await injector.start();
      const readSecret = () =>
        admin.get<KubeObject & { data: Record<string, string> }>(RESOURCES.secrets, OPERATOR_NAMESPACE, 'rotation-webhook-tls');
      // The first certificates take a moment to reach the apiserver: failures before it are not rotation's.
      await waitFor(
        admin,
        MUTATING_WEBHOOK_CONFIGURATIONS,
        '',
        configuration,
        (c) => JSON.stringify(c).includes('caBundle'),
        'the CA bundle',
      );
      await admissions(5);
      const settle = admitted;
      failures = [];
      const before = await readSecret();

      const pem = (secret: { data: Record<string, string> }, key: string): string => Buffer.from(secret.data[key]!, 'base64').toString();
      /** Until the certificate under `key` is due for renewal by its own dates, admitting all along. */
      const ageUntilDue = async (key: string): Promise<void> => {
        const secret = await readSecret();
        while (!dueForRenewal(pem(secret, key), Date.now())) await admissions(1);
      };

      await ageUntilDue('tls.crt');
      await injector.sync();
      const renewed = await readSecret();
      expect(renewed.data['tls.crt']).not.toBe(before.data['tls.crt']);
      expect(renewed.data['ca.crt']).toBe(before.data['ca.crt']);
      await admissions(10);

      await ageUntilDue('ca.crt');
      await injector.sync(); // the new CA joins the bundle
      expect(splitPem(pem(await readSecret(), 'ca.crt'))).toHaveLength(2);
      // Syncs are an interval apart (10 minutes by default), which gives the apiserver time to load
      // the new bundle before a certificate from the new CA is served; 1.5 s stands for it here.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await injector.sync(); // the serving certificate from the new CA
      const rotated = await readSecret();
      expect(rotated.data['ca.crt']).not.toBe(before.data['ca.crt']);
      await admissions(10);
      expect(failures).toEqual([]);
      const sorted = [...latencies].sort((a, b) => a - b);
      const at = (q: number): string => (sorted[Math.floor(q * (sorted.length - 1))] ?? NaN).toFixed(1);
      const served = (await metrics.getSingleMetric('piko_operator_admission_duration_seconds')!.get()).values as {
        metricName?: string;
        value: number;
      }[];
      const sum = served.find((v) => v.metricName?.endsWith('_sum'))?.value ?? NaN;
      const count = served.find((v) => v.metricName?.endsWith('_count'))?.value ?? NaN;
      process.stderr.write(
        `webhook rotation: ${admitted - settle} admissions during two rotations, ${failures.length} failed; ` +
          `dry-run pod creation through two webhooks p50 ${at(0.5)} ms, p99 ${at(0.99)} ms; ` +
          `in the webhook ${((sum / count) * 1000).toFixed(2)} ms on average over ${count}\n`,
      );
    } finally {
      running = false;
      await load;
      await injector.close();
      await kube.close();
      await admin.delete(MUTATING_WEBHOOK_CONFIGURATIONS, '', configuration);
    }
    // The Secret is owned by the configuration: uninstalling the chart leaves no certificate behind.
    await waitFor(
      admin,
      RESOURCES.secrets,
      OPERATOR_NAMESPACE,
      'rotation-webhook-tls',
      (s) => s === undefined,
      'the Secret to be collected',
    );
  }, 120_000);
});
