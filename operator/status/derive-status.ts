/**
 * A PikoCluster's status as a pure function of what the reconciler observed.
 *
 * Conditions:
 * - Spec problems (validateSpec, or a missing Secret the reconciler found):
 *   Ready=False, Progressing=False and Degraded=True, all with the first
 *   problem's reason, which names the field. Nothing rolls out until the
 *   spec is fixed.
 * - Otherwise the StatefulSet decides. It is settled when its controller has
 *   seen its latest generation, every pod runs the update revision, it has
 *   spec.replicas pods and all are ready. Settled: Ready=True
 *   (AllReplicasReady, or ScaledToZero) and Progressing=False
 *   (RolloutComplete). Not settled: Ready=False and Progressing=True, both
 *   with the first unmet step as reason: Creating (no StatefulSet yet),
 *   Pending (not observed), RollingUpdate, Scaling, WaitingForReadyReplicas.
 * - Degraded=True when a pod cannot run: a container waiting in
 *   CrashLoopBackOff, ImagePullBackOff, ErrImagePull, InvalidImageName,
 *   CreateContainerConfigError (such as a missing Secret key),
 *   CreateContainerError or RunContainerError, or a pod the scheduler cannot
 *   place (Unschedulable); the reason is that one. Else Degraded=False
 *   (AsExpected). Progressing stays True meanwhile, as Kubernetes keeps
 *   retrying.
 *
 * Counts: endpoints and upstreams add up the registry's nodes that are pods
 * of this cluster; when the registry could not be read they keep their last
 * values rather than drop to zero.
 */
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import type { NodeSummary, PikoClusterStatus } from '../api/pikocluster-status';
import type { NodeRecord } from '../../dataplane/registry/cluster-registry';
import { selectorString } from '../builders/names';
import { exposureUrls } from '../builders/exposure-urls';
import { setCondition, type ConditionInput } from './conditions';
import { isPodWaitingFailure, type PodFailureReason, type RolloutReason, type SpecProblemReason } from './condition-reasons';

/** What deriveStatus needs of a registry node. */
export type RegistryNodeView = Pick<NodeRecord, 'id' | 'endpoints'>;

export interface StatusProblem {
  reason: SpecProblemReason;
  message: string;
  /**
   * The problem may clear with no spec change (a Secret created later, a
   * refusal a freed node port lifts), so the reconciler looks again; a bad
   * field waits for the spec change that wakes it anyway.
   */
  retryable?: boolean;
}

export interface ObservedState {
  statefulSet?: V1StatefulSet;
  /** The cluster's pods; undefined when not listed. */
  pods?: readonly V1Pod[];
  /** Nodes in the registry; undefined when it could not be read. */
  registryNodes?: readonly RegistryNodeView[];
  /** Spec problems, from validateSpec and from reads (missing Secrets). */
  problems?: readonly StatusProblem[];
  /** ca.crt of the upstream port's TLS Secret; undefined without one. */
  upstreamCA?: string;
}

interface Step<R> {
  reason: R;
  message: string;
}

/** The first unmet step of the rollout, or undefined when settled. */
function rolloutStep(sts: V1StatefulSet | undefined, desired: number): Step<RolloutReason> | undefined {
  if (sts === undefined) return { reason: 'Creating', message: 'the StatefulSet does not exist yet' };
  const st = sts.status;
  if ((st?.observedGeneration ?? 0) < (sts.metadata?.generation ?? 0)) {
    return { reason: 'Pending', message: 'the StatefulSet controller has not yet observed the latest StatefulSet' };
  }
  const replicas = st?.replicas ?? 0;
  const updated = st?.updatedReplicas ?? 0;
  const ready = st?.readyReplicas ?? 0;
  if ((st?.updateRevision !== undefined && st.currentRevision !== st.updateRevision) || updated < Math.min(replicas, desired)) {
    return { reason: 'RollingUpdate', message: `${updated} of ${desired} pods run the current spec` };
  }
  if (replicas !== desired) return { reason: 'Scaling', message: `${replicas} pods, ${desired} wanted` };
  if (ready < desired) return { reason: 'WaitingForReadyReplicas', message: `${ready}/${desired} pods ready` };
  return undefined;
}

const podName = (pod: V1Pod): string => pod.metadata?.name ?? '';

