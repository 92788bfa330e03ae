/**
 * Spec mistakes the CRD schema cannot refuse: map keys (labels,
 * annotations), the inside of fields stored as given (tolerations, topology
 * spread), durations too large for Go, budgets that block every eviction.
 * Each problem names its field; the reconciler reports the first as
 * Ready=False and builds nothing from a spec with problems. Whatever needs a
 * read (does the referenced Secret exist?) is the reconciler's, not this.
 */
import { DurationError, parseDuration } from '../../dataplane/config/duration';
import type { PikoCluster } from '../api/pikocluster';
import { isLabelValue, isQualifiedKey } from '../api/k8s-patterns';
import { CONFIG_HASH_ANNOTATION, RESERVED_LABELS } from './names';
import { PORTS } from './pod-paths';

export interface SpecProblem {
  /** Path of the offending field, such as `spec.podLabels["app.kubernetes.io/name"]`. */
  field: string;
  /** Condition reason naming the field: `Invalid` + the path in PascalCase (`InvalidPodLabels`). */
  reason: `Invalid${string}`;
  message: string;
}

/** `spec.podLabels["x"]` → `InvalidPodLabels`: `Invalid` and the path in PascalCase, without `spec.`, indices or keys. */
export function reasonForField(field: string): `Invalid${string}` {
  const words = field
    .replace(/\[[^\]]*\]/g, '')
    .split('.')
    .filter((w) => w !== '' && w !== 'spec');
  return `Invalid${words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('')}`;
}

const TOLERATION_OPERATORS = ['Exists', 'Equal'];
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
const WHEN_UNSATISFIABLE = ['DoNotSchedule', 'ScheduleAnyway'];

class Problems {
  readonly list: SpecProblem[] = [];

  add(field: string, message: string, reasonField = field): void {
    this.list.push({ field, reason: reasonForField(reasonField), message: `${field}: ${message}` });
  }
}

export function validateSpec(cluster: PikoCluster): SpecProblem[] {
  const p = new Problems();
  const spec = cluster.spec;

  labels(p, 'spec.podLabels', spec.podLabels, true);
  annotations(p, 'spec.podAnnotations', spec.podAnnotations, [CONFIG_HASH_ANNOTATION]);
  for (const port of ['proxy', 'upstream'] as const) {
    annotations(p, `spec.services.${port}.annotations`, spec.services[port].annotations, []);
  }
  labels(p, 'spec.scheduling.nodeSelector', spec.scheduling?.nodeSelector, false);
  labels(p, 'spec.monitoring.podMonitor.labels', spec.monitoring.podMonitor.labels, true);
  tolerations(p, spec.scheduling?.tolerations);
  envSources(p, spec.env);
  topologySpread(p, spec.scheduling?.topologySpreadConstraints);

  const durations: [string, string | undefined][] = [
    ['spec.proxyTimeout', spec.proxyTimeout],
    ['spec.upstreamWait', spec.upstreamWait],
    ['spec.gracePeriod', spec.gracePeriod],
    ['spec.registry.leaseDuration', spec.registry.leaseDuration],
    ['spec.registry.renewInterval', spec.registry.renewInterval],
    ['spec.monitoring.podMonitor.interval', spec.monitoring.podMonitor.interval],
  ];
  for (const port of PORTS) {
    const jwks = spec.auth?.[port]?.jwks;
    if (jwks === undefined) continue;
    durations.push([`spec.auth.${port}.jwks.cacheTTL`, jwks.cacheTTL], [`spec.auth.${port}.jwks.timeout`, jwks.timeout]);
    if (!URL.canParse(jwks.url)) p.add(`spec.auth.${port}.jwks.url`, `${JSON.stringify(jwks.url)} is not a URL`);
  }
  for (const [field, value] of durations) {
    if (value === undefined) continue;
    try {
      parseDuration(value);
    } catch (err) {
      if (!(err instanceof DurationError)) throw err;
      p.add(field, `${JSON.stringify(value)} is not a duration the server accepts (${err.message})`);
    }
  }

  const pdb = spec.podDisruptionBudget;
  if (pdb.enabled && spec.replicas > 0 && (pdb.maxUnavailable === 0 || pdb.maxUnavailable === '0%')) {
    p.add(
      'spec.podDisruptionBudget.maxUnavailable',
      'a budget of 0 blocks every voluntary eviction, so node drains never finish; allow at least 1, or set enabled: false',
    );
  }
  return p.list;
}

