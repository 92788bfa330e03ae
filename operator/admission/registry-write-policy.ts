/**
 * The ValidatingAdmissionPolicy that narrows what a data-plane pod may
 * write to its own registry objects. RBAC cannot: the registry Role must
 * grant create, list and watch on every Lease and ConfigMap of the
 * namespace (none of them takes resourceNames), and every pod of a
 * PikoCluster shares one ServiceAccount. What tells the pods apart is the
 * pod-bound token the kubelet projects into each: the apiserver puts the
 * pod's name in the request's user info, under
 * `authentication.kubernetes.io/pod-name`.
 *
 * The policy takes each PikoCluster of the request's namespace as its
 * parameter, so one cluster-wide binding covers every cluster, and applies
 * only to requests by that PikoCluster's ServiceAccount (the cluster's
 * name, see builders/names.ts). Such a request may create, patch or delete
 * a Lease or ConfigMap only if it is a registry object of that cluster
 * labelled with the requesting pod's name, under the pod's own object
 * names; a token not bound to a pod may write nothing. Everyone else
 * (the operator, the garbage collector, users, other workloads) is left
 * to RBAC; records they forge are ignored by readers, which verify
 * signatures (dataplane/registry/kubernetes/record-signature.ts).
 *
 * The chart renders these objects (helm/piko/files/registry-write-policy.yaml,
 * written by operator/scripts/sync-chart.ts).
 */
import { API_VERSION, KIND } from '../api/pikocluster';

export const REGISTRY_WRITE_POLICY_NAME = 'piko-registry-writes';

const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';

/** Kept as plain objects: the policy's CEL is the part worth reading. */
export function registryWritePolicy(name: string = REGISTRY_WRITE_POLICY_NAME): Record<string, unknown> {
  const ops = ['CREATE', 'UPDATE', 'DELETE'];
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: {
      failurePolicy: 'Fail',
      paramKind: { apiVersion: API_VERSION, kind: KIND },
      matchConstraints: {
        resourceRules: [
          { apiGroups: ['coordination.k8s.io'], apiVersions: ['*'], resources: ['leases'], operations: ops },
          { apiGroups: [''], apiVersions: ['*'], resources: ['configmaps'], operations: ops },
        ],
      },
      variables: [
        {
          name: 'dataPlane',
          expression: "request.userInfo.username == 'system:serviceaccount:' + request.namespace + ':' + params.metadata.name",
        },
        {
          name: 'pod',
          expression:
            `has(request.userInfo.extra) && '${POD_NAME_EXTRA}' in request.userInfo.extra ` +
            `? request.userInfo.extra['${POD_NAME_EXTRA}'][0] : ''`,
        },
        // A delete carries the object as it was; create and update as it will be.
        { name: 'target', expression: "request.operation == 'DELETE' ? oldObject : object" },
        {
          name: 'labels',
          expression: "has(variables.target.metadata.labels) ? variables.target.metadata.labels : {'': ''}",
        },
      ],
      validations: [
        {
          expression: "!variables.dataPlane || variables.pod != ''",
          message: 'the data plane must write with a pod-bound ServiceAccount token',
          reason: 'Forbidden',
        },
        {
          expression:
            '!variables.dataPlane || (' +
            "variables.labels[?'app.kubernetes.io/component'].orValue('') == 'registry' && " +
            "variables.labels[?'piko.dev/cluster'].orValue('') == params.metadata.name && " +
            "variables.labels[?'piko.dev/node'].orValue('') == variables.pod)",
          messageExpression:
            "'pod ' + variables.pod + ' may write only its own registry objects (labelled piko.dev/node=' + variables.pod + ')'",
          reason: 'Forbidden',
        },
        {
          // The names too, or one pod could take another's names first and lock it out.
          expression:
            '!variables.dataPlane || ' +
            "variables.target.metadata.name == params.metadata.name + '-node-' + variables.pod || " +
            "variables.target.metadata.name.matches('^' + params.metadata.name + '-endpoints-' + variables.pod + '-[0-9]+$')",
          messageExpression: "'pod ' + variables.pod + ' may write only objects named for it, not ' + variables.target.metadata.name",
          reason: 'Forbidden',
        },
      ],
    },
  };
}

/** One binding for every namespace: each request is checked against every PikoCluster of its namespace. */
export function registryWritePolicyBinding(name: string = REGISTRY_WRITE_POLICY_NAME): Record<string, unknown> {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name },
    spec: {
      policyName: name,
      validationActions: ['Deny'],
      // No PikoCluster in the namespace: nothing of ours to protect there.
      paramRef: { selector: {}, parameterNotFoundAction: 'Allow' },
    },
  };
}
