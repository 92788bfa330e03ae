/**
 * metav1.Condition helpers in cert-manager's style: a condition's
 * lastTransitionTime moves only when its status flips, so it says how long
 * the cluster has been Ready (or not), not when the operator last looked.
 */
import {
  CONDITION_MESSAGE_MAX,
  CONDITION_TYPES,
  type Condition,
  type ConditionStatus,
  type ConditionType,
} from '../api/pikocluster-status';
import type { ConditionReason } from './condition-reasons';

export interface ConditionInput {
  type: ConditionType;
  status: ConditionStatus;
  reason: ConditionReason;
  message: string;
}

/** metav1.Time's wire form: RFC 3339 in UTC, whole seconds. */
export function formatTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function getCondition(conditions: readonly Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: ConditionType): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

/**
 * A new list with `input` set: the same type is replaced in place (others
 * kept, Ready/Progressing/Degraded order for new ones), lastTransitionTime
 * kept unless the status changed. The input list is not modified.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  observedGeneration: number,
  now: Date,
): Condition[] {
  const previous = getCondition(conditions, input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration,
    lastTransitionTime: previous !== undefined && previous.status === input.status ? previous.lastTransitionTime : formatTime(now),
    reason: input.reason,
    message: truncate(input.message),
  };
  const list = (conditions ?? []).filter((c) => c.type !== input.type);
  const at = (conditions ?? []).findIndex((c) => c.type === input.type);
  if (at >= 0) {
    list.splice(at, 0, next);
    return list;
  }
  list.push(next);
  return list.sort((a, b) => rank(a.type) - rank(b.type));
}

// Known types first in their fixed order; others after, in their existing order (sort is stable).
function rank(type: string): number {
  const i = (CONDITION_TYPES as readonly string[]).indexOf(type);
  return i < 0 ? CONDITION_TYPES.length : i;
}

function truncate(message: string): string {
  return message.length <= CONDITION_MESSAGE_MAX ? message : `${message.slice(0, CONDITION_MESSAGE_MAX - 3)}...`;
}