function labels(p: Problems, field: string, map: Record<string, string> | undefined, reserved: boolean): void {
  for (const [key, value] of Object.entries(map ?? {})) {
    const at = `${field}[${JSON.stringify(key)}]`;
    if (!isQualifiedKey(key)) p.add(at, 'is not a valid label key', field);
    else if (reserved && RESERVED_LABELS.includes(key)) p.add(at, 'is set by the operator (it selects the pods)', field);
    if (!isLabelValue(value)) p.add(at, `${JSON.stringify(value)} is not a valid label value`, field);
  }
}

function annotations(p: Problems, field: string, map: Record<string, string> | undefined, reserved: readonly string[]): void {
  for (const key of Object.keys(map ?? {})) {
    const at = `${field}[${JSON.stringify(key)}]`;
    if (!isQualifiedKey(key)) p.add(at, 'is not a valid annotation key', field);
    else if (reserved.includes(key)) p.add(at, 'is set by the operator', field);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function tolerations(p: Problems, list: readonly unknown[] | undefined): void {
  const field = 'spec.scheduling.tolerations';
  (list ?? []).forEach((t, i) => {
    const at = `${field}[${i}]`;
    if (!isRecord(t)) return p.add(at, 'must be a Toleration object', field);
    const operator = t['operator'] ?? 'Equal';
    if (typeof operator !== 'string' || !TOLERATION_OPERATORS.includes(operator)) {
      p.add(`${at}.operator`, 'must be Exists or Equal', field);
    } else if (operator === 'Exists' && t['value'] !== undefined && t['value'] !== '') {
      p.add(`${at}.value`, 'must be empty with operator Exists', field);
    }
    const effect = t['effect'];
    if (effect !== undefined && effect !== '' && (typeof effect !== 'string' || !TAINT_EFFECTS.includes(effect))) {
      p.add(`${at}.effect`, `must be one of ${TAINT_EFFECTS.join(', ')}`, field);
    }
  });
}

// What each kind of EnvVarSource must name.
const ENV_SOURCES: Record<string, readonly string[]> = {
  secretKeyRef: ['name', 'key'],
  configMapKeyRef: ['name', 'key'],
  fieldRef: ['fieldPath'],
  resourceFieldRef: ['resource'],
};

/** valueFrom is stored as given; what the StatefulSet would be refused for is named here instead. */
function envSources(p: Problems, list: PikoCluster['spec']['env']): void {
  const field = 'spec.env';
  (list ?? []).forEach((e, i) => {
    if (e.valueFrom === undefined) return;
    const at = `${field}[${i}].valueFrom`;
    const source: unknown = e.valueFrom;
    const kinds = isRecord(source) ? Object.keys(source) : [];
    const [kind] = kinds;
    if (!isRecord(source) || kinds.length !== 1 || kind === undefined || !(kind in ENV_SOURCES)) {
      return p.add(at, `must name exactly one of ${Object.keys(ENV_SOURCES).join(', ')}`, field);
    }
    const ref = source[kind];
    for (const key of ENV_SOURCES[kind] ?? []) {
      if (!isRecord(ref) || typeof ref[key] !== 'string' || ref[key] === '') p.add(`${at}.${kind}.${key}`, 'is required', field);
    }
  });
}

function topologySpread(p: Problems, list: readonly unknown[] | undefined): void {
  const field = 'spec.scheduling.topologySpreadConstraints';
  (list ?? []).forEach((c, i) => {
    const at = `${field}[${i}]`;
    if (!isRecord(c)) return p.add(at, 'must be a TopologySpreadConstraint object', field);
    const maxSkew = c['maxSkew'];
    if (typeof maxSkew !== 'number' || !Number.isInteger(maxSkew) || maxSkew < 1) {
      p.add(`${at}.maxSkew`, 'must be an integer of at least 1', field);
    }
    if (typeof c['topologyKey'] !== 'string' || c['topologyKey'] === '') p.add(`${at}.topologyKey`, 'is required', field);
    const when = c['whenUnsatisfiable'];
    if (typeof when !== 'string' || !WHEN_UNSATISFIABLE.includes(when)) {
      p.add(`${at}.whenUnsatisfiable`, `must be ${WHEN_UNSATISFIABLE.join(' or ')}`, field);
    }
  });
}
