/**
 * What the injector does to one pod, as pure data: the agent as a native sidecar (an init
 * container with restartPolicy Always) configured from the pod's annotations and its PikoCluster,
 * or the reason the pod is refused. The webhook server (admission-server.ts) only carries this to
 * and from the apiserver.
 */
import type { V1Container, V1Pod, V1SecurityContext, V1Volume } from '@kubernetes/client-node';
import { serviceAccountAudience } from '../../dataplane/auth/service-account-audience';
import { parseListenSpecs, type ListenSpec } from '../../dataplane/config/listen-spec';
import { LOG_LEVELS, type LogLevel } from '../../dataplane/log/logger';
import type { PikoCluster } from '../api/pikocluster';
import type { ServiceAccountRuleSpec } from '../api/spec-auth';
import { IMAGE_DIGEST, IMAGE_REPOSITORY, IMAGE_TAG } from '../api/k8s-patterns';
import { resolveImage } from '../builders/image';
import { childNames } from '../builders/names';
import { RUN_AS_USER } from '../builders/pod-paths';
import { resourceRequirements } from '../builders/stateful-set';

export const ANNOTATION_CLUSTER = 'piko.dev/cluster';
export const ANNOTATION_LISTENERS = 'piko.dev/listeners';
export const ANNOTATION_LOG_LEVEL = 'piko.dev/agent-log-level';
export const ANNOTATION_IMAGE = 'piko.dev/agent-image';
/** The namespace label that turns injection on. */
export const INJECTION_LABEL = 'piko.dev/injection';
export const AGENT_CONTAINER = 'piko-agent';
export const TOKEN_VOLUME = 'piko-agent-token';
export const TOKEN_DIR = '/var/run/secrets/piko.dev/serviceaccount';
/**
 * The CA that verifies the upstream port, on the pod itself: the agent's namespace cannot
 * mount the PikoCluster's Secret, but a downward API volume can hold one of the pod's own
 * annotations as a file (and follows it if it changes).
 */
export const ANNOTATION_UPSTREAM_CA = 'piko.dev/upstream-ca';
export const CA_VOLUME = 'piko-agent-ca';
export const CA_DIR = '/var/run/secrets/piko.dev/upstream-ca';

export type JsonPatchOp = { op: 'add' | 'replace'; path: string; value: unknown };

export type InjectionResult =
  | { kind: 'skip' }
  | { kind: 'unchanged' }
  | { kind: 'patch'; patch: JsonPatchOp[]; cluster: string; endpoints: string[] }
  | { kind: 'deny'; message: string };

export interface InjectionContext {
  /** The namespace of the pod (the admission request's; a pod being created may not carry one yet). */
  namespace: string;
  /** The PikoCluster from the operator's cache, or undefined when there is none of that name. */
  lookup(namespace: string, name: string): PikoCluster | undefined;
  /** The operator's own data-plane image, for clusters that name none. */
  defaultImage: string;
}

const deny = (annotation: string, message: string): InjectionResult => ({ kind: 'deny', message: `${annotation}: ${message}` });
const IMAGE = new RegExp(`^${IMAGE_REPOSITORY.slice(1, -1)}(:${IMAGE_TAG.slice(1, -1)})?(@${IMAGE_DIGEST.slice(1, -1)})?$`);
const K8S_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The injection for a pod: skipped without the cluster annotation, refused with a message naming
 * the annotation at fault, else the patch that leaves the pod with exactly one agent (none when
 * it already has that agent, so a second pass, a reinvocation or a rollout restart change nothing).
 */
