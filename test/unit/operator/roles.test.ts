import { buildRole } from '../../../operator/builders/dataplane-role';
import { OWNED_KINDS } from '../../../operator/builders/desired-children';
import { OPERATOR_CLUSTER_ROLE_RULES, operatorClusterRole } from '../../../operator/operator-role';
import { RESOURCES, resourceFor } from '../../../dataplane/kube/client';
import { makeCluster } from './fixtures';

/** Whether the rules grant `verb` on `resource` of `group`. */
function allows(group: string, resource: string, verb: string): boolean {
  return OPERATOR_CLUSTER_ROLE_RULES.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}

describe('the operator ClusterRole', () => {
  it('lets the operator watch, create, apply and prune every kind it owns', () => {
    for (const { apiVersion, kind } of OWNED_KINDS) {
      const type = resourceFor(apiVersion, kind)!;
      const verbs = kind === 'Secret' ? ['list', 'watch', 'create', 'delete'] : ['list', 'watch', 'create', 'patch', 'delete'];
      for (const verb of verbs) expect([kind, verb, allows(type.group, type.plural, verb)]).toEqual([kind, verb, true]);
    }
  });

  it('holds every permission the data-plane Role grants, as RBAC requires of whoever creates it', () => {
    for (const rule of buildRole(makeCluster()).rules ?? []) {
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) expect([resource, verb, allows(group, resource, verb)]).toEqual([resource, verb, true]);
        }
      }
    }
  });

  it('reads PikoClusters, writes only their status, and never reads Secret data one by one', () => {
    expect(allows('piko.dev', 'pikoclusters', 'list')).toBe(true);
    expect(allows('piko.dev', 'pikoclusters', 'watch')).toBe(true);
    for (const verb of ['create', 'update', 'patch', 'delete']) expect(allows('piko.dev', 'pikoclusters', verb)).toBe(false);
    expect(allows('piko.dev', 'pikoclusters/status', 'patch')).toBe(true);
    expect(allows('', 'secrets', 'get')).toBe(false);
    expect(allows('', 'secrets', 'patch')).toBe(false);
    expect(allows('', 'pods', 'delete')).toBe(false);
    expect(allows('', RESOURCES.events.plural, 'create')).toBe(true);
  });

  it('has no wildcards', () => {
    const role = operatorClusterRole();
    expect(role.metadata.name).toBe('piko-operator');
    for (const rule of role.rules) {
      expect(rule.verbs).not.toContain('*');
      expect(rule.resources).not.toContain('*');
      expect(rule.apiGroups).not.toContain('*');
    }
  });
});
