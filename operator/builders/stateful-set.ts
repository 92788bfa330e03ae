/** StatefulSet `<name>`: the `piko server` pods. */
import type {
  V1Container,
  V1EnvVar,
  V1PodSpec,
  V1Probe,
  V1ResourceRequirements,
  V1StatefulSet,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { parseDuration } from '../../dataplane/config/duration';
import type { PikoCluster } from '../api/pikocluster';
import type { PikoClusterSpec } from '../api/pikocluster-spec';
import { authKeyArgs, authKeyEnv, authKeys } from './auth-keys';
import type { Desired } from './desired';
import { CONFIG_HASH_ANNOTATION, childMeta, childNames, commonLabels, selectorLabels } from './names';
import {
  CLUSTER_SECRET_KEY,
  CONFIG_DIR,
  CONFIG_FILE,
  CONFIG_PATH,
  CONTAINER_NAME,
  ENV_CLUSTER_SECRET,
  ENV_POD_IP,
  ENV_POD_NAME,
  ENV_POD_NAMESPACE,
  ENV_POD_UID,
  PORTS,
  RUN_AS_USER,
} from './pod-paths';
import { tlsFiles } from './tls-files';

/**
 * Seconds the pod keeps serving after it is marked for deletion, before
 * SIGTERM: endpoint controllers and kube-proxy need a moment to stop
 * sending it new connections, which would otherwise be refused.
 */
export const PRE_STOP_SECONDS = 5;
/** Slack after the server's own grace period, so kubelet's SIGKILL never cuts a drain that keeps to it. */
export const SHUTDOWN_MARGIN_SECONDS = 5;

export interface StatefulSetInputs {
  /** Resolved image reference. */
  image: string;
  /** Hash of the rendered server.yaml. */
  configHash: string;
}

/** preStop + the server's grace period + margin, in whole seconds. */
export function terminationGracePeriodSeconds(spec: PikoClusterSpec): number {
  return PRE_STOP_SECONDS + Math.ceil(parseDuration(spec.gracePeriod) / 1000) + SHUTDOWN_MARGIN_SECONDS;
}

const fieldEnv = (name: string, fieldPath: string): V1EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });

function env(cluster: PikoCluster, keys: ReturnType<typeof authKeys>): V1EnvVar[] {
  return [
    fieldEnv(ENV_POD_NAME, 'metadata.name'),
    fieldEnv(ENV_POD_NAMESPACE, 'metadata.namespace'),
    fieldEnv(ENV_POD_UID, 'metadata.uid'),
    fieldEnv(ENV_POD_IP, 'status.podIP'),
    {
      name: ENV_CLUSTER_SECRET,
      valueFrom: { secretKeyRef: { name: childNames(cluster).clusterSecret, key: CLUSTER_SECRET_KEY } },
    },
    ...authKeyEnv(keys),
    // After ours, so a value may refer to $(POD_IP) and the like.
    ...(cluster.spec.env ?? []).map((e) => ({ ...e })),
  ];
}

/**
 * HTTP probes on /ready and /health, unless the admin port wants a token or
 * a client certificate, which kubelet cannot present: then a TCP connect is
 * the best signal left.
 */
function probes(spec: PikoClusterSpec): { readiness: V1Probe; liveness: V1Probe } {
  const timing = {
    readiness: { periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
    liveness: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 },
  };
  if (spec.auth?.admin !== undefined || spec.tls?.admin?.clientCASecretRef !== undefined) {
    const tcp = { tcpSocket: { port: 'admin' } };
    return { readiness: { ...tcp, ...timing.readiness }, liveness: { ...tcp, ...timing.liveness } };
  }
  const scheme = spec.tls?.admin !== undefined ? 'HTTPS' : 'HTTP';
  return {
    readiness: { httpGet: { path: '/ready', port: 'admin', scheme }, ...timing.readiness },
    liveness: { httpGet: { path: '/health', port: 'admin', scheme }, ...timing.liveness },
  };
}

/** Quantities as the Kubernetes API types them (strings); a spec may hold numbers (`cpu: 1`). */
export function resourceRequirements(
  r: { requests?: Record<string, number | string>; limits?: Record<string, number | string> } | undefined,
): V1ResourceRequirements | undefined {
  if (r === undefined) return undefined;
  const strings = (m: Record<string, number | string> | undefined): Record<string, string> | undefined =>
    m === undefined ? undefined : Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
  const out: V1ResourceRequirements = {};
  const requests = strings(r.requests);
  const limits = strings(r.limits);
  if (requests !== undefined) out.requests = requests;
  if (limits !== undefined) out.limits = limits;
  return out;
}