function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** The first pod that cannot run, and how many more cannot. */
function podFailure(pods: readonly V1Pod[]): Step<PodFailureReason> | undefined {
  const failures: Step<PodFailureReason>[] = [];
  for (const pod of [...pods].sort((a, b) => podName(a).localeCompare(podName(b)))) {
    if (pod.metadata?.deletionTimestamp !== undefined) continue;
    const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
    const waiting = statuses.find((s) => isPodWaitingFailure(s.state?.waiting?.reason ?? ''));
    const reason = waiting?.state?.waiting?.reason ?? '';
    if (waiting !== undefined && isPodWaitingFailure(reason)) {
      failures.push({
        reason,
        message: `pod ${podName(pod)} container ${waiting.name}: ${waiting.state?.waiting?.message ?? reason}`,
      });
      continue;
    }
    const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      failures.push({ reason: 'Unschedulable', message: `pod ${podName(pod)}: ${scheduled.message ?? 'cannot be scheduled'}` });
    }
  }
  const [first] = failures;
  if (first === undefined) return undefined;
  const more = failures.length - 1;
  return more === 0 ? first : { reason: first.reason, message: `${first.message} (and ${more} more pod${more === 1 ? '' : 's'})` };
}

function nodeCounts(node: RegistryNodeView): { endpoints: number; upstreams: number } {
  let endpoints = 0;
  let upstreams = 0;
  for (const count of Object.values(node.endpoints)) {
    if (count <= 0) continue;
    endpoints++;
    upstreams += count;
  }
  return { endpoints, upstreams };
}

function conditionsFor(cluster: PikoCluster, observed: ObservedState): ConditionInput[] {
  const problems = observed.problems ?? [];
  const [problem] = problems;
  if (problem !== undefined) {
    const message = problems.map((p) => p.message).join('; ');
    return [
      { type: 'Ready', status: 'False', reason: problem.reason, message },
      { type: 'Progressing', status: 'False', reason: problem.reason, message: 'waiting for the spec to be fixed' },
      { type: 'Degraded', status: 'True', reason: problem.reason, message },
    ];
  }
  const desired = cluster.spec.replicas;
  const step = rolloutStep(observed.statefulSet, desired);
  const failure = podFailure(observed.pods ?? []);
  const ready = observed.statefulSet?.status?.readyReplicas ?? 0;
  return [
    step === undefined
      ? {
          type: 'Ready',
          status: 'True',
          reason: desired === 0 ? 'ScaledToZero' : 'AllReplicasReady',
          message: `${ready}/${desired} pods ready`,
        }
      : { type: 'Ready', status: 'False', ...step },
    step === undefined
      ? { type: 'Progressing', status: 'False', reason: 'RolloutComplete', message: 'every pod runs the current spec' }
      : { type: 'Progressing', status: 'True', ...step },
    failure === undefined
      ? { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no pod is failing' }
      : { type: 'Degraded', status: 'True', ...failure },
  ];
}

export function deriveStatus(cluster: PikoCluster, observed: ObservedState, now: Date): PikoClusterStatus {
  const generation = cluster.metadata.generation ?? 0;
  const previous = cluster.status;
  let conditions = previous?.conditions;
  for (const input of conditionsFor(cluster, observed)) conditions = setCondition(conditions, input, generation, now);

  const podNames = observed.pods === undefined ? undefined : new Set(observed.pods.map(podName));
  const registry = observed.registryNodes?.filter((n) => podNames === undefined || podNames.has(n.id));
  const counts = new Map((registry ?? []).map((n) => [n.id, nodeCounts(n)]));
  const endpointIds = new Set<string>();
  for (const node of registry ?? []) {
    for (const [id, count] of Object.entries(node.endpoints)) if (count > 0) endpointIds.add(id);
  }

  const status: PikoClusterStatus = {
    observedGeneration: generation,
    conditions: conditions ?? [],
    replicas: observed.statefulSet?.status?.replicas ?? 0,
    readyReplicas: observed.statefulSet?.status?.readyReplicas ?? 0,
    endpoints: registry === undefined ? (previous?.endpoints ?? 0) : endpointIds.size,
    upstreams: registry === undefined ? (previous?.upstreams ?? 0) : [...counts.values()].reduce((a, c) => a + c.upstreams, 0),
    selector: selectorString(cluster),
  };
  const urls = exposureUrls(cluster);
  if (urls !== undefined) status.urls = urls;
  if (observed.upstreamCA !== undefined) status.upstreamCA = observed.upstreamCA;
  if (observed.pods !== undefined) {
    const before = new Map((previous?.nodes ?? []).map((n) => [n.name, n]));
    status.nodes = [...observed.pods]
      .sort((a, b) => podName(a).localeCompare(podName(b)))
      .map((pod): NodeSummary => {
        const name = podName(pod);
        const c = registry === undefined ? before.get(name) : counts.get(name);
        return { name, ready: isPodReady(pod), endpoints: c?.endpoints ?? 0, upstreams: c?.upstreams ?? 0 };
      });
  }
  return status;
}
