import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import { buildStatefulSet, terminationGracePeriodSeconds } from '../../../../operator/builders/stateful-set';
import { OPERATOR_ENV, OPERATOR_ENV_PREFIX, type PikoClusterSpecInput } from '../../../../operator/api/pikocluster-spec';
import { makeCluster, UID } from '../fixtures';

const INPUTS = { image: 'ghcr.io/piko-k8s/piko:0.1.0', configHash: 'c0ffee' };

function build(spec: PikoClusterSpecInput = {}) {
  const sts = buildStatefulSet(makeCluster(spec), INPUTS);
  const pod = sts.spec!.template.spec as V1PodSpec;
  const container = pod.containers[0] as V1Container;
  return { sts, pod, container };
}

describe('buildStatefulSet', () => {
  it('selects its pods by name, instance and component, through the headless Service', () => {
    const { sts } = build();
    const selector = {
      'app.kubernetes.io/name': 'piko',
      'app.kubernetes.io/instance': 'piko',
      'app.kubernetes.io/component': 'dataplane',
    };
    expect(sts.metadata).toMatchObject({ name: 'piko', namespace: 'edge' });
    expect(sts.metadata.labels).toEqual({ ...selector, 'app.kubernetes.io/managed-by': 'piko-operator' });
    expect(sts.metadata.ownerReferences).toEqual([
      { apiVersion: 'piko.dev/v1alpha1', kind: 'PikoCluster', name: 'piko', uid: UID, controller: true, blockOwnerDeletion: true },
    ]);
    expect(sts.spec).toMatchObject({
      replicas: 3,
      serviceName: 'piko-nodes',
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'RollingUpdate' },
      selector: { matchLabels: selector },
    });
    expect(sts.spec!.template.metadata!.labels).toMatchObject(selector);
  });

  it('runs `piko server` on the mounted config with env expansion', () => {
    const { container, pod } = build();
    expect(container.image).toBe(INPUTS.image);
    expect(container.imagePullPolicy).toBe('IfNotPresent');
    expect(container.command).toBeUndefined();
    expect(container.args).toEqual(['server', '--config.path', '/etc/piko/server.yaml', '--config.expand-env']);
    expect(container.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/piko', readOnly: true });
    expect(pod.volumes).toContainEqual({
      name: 'config',
      configMap: { name: 'piko-config', items: [{ key: 'server.yaml', path: 'server.yaml' }] },
    });
    expect(container.ports).toEqual([
      { name: 'proxy', containerPort: 8000, protocol: 'TCP' },
      { name: 'upstream', containerPort: 8001, protocol: 'TCP' },
      { name: 'admin', containerPort: 8002, protocol: 'TCP' },
    ]);
  });

  it('gives the pod its name, namespace, uid and IP from the downward API and the cluster secret from its Secret', () => {
    const { container } = build();
    expect(container.env).toEqual([
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'PIKO_CLUSTER_SECRET', valueFrom: { secretKeyRef: { name: 'piko-cluster', key: 'secret' } } },
    ]);
  });

  it("adds the spec's env after the operator's, whose names the CRD keeps out of it", () => {
    const env = [
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=400' },
      { name: 'ADVERTISED', value: '$(POD_IP)' },
      { name: 'PROXY_TOKEN', valueFrom: { secretKeyRef: { name: 'egress', key: 'token' } } },
    ];
    const { container } = build({ env });
    expect(container.env?.slice(5)).toEqual(env);
    // Every name the operator sets is one the schema refuses in spec.env.
    const ours = build({ auth: { proxy: { hmacSecretKeyRef: { name: 'a', key: 'h' } } } }).container.env ?? [];
    for (const { name } of ours) {
      expect((OPERATOR_ENV as readonly string[]).includes(name) || name.startsWith(OPERATOR_ENV_PREFIX)).toBe(true);
    }
  });

  it('adds an env var per auth key, and a $(VAR) flag for PEM keys', () => {
    const { container } = build({
      auth: {
        proxy: { hmacSecretKeyRef: { name: 'a', key: 'h' } },
        upstream: { rsaPublicKeyRef: { name: 'a', key: 'r' }, ecdsaPublicKeyRef: { name: 'b', key: 'e' } },
      },
    });
    expect(container.env?.slice(5)).toEqual([
      { name: 'PIKO_PROXY_HMAC_SECRET_KEY', valueFrom: { secretKeyRef: { name: 'a', key: 'h' } } },
      { name: 'PIKO_UPSTREAM_RSA_PUBLIC_KEY', valueFrom: { secretKeyRef: { name: 'a', key: 'r' } } },
      { name: 'PIKO_UPSTREAM_ECDSA_PUBLIC_KEY', valueFrom: { secretKeyRef: { name: 'b', key: 'e' } } },
    ]);
    expect(container.args?.slice(4)).toEqual([
      '--upstream.auth.rsa-public-key=$(PIKO_UPSTREAM_RSA_PUBLIC_KEY)',
      '--upstream.auth.ecdsa-public-key=$(PIKO_UPSTREAM_ECDSA_PUBLIC_KEY)',
    ]);
  });

  it('probes /ready and /health on the admin port, over HTTPS when it serves TLS', () => {
    expect(build().container.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 'admin', scheme: 'HTTP' });
    expect(build().container.livenessProbe?.httpGet).toEqual({ path: '/health', port: 'admin', scheme: 'HTTP' });
    const tls = build({ tls: { admin: { secretName: 'admin-tls' } } }).container;
    expect(tls.readinessProbe?.httpGet?.scheme).toBe('HTTPS');
  });

  it('falls back to TCP probes when the admin port needs a token or a client certificate', () => {
    for (const spec of [
      { auth: { admin: { hmacSecretKeyRef: { name: 'a', key: 'h' } } } },
      { tls: { admin: { secretName: 't', clientCASecretRef: { name: 'ca', key: 'ca.crt' } } } },
    ]) {
      const { container } = build(spec);
      expect(container.readinessProbe?.httpGet).toBeUndefined();
      expect(container.readinessProbe?.tcpSocket).toEqual({ port: 'admin' });
      expect(container.livenessProbe?.tcpSocket).toEqual({ port: 'admin' });
    }
  });

  it('drains on rollout: preStop sleep, then a termination grace period longer than the server grace period', () => {
    const { container, pod } = build({ gracePeriod: '45s' });
    expect(container.lifecycle?.preStop).toEqual({ sleep: { seconds: 5 } });
    expect(pod.terminationGracePeriodSeconds).toBe(5 + 45 + 5);
    expect(terminationGracePeriodSeconds(makeCluster({ gracePeriod: '1500ms' }).spec)).toBe(5 + 2 + 5);
  });

  it('runs non-root with a read-only root filesystem and no capabilities', () => {
    const { container, pod } = build();
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532 });
    expect(container.securityContext).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(pod.serviceAccountName).toBe('piko');
    expect(pod.enableServiceLinks).toBe(false);
  });

  it('mounts each TLS Secret read-only with only the keys it needs', () => {
    const { container, pod } = build({
      tls: {
        proxy: { secretName: 'proxy-tls', clientCASecretRef: { name: 'ca', key: 'bundle.pem' } },
        forwarding: { rootCASecretRef: { name: 'ca', key: 'bundle.pem' } },
      },
    });
    expect(pod.volumes?.slice(2)).toEqual([
      {
        name: 'tls-proxy',
        secret: {
          secretName: 'proxy-tls',
          defaultMode: 0o440,
          items: [
            { key: 'tls.crt', path: 'tls.crt' },
            { key: 'tls.key', path: 'tls.key' },
          ],
        },
      },
      { name: 'tls-proxy-client-ca', secret: { secretName: 'ca', defaultMode: 0o440, items: [{ key: 'bundle.pem', path: 'ca.crt' }] } },
      { name: 'tls-forwarding-ca', secret: { secretName: 'ca', defaultMode: 0o440, items: [{ key: 'bundle.pem', path: 'ca.crt' }] } },
    ]);
    expect(container.volumeMounts?.slice(2)).toEqual([
      { name: 'tls-proxy', mountPath: '/etc/piko/tls/proxy', readOnly: true },
      { name: 'tls-proxy-client-ca', mountPath: '/etc/piko/tls/proxy-client-ca', readOnly: true },
      { name: 'tls-forwarding-ca', mountPath: '/etc/piko/tls/forwarding-ca', readOnly: true },
    ]);
  });

  it('copies scheduling, resources and pull secrets from the spec', () => {
    const { pod, container } = build({
      image: { pullPolicy: 'Always', pullSecrets: [{ name: 'regcred' }] },
      resources: { requests: { cpu: '100m', memory: 1048576 }, limits: { memory: '256Mi' } },
      scheduling: {
        nodeSelector: { pool: 'edge' },
        tolerations: [{ key: 'edge', operator: 'Exists', effect: 'NoSchedule' }],
        affinity: { nodeAffinity: {} },
        topologySpreadConstraints: [
          { maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule' },
          { maxSkew: 2, topologyKey: 'host', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { a: 'b' } } },
        ],
        priorityClassName: 'critical',
      },
    });
    expect(container.imagePullPolicy).toBe('Always');
    expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '1048576' }, limits: { memory: '256Mi' } });
    expect(pod.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(pod.nodeSelector).toEqual({ pool: 'edge' });
    expect(pod.tolerations).toEqual([{ key: 'edge', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(pod.affinity).toEqual({ nodeAffinity: {} });
    expect(pod.priorityClassName).toBe('critical');
    expect(pod.topologySpreadConstraints?.map((t) => t.labelSelector)).toEqual([
      {
        matchLabels: {
          'app.kubernetes.io/name': 'piko',
          'app.kubernetes.io/instance': 'piko',
          'app.kubernetes.io/component': 'dataplane',
        },
      },
      { matchLabels: { a: 'b' } },
    ]);
  });

  it('adds the extra pod labels and annotations, and the config hash that rolls pods when server.yaml changes', () => {
    const { sts } = build({ podLabels: { team: 'edge' }, podAnnotations: { 'example.com/x': 'y' } });
    const meta = sts.spec!.template.metadata!;
    expect(meta.labels).toMatchObject({ team: 'edge', 'app.kubernetes.io/instance': 'piko' });
    expect(meta.annotations).toEqual({
      'example.com/x': 'y',
      'kubectl.kubernetes.io/default-container': 'piko',
      'piko.dev/config-hash': 'c0ffee',
    });
  });
});
