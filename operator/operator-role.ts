/**
 * The operator's permissions: the ClusterRole its ServiceAccount is bound
 * to, as data, so the Helm chart renders this list and the integration
 * tests run the operator with exactly it. Each verb is one the operator
 * sends (see dataplane/kube/client.ts: get, list, watch, apply, create,
 * update, delete; a server-side apply is authorised as `patch`, and also
 * as `create` when the object does not exist yet), or one RBAC requires it
 * to hold to hand out:
 * - a Role may only grant what its creator holds (RBAC's escalation check),
 *   so what the data plane's registry Role grants on leases and configmaps
 *   (REGISTRY_VERBS, builders/dataplane-role.ts) is held here too, derived from the
 *   same list so the two cannot drift apart;
 * - `update` on pikoclusters/finalizers lets children carry
 *   blockOwnerDeletion where the OwnerReferencesPermissionEnforcement
 *   admission plugin is on (OpenShift, hardened clusters).
 * With --namespace a,b the same rules are instead bound with a RoleBinding in
 * each watched namespace (the chart's operator.watchNamespaces), and leader
 * election's in the Lease's namespace: the operator then can create
 * StatefulSets, ServiceAccounts, Roles and RoleBindings, and read Secrets,
 * in those namespaces only. Kubernetes has no metadata-only grant on
 * Secrets: list and watch return their data, though the operator asks for
 * metadata only and keeps no Secret's data in memory.
 */
import { GROUP, PLURAL } from './api/pikocluster';
import { REGISTRY_VERBS } from '../dataplane/registry/kubernetes/registry-verbs';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export const OPERATOR_CLUSTER_ROLE_NAME = 'piko-operator';

/** Children the operator watches, applies (creating them the first time) and prunes. */
const CHILD_VERBS = ['list', 'watch', 'create', 'patch', 'delete'];

/**
 * Cluster-scoped, so a RoleBinding in a watched namespace cannot grant them: with
 * --namespace the chart binds these with a ClusterRoleBinding of their own. The operator binds
 * the token-reviewer ClusterRole to each data plane that admits agents by ServiceAccount, and
 * RBAC lets it hand out only what it holds, hence create on tokenreviews (which answers no more
 * than whether a token is valid).
 */
export const TOKEN_REVIEW_OPERATOR_RULES: readonly PolicyRule[] = [
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: CHILD_VERBS },
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
];

function union(...lists: readonly (readonly string[])[]): string[] {
  const order = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
  const all = new Set(lists.flat());
  return order.filter((v) => all.has(v));
}

export const OPERATOR_CLUSTER_ROLE_RULES: readonly PolicyRule[] = [
  // Read from the informer cache; never written except status.
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ['list', 'watch'] },
  { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ['patch'] },
  { apiGroups: [GROUP], resources: [`${PLURAL}/finalizers`], verbs: ['update'] },
  { apiGroups: ['apps'], resources: ['statefulsets'], verbs: CHILD_VERBS },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: CHILD_VERBS },
  { apiGroups: [''], resources: ['services', 'serviceaccounts'], verbs: CHILD_VERBS },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: CHILD_VERBS },
  // Children, registry shards (watched, collected) and the registry Role's grant.
  { apiGroups: [''], resources: ['configmaps'], verbs: union(CHILD_VERBS, REGISTRY_VERBS) },
  // Registry Leases (watched, collected) and the registry Role's grant. The
  // leader-election Lease needs get and update too, but only in the
  // operator's own namespace: LEADER_ELECTION_RULES, bound there by a Role.
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: union(['list', 'watch', 'delete'], REGISTRY_VERBS) },
  // Metadata of every Secret (references, the cluster secret); the cluster secret is created once; owned ones pruned.
  { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch', 'create', 'delete'] },
  // Readiness and registry garbage collection.
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies', 'ingresses'], verbs: CHILD_VERBS },
  // spec.exposure.gateway; granted whether or not the Gateway API is installed, and watched only once it is.
  { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes', 'tlsroutes', 'tcproutes'], verbs: CHILD_VERBS },
  // spec.monitoring.podMonitor, likewise.
  { apiGroups: ['monitoring.coreos.com'], resources: ['podmonitors'], verbs: CHILD_VERBS },
  // spec.tls.issuerRef, likewise.
  { apiGroups: ['cert-manager.io'], resources: ['certificates'], verbs: CHILD_VERBS },
  // The apiserver's addresses, for the data plane's NetworkPolicy egress.
  { apiGroups: [''], resources: ['endpoints'], verbs: ['get'], resourceNames: ['kubernetes'] },
  ...TOKEN_REVIEW_OPERATOR_RULES,
];

/**
 * The sidecar injector's: it keeps the caBundle of its one MutatingWebhookConfiguration (by name:
 * a grant on every webhook configuration would let it redirect any cluster's admissions) and its
 * certificates in one Secret of its own namespace (creating it is covered by the ClusterRole).
 */
export function webhookConfigurationRules(configuration: string): PolicyRule[] {
  return [
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['mutatingwebhookconfigurations'],
      verbs: ['get', 'update'],
      resourceNames: [configuration],
    },
  ];
}

export function webhookSecretRules(secret: string): PolicyRule[] {
  return [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'update'], resourceNames: [secret] }];
}

/** Bound by a Role in the namespace of the leader-election Lease only. */
export const LEADER_ELECTION_RULES: readonly PolicyRule[] = [
  // delete: a leader that stops releases the Lease by deleting it.
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update', 'delete'] },
];

/** The ClusterRole object, for tests and manifests. */
export function operatorClusterRole(name: string = OPERATOR_CLUSTER_ROLE_NAME): {
  apiVersion: 'rbac.authorization.k8s.io/v1';
  kind: 'ClusterRole';
  metadata: { name: string; labels: Record<string, string> };
  rules: PolicyRule[];
} {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name, labels: { 'app.kubernetes.io/name': 'piko', 'app.kubernetes.io/component': 'operator' } },
    rules: OPERATOR_CLUSTER_ROLE_RULES.map((r) => ({
      apiGroups: [...r.apiGroups],
      resources: [...r.resources],
      verbs: [...r.verbs],
      ...(r.resourceNames === undefined ? {} : { resourceNames: [...r.resourceNames] }),
    })),
  };
}
