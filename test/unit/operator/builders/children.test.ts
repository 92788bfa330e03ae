import type {
  V1ConfigMap,
  V1PodDisruptionBudget,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V1StatefulSet,
} from '@kubernetes/client-node';
import { buildChildren, OWNED_KINDS, type DesiredChildren } from '../../../../operator/builders/desired-children';
import type { Desired } from '../../../../operator/builders/desired';
import { buildClusterSecret, generateClusterSecret } from '../../../../operator/builders/cluster-secret';
import { buildPodDisruptionBudget } from '../../../../operator/builders/pod-disruption-budget';
import { buildRole, buildRoleBinding } from '../../../../operator/builders/dataplane-role';
import { buildHeadlessService, buildProxyService, buildUpstreamService } from '../../../../operator/builders/services';
import type { PikoClusterSpecInput } from '../../../../operator/api/pikocluster-spec';
import { DEFAULT_IMAGE, makeCluster, UID } from '../fixtures';

const SELECTOR = {
  'app.kubernetes.io/name': 'piko',
  'app.kubernetes.io/instance': 'piko',
  'app.kubernetes.io/component': 'dataplane',
};
const INPUTS = { defaultImage: DEFAULT_IMAGE, clusterSecretValue: 'ab'.repeat(32) };

const children = (spec: PikoClusterSpecInput = {}) => buildChildren(makeCluster(spec), INPUTS);

function statefulSet(c: DesiredChildren): V1StatefulSet {
  const sts = c.apply.find((o): o is Desired<V1StatefulSet> => o.kind === 'StatefulSet');
  if (sts === undefined) throw new Error('no StatefulSet');
  return sts;
}

describe('buildChildren', () => {
  it('lists every child in apply order, StatefulSet last, the cluster Secret as create-only', () => {
    const c = children();
    expect(c.apply.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ServiceAccount/piko',
      'Role/piko-registry',
      'RoleBinding/piko-registry',
      'ConfigMap/piko-config',
      'Service/piko-nodes',
      'Service/piko-proxy',
      'Service/piko-upstream',
      'PodDisruptionBudget/piko',
      'NetworkPolicy/piko',
      'StatefulSet/piko',
    ]);
    expect(c.createOnly.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Secret/piko-cluster']);
  });

  it('gives every child the namespace, the common labels and a controller reference to the PikoCluster', () => {
    const c = children();
    for (const o of [...c.apply, ...c.createOnly]) {
      expect(o.metadata.namespace).toBe('edge');
      expect(o.metadata.labels).toMatchObject({ ...SELECTOR, 'app.kubernetes.io/managed-by': 'piko-operator' });
      expect(o.metadata.ownerReferences).toEqual([
        { apiVersion: 'piko.dev/v1alpha1', kind: 'PikoCluster', name: 'piko', uid: UID, controller: true, blockOwnerDeletion: true },
      ]);
      expect(OWNED_KINDS).toContainEqual({ apiVersion: o.apiVersion, kind: o.kind });
    }
  });

  it('is a pure function: same input, same output', () => {
    expect(children({ replicas: 2 })).toEqual(children({ replicas: 2 }));
  });

  it('uses the default image unless the spec overrides part of it', () => {
    const image = (spec: PikoClusterSpecInput) => statefulSet(children(spec)).spec?.template.spec?.containers[0]?.image;
    expect(image({})).toBe(DEFAULT_IMAGE);
    expect(image({ image: { tag: 'dev' } })).toBe('ghcr.io/piko-k8s/piko:dev');
    expect(image({ image: { repository: 'mirror.example.com:5000/piko' } })).toBe('mirror.example.com:5000/piko:0.1.0');
  });

  it('puts server.yaml in the ConfigMap and its hash on the pod template', () => {
    const c = children();
    const configMap = c.apply.find((o): o is Desired<V1ConfigMap> => o.kind === 'ConfigMap');
    expect(Object.keys(configMap?.data ?? {})).toEqual(['server.yaml']);
    const hash = (d: DesiredChildren) => statefulSet(d).spec?.template.metadata?.annotations?.['piko.dev/config-hash'];
    expect(hash(c)).toMatch(/^[0-9a-f]{64}$/);
    expect(hash(children({ proxyTimeout: '45s' }))).not.toBe(hash(c));
  });

  it('leaves the PodDisruptionBudget out when disabled', () => {
    expect(children({ podDisruptionBudget: { enabled: false } }).apply.map((o) => o.kind)).not.toContain('PodDisruptionBudget');
  });
});