export function injectAgent(pod: V1Pod, ctx: InjectionContext): InjectionResult {
  const annotations = pod.metadata?.annotations ?? {};
  const clusterRef = annotations[ANNOTATION_CLUSTER];
  if (clusterRef === undefined) return { kind: 'skip' };

  const ref = clusterRef.includes('/') ? clusterRef.split('/') : [ctx.namespace, clusterRef];
  const [clusterNs, clusterName] = ref;
  if (ref.length !== 2 || !clusterNs || !clusterName || !K8S_NAME.test(clusterNs) || !K8S_NAME.test(clusterName)) {
    return deny(ANNOTATION_CLUSTER, `${JSON.stringify(clusterRef)} is not <namespace>/<name> of a PikoCluster`);
  }
  const cluster = ctx.lookup(clusterNs, clusterName);
  if (cluster === undefined) return deny(ANNOTATION_CLUSTER, `PikoCluster ${clusterNs}/${clusterName} not found`);

  const listenersText = annotations[ANNOTATION_LISTENERS];
  if (listenersText === undefined || listenersText.trim() === '') {
    return deny(ANNOTATION_LISTENERS, 'required with piko.dev/cluster: <endpoint>=<port>[/http|/tcp][,...]');
  }
  const listeners = parseListenSpecs([listenersText], { portOnly: true });
  if ('problem' in listeners) return deny(ANNOTATION_LISTENERS, listeners.problem);
  if (listeners.length === 0) return deny(ANNOTATION_LISTENERS, 'lists no endpoint');

  const logLevel = annotations[ANNOTATION_LOG_LEVEL] ?? cluster.spec.agent.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    return deny(ANNOTATION_LOG_LEVEL, `${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const imageOverride = annotations[ANNOTATION_IMAGE];
  if (imageOverride !== undefined && !IMAGE.test(imageOverride)) {
    return deny(ANNOTATION_IMAGE, `${JSON.stringify(imageOverride)} is not an image reference`);
  }

  // Over TLS the agent verifies the port against the CA in the cluster's status (the system's roots when empty).
  const upstreamCA = cluster.spec.tls?.upstream === undefined ? undefined : cluster.status?.upstreamCA;
  if (cluster.spec.tls?.upstream !== undefined && upstreamCA === undefined) {
    // Admitted now, the agent would never learn the CA: its pod spec cannot change. Its controller retries.
    return deny(
      ANNOTATION_CLUSTER,
      `PikoCluster ${clusterNs}/${clusterName} serves its upstream port over TLS and has not yet published the CA of ${cluster.spec.tls.upstream.secretName} (status.upstreamCA); retry`,
    );
  }
  const upstreamAuth = cluster.spec.auth?.upstream;
  const rules = upstreamAuth?.serviceAccounts ?? [];
  const serviceAccount = pod.spec?.serviceAccountName || 'default';
  if (upstreamAuth !== undefined && rules.length === 0) {
    return deny(
      ANNOTATION_CLUSTER,
      `PikoCluster ${clusterNs}/${clusterName} admits agents by JWT only; an injected agent presents its ServiceAccount token, so add ${ctx.namespace}/${serviceAccount} to spec.auth.upstream.serviceAccounts`,
    );
  }
  if (rules.length > 0) {
    const refused = listeners.find((l) => !permits(rules, ctx.namespace, serviceAccount, l.endpointId));
    if (refused !== undefined) {
      return deny(
        ANNOTATION_LISTENERS,
        `ServiceAccount ${ctx.namespace}/${serviceAccount} may not listen on endpoint ${JSON.stringify(refused.endpointId)} of PikoCluster ${clusterNs}/${clusterName} (spec.auth.upstream.serviceAccounts)`,
      );
    }
  }

  const pinnedCA = upstreamCA === '' ? undefined : upstreamCA;
  const agent = agentContainer(cluster, listeners, {
    image: imageOverride ?? agentImage(cluster, ctx.defaultImage),
    logLevel: logLevel as LogLevel,
    withToken: rules.length > 0,
    withCA: pinnedCA !== undefined,
  });
  const volumes = [...(rules.length > 0 ? [tokenVolume(cluster)] : []), ...(pinnedCA !== undefined ? [CA_VOLUME_SPEC] : [])];
  const patch = patchFor(pod, agent, volumes, pinnedCA);
  const endpoints = listeners.map((l) => l.endpointId);
  return patch.length === 0 ? { kind: 'unchanged' } : { kind: 'patch', patch, cluster: `${clusterNs}/${clusterName}`, endpoints };
}

function permits(rules: readonly ServiceAccountRuleSpec[], namespace: string, name: string, endpointId: string): boolean {
  return rules.some(
    (r) =>
      r.namespace === namespace &&
      (r.name === undefined || r.name === name) &&
      ((r.endpoints ?? []).includes(endpointId) || (r.endpointPrefix !== undefined && endpointId.startsWith(r.endpointPrefix))),
  );
}

function agentImage(cluster: PikoCluster, defaultImage: string): string {
  const dataPlane = resolveImage(cluster.spec.image, defaultImage);
  const own = cluster.spec.agent.image;
  return own === undefined ? dataPlane : resolveImage({ ...cluster.spec.image, ...own }, dataPlane);
}

const DEFAULT_SECURITY_CONTEXT: V1SecurityContext = {
  runAsNonRoot: true,
  runAsUser: RUN_AS_USER,
  runAsGroup: RUN_AS_USER,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function agentContainer(
  cluster: PikoCluster,
  listeners: readonly ListenSpec[],
  o: { image: string; logLevel: LogLevel; withToken: boolean; withCA: boolean },
): V1Container {
  const { namespace, name } = cluster.metadata;
  const port = cluster.spec.services.upstream.port ?? cluster.spec.ports.upstream;
  const scheme = cluster.spec.tls?.upstream === undefined ? 'http' : 'https';
  const args = [
    'agent',
    'start',
    `--connect.url=${scheme}://${childNames(cluster).upstreamService}.${namespace}.svc:${port}`,
    `--listen=${listeners.map((l) => `${l.endpointId}=${l.addr}/${l.protocol}`).join(',')}`,
    `--log.level=${o.logLevel}`,
  ];
  if (o.withToken) args.push(`--connect.token-file=${TOKEN_DIR}/token`);
  if (o.withCA) args.push(`--connect.tls.root-cas=${CA_DIR}/ca.crt`);
  const c: V1Container = {
    name: AGENT_CONTAINER,
    image: o.image,
    imagePullPolicy: cluster.spec.image.pullPolicy,
    // A native sidecar: started before the app containers, restarted when it exits, stopped after them.
    restartPolicy: 'Always',
    args,
    env: [{ name: 'PIKO_CLUSTER', value: `${namespace}/${name}` }],
    securityContext: cluster.spec.agent.securityContext ?? DEFAULT_SECURITY_CONTEXT,
  };
  const resources = resourceRequirements(cluster.spec.agent.resources);
  if (resources !== undefined) c.resources = resources;
  const mounts = [
    ...(o.withToken ? [{ name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true }] : []),
    ...(o.withCA ? [{ name: CA_VOLUME, mountPath: CA_DIR, readOnly: true }] : []),
  ];
  if (mounts.length > 0) c.volumeMounts = mounts;
  return c;
}

