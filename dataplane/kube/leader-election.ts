/**
 * Leader election on a coordination.k8s.io Lease, as client-go's
 * leaderelection package does it:
 * - a candidate takes the Lease when it is free (no holder, released) or
 *   when its record has not changed for leaseDuration as measured on the
 *   candidate's own clock since it last saw it change (so clocks need not
 *   agree);
 * - the leader renews every retryPeriod and steps down when it has not
 *   renewed for renewDeadline, which is shorter than leaseDuration: it
 *   stops before anyone else may start;
 * - on a graceful stop the leader releases the Lease by deleting it, so a
 *   standby takes over within one retry period instead of a lease duration
 *   (it creates the Lease anew), and an uninstalled operator leaves no Lease
 *   behind (client-go empties the holder instead, which the real node's
 *   `helm uninstall` test caught left over).
 * Writes are conditional on resourceVersion, so two candidates cannot both
 * win a race.
 */
import { sleep } from '../time/backoff';
import type { Logger } from '../log/logger';
import { microTime, RESOURCES, type KubeClient, type ObjectMeta } from './client';
import { isApiError } from './errors';

export const LEADER_ELECTION_LEASE_NAME = 'piko-operator-leader';
export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/** client-go's JitterFactor: a candidate waits retryPeriod × [1, 2.2) between attempts, so candidates do not collide in step. */
const ACQUIRE_JITTER = 1.2;

export interface ElectionLease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: ObjectMeta & { name: string; namespace: string };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name?: string;
  /** Unique per replica: the pod name plus a random suffix. */
  identity: string;
  /**
   * The leader's Pod, which the Lease names as its owner while it leads: the
   * garbage collector then removes the Lease with the last leader's pod, as
   * when the chart is uninstalled, whose RBAC may be gone before the pod can
   * release it.
   */
  owner?: { name: string; uid: string };
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Called when this replica becomes the leader. */
  onStartedLeading(): void;
  /** Called at once when it stops being the leader, by losing the Lease or by stop(). */
  onStoppedLeading(): void;
  logger?: Logger;
  now?: () => number;
  random?: () => number;
}

export class LeaderElector {
  readonly identity: string;
  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private leading = false;
  /** The record as last seen, and when (our clock) it last changed. */
  private observed: { lease: ElectionLease; atMs: number } | undefined;

  constructor(private readonly options: LeaderElectionOptions) {
    this.client = options.client;
    this.namespace = options.namespace;
    this.name = options.name ?? LEADER_ELECTION_LEASE_NAME;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    if (!(this.renewDeadlineMs < this.leaseDurationMs)) throw new RangeError('renew deadline must be shorter than the lease duration');
    if (!(this.retryPeriodMs < this.renewDeadlineMs)) throw new RangeError('retry period must be shorter than the renew deadline');
    if (this.leaseDurationMs % 1000 !== 0) throw new RangeError('the lease duration must be whole seconds');
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.running ??= this.loop(this.abort.signal);
  }

