/**
 * Whether two statuses say the same thing, so the reconciler writes status
 * only when it changed (a write bumps resourceVersion and wakes every
 * watcher, ourselves included). Key order and absent-versus-undefined do not
 * count; list order does (conditions and nodes are built in a fixed order).
 */
import type { PikoClusterStatus } from '../api/pikocluster-status';

export function statusEqual(a: PikoClusterStatus | undefined, b: PikoClusterStatus | undefined): boolean {
  return canonical(a ?? {}) === canonical(b ?? {});
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const record = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort()
        .map((k) => [k, record[k]]),
    );
  });
}