const CA_VOLUME_SPEC: V1Volume = {
  name: CA_VOLUME,
  downwardAPI: {
    defaultMode: 0o444,
    items: [{ path: 'ca.crt', fieldRef: { fieldPath: `metadata.annotations['${ANNOTATION_UPSTREAM_CA}']` } }],
  },
};

function tokenVolume(cluster: PikoCluster): V1Volume {
  const { namespace, name } = cluster.metadata;
  return {
    name: TOKEN_VOLUME,
    projected: {
      // Readable by the agent whatever user the pod's other containers run as; it is the pod's own identity.
      defaultMode: 0o444,
      sources: [
        {
          serviceAccountToken: {
            audience: serviceAccountAudience(namespace, name),
            expirationSeconds: cluster.spec.agent.tokenExpirationSeconds,
            path: 'token',
          },
        },
      ],
    },
  };
}

/** Replaces the pod's agent, its volumes and CA annotation with these, or adds them; no op when they are already so. */
function patchFor(pod: V1Pod, agent: V1Container, agentVolumes: readonly V1Volume[], upstreamCA: string | undefined): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const annotations = pod.metadata?.annotations ?? {};
  if (upstreamCA !== undefined && annotations[ANNOTATION_UPSTREAM_CA] !== upstreamCA) {
    // The pod has annotations: the cluster's is what brought it here.
    ops.push({
      op: 'add',
      path: `/metadata/annotations/${ANNOTATION_UPSTREAM_CA.replace(/~/g, '~0').replace(/\//g, '~1')}`,
      value: upstreamCA,
    });
  }
  const inits = pod.spec?.initContainers ?? [];
  // After the pod's own init containers, which may prepare what the endpoint serves.
  const wantedInits = [...inits.filter((c) => c.name !== AGENT_CONTAINER), agent];
  if (!sameJson(inits, wantedInits)) {
    ops.push({ op: pod.spec?.initContainers === undefined ? 'add' : 'replace', path: '/spec/initContainers', value: wantedInits });
  }
  const volumes = pod.spec?.volumes ?? [];
  const wantedVolumes = [...volumes.filter((v) => v.name !== TOKEN_VOLUME && v.name !== CA_VOLUME), ...agentVolumes];
  if (!sameJson(volumes, wantedVolumes)) {
    ops.push({ op: pod.spec?.volumes === undefined ? 'add' : 'replace', path: '/spec/volumes', value: wantedVolumes });
  }
  return ops;
}

/**
 * Equal as the apiserver would store them. A pod that comes back to us (reinvocation) has had
 * its defaults filled in (terminationMessagePath, a volume's defaultMode...), so compare only
 * the fields we set, each against what the pod holds.
 */
function sameJson(have: readonly object[], want: readonly object[]): boolean {
  if (have.length !== want.length) return false;
  return want.every((w, i) => contains(have[i], w));
}

function contains(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) return Array.isArray(have) && have.length === want.length && want.every((w, i) => contains(have[i], w));
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object') return false;
    return Object.entries(want).every(([k, v]) => contains((have as Record<string, unknown>)[k], v));
  }
  return have === want;
}
