/**
 * The data plane's identity: a ServiceAccount, and a Role with what the
 * Kubernetes registry needs (Leases for liveness, ConfigMaps for each pod's
 * endpoint map), bound in the PikoCluster's namespace only.
 */
import type { V1Role, V1RoleBinding, V1ServiceAccount } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import { childMeta, childNames } from './names';
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
