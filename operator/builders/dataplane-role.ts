/**
 * The data plane's identity: a ServiceAccount, and a Role with what the
 * Kubernetes registry needs (Leases for liveness, ConfigMaps for each pod's
 * endpoint map), bound in the PikoCluster's namespace only.
 */
import type { V1ClusterRoleBinding, V1Role, V1RoleBinding, V1ServiceAccount } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import { childMeta, childNames, commonLabels, LABEL_MANAGED_BY, MANAGED_BY } from './names';
import type { Desired } from './desired';
import { REGISTRY_VERBS } from '../../dataplane/registry/kubernetes/registry-verbs';

export function buildServiceAccount(cluster: PikoCluster): Desired<V1ServiceAccount> {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: childMeta(cluster, childNames(cluster).serviceAccount),
  };
}

export function buildRole(cluster: PikoCluster): Desired<V1Role> {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: childMeta(cluster, childNames(cluster).role),
    rules: [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: [...REGISTRY_VERBS] },
      { apiGroups: [''], resources: ['configmaps'], verbs: [...REGISTRY_VERBS] },
    ],
  };
}

export function buildRoleBinding(cluster: PikoCluster): Desired<V1RoleBinding> {
  const names = childNames(cluster);
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: childMeta(cluster, names.roleBinding),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.role },
    subjects: [{ kind: 'ServiceAccount', name: names.serviceAccount, namespace: cluster.metadata.namespace }],
  };
}

/** Labels naming the PikoCluster of a cluster-scoped child, which cannot carry an owner reference to it. */
export const LABEL_CLUSTER_NAMESPACE = 'piko.dev/cluster-namespace';
export const LABEL_CLUSTER_NAME = 'piko.dev/cluster-name';
export const TOKEN_REVIEW_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_CLUSTER_NAME}`;

/** The rules of the ClusterRole the chart installs for token review: exactly what TokenReview needs. */
export const TOKEN_REVIEWER_RULES = [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }] as const;

/**
 * Binds the token-reviewer ClusterRole to the cluster's ServiceAccount, so its servers can verify
 * agents' ServiceAccount tokens. TokenReview is cluster-scoped, so a RoleBinding cannot grant it;
 * a ClusterRoleBinding cannot be owned by a namespaced PikoCluster either, so it carries the
 * cluster's namespace and name as labels and the reconciler deletes it when the cluster goes.
 */
export function buildTokenReviewBinding(cluster: PikoCluster, clusterRole: string): Desired<V1ClusterRoleBinding> {
  const { namespace, name } = cluster.metadata;
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {
      // Namespace (≤ 63) and name (≤ 42) keep it within 253 characters; '.' cannot occur in either.
      name: `piko.${namespace}.${name}.token-review`,
      namespace: '',
      labels: { ...commonLabels(cluster), [LABEL_CLUSTER_NAMESPACE]: namespace, [LABEL_CLUSTER_NAME]: name },
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
    subjects: [{ kind: 'ServiceAccount', name: childNames(cluster).serviceAccount, namespace }],
  };
}
