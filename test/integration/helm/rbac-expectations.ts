/**
 * What the operator's ClusterRole may and must grant, derived from what the operator does rather
 * than copied from operator/operator-role.ts, and a way to compare rule lists however they are grouped.
 */
import type { V1PolicyRule } from '@kubernetes/client-node';
import { OWNED_KINDS } from '../../../operator/builders/desired-children';
import { REGISTRY_VERBS } from '../../../dataplane/registry/kubernetes/registry-verbs';
import { resourceFor } from '../../../dataplane/kube/client';

/** Verbs that change state, or grant the power to. */
export const WRITE_VERBS: readonly string[] = [
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
  'escalate',
  'bind',
  'impersonate',
  '*',
];

/** Each (verb, group, resource) a rule list grants, as sorted `verb group/resource` strings. */
export function ruleGrants(rules: readonly V1PolicyRule[]): string[] {
  const out = new Set<string>();
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs) out.add(`${verb} ${group === '' ? 'core' : group}/${resource}`);
      }
    }
  }
  return [...out].sort();
}

/** The resources (`group/plural`) a PikoCluster owns, from the builders' list of owned kinds. */
export function ownedResources(): string[] {
  return OWNED_KINDS.map(({ apiVersion, kind }) => {
    const type = resourceFor(apiVersion, kind);
    if (type === undefined) throw new Error(`no resource for ${apiVersion} ${kind}`);
    return `${type.group === '' ? 'core' : type.group}/${type.plural}`;
  }).sort();
}

/**
 * Every write the operator may hold cluster-wide: server-side apply (create, patch) and pruning
 * (delete) of what a PikoCluster owns; status; finalizers (blockOwnerDeletion); Events; deleting
 * registry Leases and ConfigMaps of pods that are gone; token-review bindings; and whatever the registry Role grants,
 * which RBAC makes its creator hold. The leader Lease's writes belong to a Role in the operator's
 * own namespace, not here.
 */
export function allowedClusterWrites(): string[] {
  const rules: V1PolicyRule[] = [
    ...ownedResources().map((r) => {
      const [group, resource] = r.split('/') as [string, string];
      return { apiGroups: [group === 'core' ? '' : group], resources: [resource], verbs: ['create', 'patch', 'delete'] };
    }),
    { apiGroups: ['piko.dev'], resources: ['pikoclusters/status'], verbs: ['patch', 'update'] },
    { apiGroups: ['piko.dev'], resources: ['pikoclusters/finalizers'], verbs: ['update'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['delete', ...REGISTRY_VERBS] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['delete', ...REGISTRY_VERBS] },
    // The token-review binding of each cluster that admits agents by ServiceAccount (cluster-scoped,
    // so no owner collects it), and the one grant it hands out, which RBAC makes its creator hold.
    { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: ['create', 'patch', 'delete'] },
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  ];
  return ruleGrants(rules).filter((g) => WRITE_VERBS.includes(g.split(' ')[0]!));
}