describe('services', () => {
  it('a headless Service governs the pods, listing only ready ones', () => {
    const svc: V1Service = buildHeadlessService(makeCluster());
    expect(svc.metadata?.name).toBe('piko-nodes');
    expect(svc.spec).toEqual({
      clusterIP: 'None',
      selector: SELECTOR,
      publishNotReadyAddresses: false,
      ports: [
        { name: 'proxy', port: 8000, targetPort: 'proxy', protocol: 'TCP' },
        { name: 'upstream', port: 8001, targetPort: 'upstream', protocol: 'TCP' },
        { name: 'admin', port: 8002, targetPort: 'admin', protocol: 'TCP' },
      ],
    });
  });

  it('proxy and upstream Services are ClusterIP on the container ports by default', () => {
    const proxy = buildProxyService(makeCluster());
    expect(proxy.metadata.name).toBe('piko-proxy');
    expect(proxy.metadata.annotations).toBeUndefined();
    expect(proxy.spec).toEqual({
      type: 'ClusterIP',
      selector: SELECTOR,
      ports: [{ name: 'proxy', port: 8000, targetPort: 'proxy', protocol: 'TCP' }],
    });
    expect(buildUpstreamService(makeCluster()).spec?.ports).toEqual([
      { name: 'upstream', port: 8001, targetPort: 'upstream', protocol: 'TCP' },
    ]);
  });

  it('takes type, port, node port, annotations and load balancer class from spec.services', () => {
    const cluster = makeCluster({
      services: {
        proxy: {
          type: 'LoadBalancer',
          port: 443,
          annotations: { 'lb.example.com/scheme': 'internet-facing' },
          loadBalancerClass: 'example.com/lb',
        },
        upstream: { type: 'NodePort', nodePort: 30001 },
      },
    });
    const proxy = buildProxyService(cluster);
    expect(proxy.metadata.annotations).toEqual({ 'lb.example.com/scheme': 'internet-facing' });
    expect(proxy.spec).toMatchObject({
      type: 'LoadBalancer',
      loadBalancerClass: 'example.com/lb',
      ports: [{ name: 'proxy', port: 443, targetPort: 'proxy', protocol: 'TCP' }],
    });
    expect(buildUpstreamService(cluster).spec).toMatchObject({
      type: 'NodePort',
      ports: [{ name: 'upstream', port: 8001, targetPort: 'upstream', protocol: 'TCP', nodePort: 30001 }],
    });
  });
});

describe('RBAC, budget and cluster Secret', () => {
  it('grants the registry exactly leases and configmaps in the namespace, bound to the pods ServiceAccount', () => {
    const role: V1Role = buildRole(makeCluster());
    const verbs = ['list', 'watch', 'create', 'patch', 'delete'];
    expect(role.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs },
      { apiGroups: [''], resources: ['configmaps'], verbs },
    ]);
    const binding: V1RoleBinding = buildRoleBinding(makeCluster());
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'piko-registry' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'piko', namespace: 'edge' }]);
  });

  it('bounds evictions by spec.podDisruptionBudget.maxUnavailable', () => {
    const pdb = buildPodDisruptionBudget(makeCluster({ podDisruptionBudget: { maxUnavailable: '25%' } })) as V1PodDisruptionBudget;
    expect(pdb.spec).toEqual({
      maxUnavailable: '25%',
      selector: { matchLabels: SELECTOR },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    });
    expect(buildPodDisruptionBudget(makeCluster())?.spec?.maxUnavailable).toBe(1);
    expect(buildPodDisruptionBudget(makeCluster({ podDisruptionBudget: { enabled: false } }))).toBeUndefined();
  });

  it('generates a 256-bit hex cluster secret and stores it under key "secret"', () => {
    const value = generateClusterSecret((n) => Buffer.alloc(n, 0xab));
    expect(value).toBe('ab'.repeat(32));
    expect(generateClusterSecret()).toMatch(/^[0-9a-f]{64}$/);
    const secret: V1Secret = buildClusterSecret(makeCluster(), value);
    expect(secret.metadata?.name).toBe('piko-cluster');
    expect(secret.type).toBe('Opaque');
    expect(secret.stringData).toEqual({ secret: value });
  });
});