function container(cluster: PikoCluster, inputs: StatefulSetInputs, mounts: V1VolumeMount[]): V1Container {
  const spec = cluster.spec;
  const keys = authKeys(spec);
  const { readiness, liveness } = probes(spec);
  const c: V1Container = {
    name: CONTAINER_NAME,
    image: inputs.image,
    imagePullPolicy: spec.image.pullPolicy,
    args: ['server', '--config.path', CONFIG_PATH, '--config.expand-env', ...authKeyArgs(keys)],
    ports: PORTS.map((name) => ({ name, containerPort: spec.ports[name], protocol: 'TCP' })),
    env: env(cluster, keys),
    readinessProbe: readiness,
    livenessProbe: liveness,
    lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SECONDS } } },
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: mounts,
  };
  const res = resourceRequirements(spec.resources);
  if (res !== undefined) c.resources = res;
  return c;
}

function scheduling(cluster: PikoCluster, pod: V1PodSpec): void {
  const s = cluster.spec.scheduling;
  if (s === undefined) return;
  if (s.nodeSelector !== undefined) pod.nodeSelector = { ...s.nodeSelector };
  if (s.tolerations !== undefined) pod.tolerations = structuredClone(s.tolerations);
  if (s.affinity !== undefined) pod.affinity = structuredClone(s.affinity);
  if (s.topologySpreadConstraints !== undefined) {
    // A constraint without a selector would count no pods at all.
    pod.topologySpreadConstraints = s.topologySpreadConstraints.map((t) => ({
      ...structuredClone(t),
      labelSelector: t.labelSelector ?? { matchLabels: selectorLabels(cluster) },
    }));
  }
  if (s.priorityClassName !== undefined) pod.priorityClassName = s.priorityClassName;
}

export function buildStatefulSet(cluster: PikoCluster, inputs: StatefulSetInputs): Desired<V1StatefulSet> {
  const spec = cluster.spec;
  const names = childNames(cluster);
  const tls = tlsFiles(spec);
  const volumes: V1Volume[] = [
    { name: 'config', configMap: { name: names.configMap, items: [{ key: CONFIG_FILE, path: CONFIG_FILE }] } },
    // The root filesystem is read-only; Node and libraries still expect a writable /tmp.
    { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
    ...tls.mounts.map((m) => m.volume),
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
    { name: 'tmp', mountPath: '/tmp' },
    ...tls.mounts.map((m) => m.mount),
  ];
  const pod: V1PodSpec = {
    serviceAccountName: names.serviceAccount,
    // The Kubernetes registry talks to the API server with this token.
    automountServiceAccountToken: true,
    // Service environment variables (PIKO_PROXY_PORT=tcp://...) would only
    // add noise next to the PIKO_* variables the server reads.
    enableServiceLinks: false,
    terminationGracePeriodSeconds: terminationGracePeriodSeconds(spec),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS_USER,
      runAsGroup: RUN_AS_USER,
      fsGroup: RUN_AS_USER,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [container(cluster, inputs, mounts)],
    volumes,
  };
  if (spec.image.pullSecrets !== undefined && spec.image.pullSecrets.length > 0) {
    pod.imagePullSecrets = spec.image.pullSecrets.map((s) => ({ name: s.name }));
  }
  scheduling(cluster, pod);

  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: childMeta(cluster, names.statefulSet),
    spec: {
      replicas: spec.replicas,
      serviceName: names.headlessService,
      // Pods share nothing on disk and find each other through the registry:
      // start and stop them all at once rather than one by one.
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      selector: { matchLabels: selectorLabels(cluster) },
      template: {
        metadata: {
          labels: { ...(spec.podLabels ?? {}), ...commonLabels(cluster) },
          annotations: {
            ...(spec.podAnnotations ?? {}),
            'kubectl.kubernetes.io/default-container': CONTAINER_NAME,
            [CONFIG_HASH_ANNOTATION]: inputs.configHash,
          },
        },
        spec: pod,
      },
    },
  };
}
