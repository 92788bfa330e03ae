/**
 * `piko operator` configuration. The flags follow controller-runtime's
 * names (--leader-elect, --metrics-bind-addr, --health-bind-addr), which
 * Kubernetes users and Helm charts expect of an operator. Two defaults come
 * from the environment the chart sets: POD_NAMESPACE (downward API) for the
 * leader-election Lease, PIKO_IMAGE for the data-plane image.
 */
import { LOG_SPEC, type LogConfig } from '../dataplane/config/common-specs';
import { ConfigError } from '../dataplane/config/errors';
import { loadRaw, type LoadOptions } from '../dataplane/config/load';
import { bool, deepFreeze, group, str, toTyped, type GroupSpec } from '../dataplane/config/schema';
import { parseListenAddr } from '../dataplane/net/host-port';

export const DEFAULT_IMAGE_REPOSITORY = 'ghcr.io/piko-k8s/piko';

/** Deep-frozen at runtime. */
export interface OperatorConfig {
  /** Comma-separated, as given: watch PikoClusters (and their children) in these namespaces only; empty: every namespace. */
  namespace: string;
  /** `namespace` split and checked; empty: every namespace. */
  namespaces: string[];
  /** Empty: KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig: string;
  leaderElect: boolean;
  /** Resolved: never empty. */
  leaderElectionNamespace: string;
  /** `0` turns the metrics server off. */
  metricsBindAddr: string;
  healthBindAddr: string;
  /** Resolved: never empty. */
  defaultImage: string;
  /** The ClusterRole granting create on tokenreviews, bound to clusters that admit agents by ServiceAccount; empty: none. */
  tokenReviewerClusterRole: string;
  webhook: WebhookConfig;
  log: LogConfig;
}

/** The sidecar injector (operator/webhook/). */
export interface WebhookConfig {
  /** Empty: no webhook server. */
  bindAddr: string;
  /** The MutatingWebhookConfiguration that calls it, whose caBundle the operator keeps. */
  configuration: string;
  /** The Service in front of the operator's webhook port: the serving certificate's names. */
  service: string;
  /** The Secret (in leaderElectionNamespace, the operator's own) holding its CA and certificate. */
  secret: string;
  /** A directory with tls.crt and tls.key (cert-manager's Secret, mounted) instead of the Secret above. */
  certDir: string;
}

export const OPERATOR_SPEC: GroupSpec = group({
  namespace: str(
    '',
    'Namespaces to watch PikoClusters in, comma-separated (the operator needs its ClusterRole bound in each); every namespace when empty.',
    { arg: '<namespace>[,...]' },
  ),
  kubeconfig: str('', 'Kubeconfig file; KUBECONFIG, ~/.kube/config or the in-cluster service account when empty.', {
    arg: '<path>',
  }),
  leader_elect: bool(true, 'Elect a leader among replicas through a Lease, so that one reconciles at a time.'),
  leader_election_namespace: str(
    '',
    "Namespace of the leader-election Lease piko-operator-leader; POD_NAMESPACE, else 'default', when empty.",
    { arg: '<namespace>' },
  ),
  metrics_bind_addr: str(':8080', "Address of the /metrics server; '0' turns it off.", { arg: '<addr>' }),
  health_bind_addr: str(':8081', 'Address of the /healthz and /readyz server.', { arg: '<addr>' }),
  default_image: str(
    '',
    `Data-plane image for PikoClusters that name none; PIKO_IMAGE, else ${DEFAULT_IMAGE_REPOSITORY}:<version>, when empty.`,
    { arg: '<image>' },
  ),
  token_reviewer_cluster_role: str(
    '',
    'ClusterRole (create on tokenreviews) bound to the data plane of PikoClusters with spec.auth.upstream.serviceAccounts; ' +
      'such clusters are not Ready when empty.',
    { arg: '<name>' },
  ),
  webhook: group({
    bind_addr: str('', 'Address of the sidecar-injection webhook (HTTPS); no webhook when empty.', { arg: '<addr>' }),
    configuration: str('piko-operator', 'MutatingWebhookConfiguration whose caBundle the operator keeps (without --webhook.cert-dir).', {
      arg: '<name>',
    }),
    service: str('piko-operator-webhook', "Service in front of the webhook port; the serving certificate's DNS names.", { arg: '<name>' }),
    secret: str('piko-operator-webhook-tls', "Secret of the operator's namespace holding the webhook's CA and certificate.", {
      arg: '<name>',
    }),
    cert_dir: str('', 'Directory with tls.crt and tls.key (such as a mounted cert-manager Secret), re-read when they change.', {
      arg: '<dir>',
    }),
  }),
  log: LOG_SPEC,
});

export interface OperatorLoadOptions extends LoadOptions {
  /** The package version, for the default image tag. */
  version: string;
}

// A namespace is a DNS-1123 label.
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// Loose on purpose: the builders and the CRD check image parts; this only refuses what cannot be an image.
const IMAGE = /^[^\s@:/][^\s]*$/;

/** Defaults → flags → YAML file → environment defaults → checks; the result is deep-frozen. */
export function loadOperatorConfig(options: OperatorLoadOptions): OperatorConfig {
  const { version, ...load } = options;
  const config = toTyped(OPERATOR_SPEC, loadRaw(OPERATOR_SPEC, load)) as unknown as OperatorConfig;
  const env = options.env ?? process.env;
  if (config.leaderElectionNamespace === '') config.leaderElectionNamespace = env['POD_NAMESPACE'] || 'default';
  if (config.defaultImage === '') config.defaultImage = env['PIKO_IMAGE'] || `${DEFAULT_IMAGE_REPOSITORY}:${version}`;
  finish(config);
  return deepFreeze(config);
}

function finish(c: OperatorConfig): void {
  c.namespaces = c.namespace === '' ? [] : [...new Set(c.namespace.split(',').map((n) => n.trim()))];
  for (const [path, value] of [
    ...c.namespaces.map((n) => ['namespace', n] as const),
    ['leader_election_namespace', c.leaderElectionNamespace] as const,
  ]) {
    if (value !== '' && !NAMESPACE.test(value)) {
      throw new ConfigError(`${path} ${JSON.stringify(value)} must be a namespace name (lower-case letters, digits and -)`, {
        path,
      });
    }
  }
  for (const [path, value] of [
    ['metrics_bind_addr', c.metricsBindAddr],
    ['health_bind_addr', c.healthBindAddr],
    ['webhook.bind_addr', c.webhook.bindAddr],
  ] as const) {
    if ((path === 'metrics_bind_addr' && value === '0') || (path === 'webhook.bind_addr' && value === '')) continue;
    try {
      parseListenAddr(value, path);
    } catch (err) {
      throw new ConfigError((err as Error).message, { path, cause: err });
    }
  }
  if (!IMAGE.test(c.defaultImage)) {
    throw new ConfigError(`default_image ${JSON.stringify(c.defaultImage)} is not an image reference`, { path: 'default_image' });
  }
}
