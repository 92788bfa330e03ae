/**
 * Every reason a PikoCluster's conditions can carry, in one place: they are
 * API (what `kubectl describe` shows and what users alert on), so a new one
 * is a deliberate change here, not a string typed where it is produced.
 */

/** A rollout step not yet done: Ready=False and Progressing=True. */
export type RolloutReason = 'Creating' | 'Pending' | 'RollingUpdate' | 'Scaling' | 'WaitingForReadyReplicas';

/** Everything as wanted: Ready=True, Progressing=False, Degraded=False. */
export type SettledReason = 'AllReplicasReady' | 'ScaledToZero' | 'RolloutComplete' | 'AsExpected';

/** Container waiting reasons (the kubelet's) that mean a pod cannot run, so Degraded=True. */
export const POD_WAITING_FAILURES = [
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
] as const;

export type PodFailureReason = (typeof POD_WAITING_FAILURES)[number] | 'Unschedulable';

const WAITING_FAILURES: ReadonlySet<string> = new Set(POD_WAITING_FAILURES);

export function isPodWaitingFailure(reason: string): reason is (typeof POD_WAITING_FAILURES)[number] {
  return WAITING_FAILURES.has(reason);
}

/**
 * The spec cannot be rolled out as it is: a field that is invalid
 * (`Invalid` and its path in PascalCase, as `InvalidPodLabels`), a Secret
 * it names that does not exist, or a child the apiserver refused
 * (`ServiceRejected`: the kind and `Rejected`), or an optional API the
 * spec needs that the apiserver does not serve (`GatewayAPINotInstalled`).
 */
export type SpecProblemReason = `Invalid${string}` | 'SecretNotFound' | `${string}Rejected` | 'TokenReviewUnavailable' | OptionalApiReason;

/** One per optional API (operator/builders/desired-children.ts). */
export type OptionalApiReason = 'GatewayAPINotInstalled' | 'CertManagerNotInstalled' | 'PrometheusOperatorNotInstalled';

export type ConditionReason = RolloutReason | SettledReason | PodFailureReason | SpecProblemReason;