  /**
   * Stops campaigning and renewing. With `release` (the default) a leader
   * also hands the Lease back; without it the Lease stays held until it
   * expires, as when the process is killed.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    const wasLeading = this.leading;
    this.abort.abort();
    await this.running;
    if (wasLeading && options.release !== false) await this.release();
  }

  private async loop(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        await this.acquire(signal);
        this.setLeading(true);
        await this.renew(signal);
        this.setLeading(false);
      }
    } catch (err) {
      if (!signal.aborted) this.options.logger?.error('leader election stopped', { error: String(err) });
    } finally {
      this.setLeading(false);
    }
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    if (leading) {
      this.options.logger?.info('became the leader', { lease: `${this.namespace}/${this.name}`, identity: this.identity });
      this.options.onStartedLeading();
    } else {
      this.options.logger?.info('stopped leading', { lease: `${this.namespace}/${this.name}`, identity: this.identity });
      this.options.onStoppedLeading();
    }
  }

  /** Returns once the Lease is ours; rejects when aborted. */
  private async acquire(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (await this.tryAcquireOrRenew(signal, this.renewDeadlineMs)) return;
      await sleep(this.retryPeriodMs * (1 + this.random() * ACQUIRE_JITTER), signal);
    }
  }

  /** Returns when leadership is lost; rejects when aborted. */
  private async renew(signal: AbortSignal): Promise<void> {
    let renewedAtMs = this.now();
    for (;;) {
      await sleep(this.retryPeriodMs, signal);
      const left = this.renewDeadlineMs - (this.now() - renewedAtMs);
      if (left > 0 && (await this.tryAcquireOrRenew(signal, left))) {
        renewedAtMs = this.now();
        continue;
      }
      if (this.heldByOther()) {
        this.options.logger?.warn('another replica holds the leader lease', { holder: this.holder() });
        return;
      }
      if (this.now() - renewedAtMs >= this.renewDeadlineMs) {
        this.options.logger?.warn('could not renew the leader lease in time', { renewDeadlineMs: this.renewDeadlineMs });
        return;
      }
    }
  }

  private holder(): string {
    return this.observed?.lease.spec?.holderIdentity ?? '';
  }

  /** Someone else holds the Lease and its record changed less than its duration ago. */
  private heldByOther(): boolean {
    const holder = this.holder();
    if (this.observed === undefined || holder === '' || holder === this.identity) return false;
    const seconds = this.observed.lease.spec?.leaseDurationSeconds ?? 0;
    return this.observed.atMs + seconds * 1000 > this.now();
  }

  private observe(lease: ElectionLease): void {
    if (this.observed?.lease.metadata.resourceVersion !== lease.metadata.resourceVersion) {
      this.observed = { lease, atMs: this.now() };
    }
  }

  /** One attempt; false when someone else holds the Lease or the write failed. */
  private async tryAcquireOrRenew(signal: AbortSignal, timeoutMs: number): Promise<boolean> {
    const requestSignal = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    const now = microTime(this.now());
    const spec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationMs / 1000,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    };
    try {
      const ownerReferences = this.options.owner
        ? [{ apiVersion: 'v1', kind: 'Pod', name: this.options.owner.name, uid: this.options.owner.uid }]
        : undefined;
      let current: ElectionLease;
      try {
        current = await this.client.get<ElectionLease>(RESOURCES.leases, this.namespace, this.name, { signal: requestSignal });
      } catch (err) {
        if (!isApiError(err, 'NOT_FOUND')) throw err;
        const fresh: ElectionLease = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.namespace, ...(ownerReferences ? { ownerReferences } : {}) },
          spec,
        };
        const created = await this.client.create<ElectionLease>(RESOURCES.leases, fresh, { signal: requestSignal });
        this.observe(created);
        return true;
      }
      this.observe(current);
      if (this.heldByOther()) return false;
      const previous = current.spec ?? {};
      const ours = previous.holderIdentity === this.identity;
      const next: ElectionLease = {
        ...current,
        metadata: { ...current.metadata, ...(ownerReferences ? { ownerReferences } : {}) },
        spec: {
          ...spec,
          acquireTime: ours ? (previous.acquireTime ?? now) : now,
          leaseTransitions: (previous.leaseTransitions ?? 0) + (ours || !previous.holderIdentity ? 0 : 1),
        },
      };
      this.observe(await this.client.update<ElectionLease>(RESOURCES.leases, next, { signal: requestSignal }));
      return true;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // A lost race (409) or an unreachable apiserver: the loops retry.
      if (!isApiError(err, 'CONFLICT')) {
        this.options.logger?.warn('leader lease request failed', { error: err instanceof Error ? err.message : String(err) });
      }
      return false;
    }
  }

  /**
   * Hands the Lease back by deleting it: a missing Lease is free for the taking
   * at once. The delete is conditional on the version we last wrote, so a Lease
   * someone took meanwhile is never removed.
   */
  private async release(): Promise<void> {
    let lease = this.observed?.lease;
    if (lease === undefined || lease.spec?.holderIdentity !== this.identity) return;
    const signal = AbortSignal.timeout(this.renewDeadlineMs);
    for (let attempt = 1; ; attempt++) {
      const { uid, resourceVersion } = lease.metadata ?? {};
      try {
        await this.client.delete(RESOURCES.leases, this.namespace, this.name, {
          signal,
          preconditions: { ...(uid ? { uid } : {}), ...(resourceVersion ? { resourceVersion } : {}) },
        });
        this.options.logger?.info('released the leader lease', { lease: `${this.namespace}/${this.name}` });
        return;
      } catch (err) {
        // A renewal that stop() aborted may still have reached the apiserver: the Lease moved on
        // under our own name. Read it again and release that version, once; anyone else's
        // version is left alone.
        if (attempt === 1 && isApiError(err, 'CONFLICT')) {
          const current = await this.client
            .get<ElectionLease>(RESOURCES.leases, this.namespace, this.name, { signal })
            .catch(() => undefined);
          if (current?.spec?.holderIdentity === this.identity) {
            lease = current;
            continue;
          }
        }
        // Someone renewed or took it meanwhile, or the apiserver is gone: it expires by itself.
        this.options.logger?.warn('could not release the leader lease', { error: err instanceof Error ? err.message : String(err) });
        return;
      }
    }
  }
}
