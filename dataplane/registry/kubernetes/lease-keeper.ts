/**
 * This node's liveness: a Lease applied at start and renewed every renew
 * interval (docs/registry-design.md §3.3). A failed renewal is retried
 * sooner, never later than the next regular renewal, and never throws.
 */
import { Backoff } from '../../time/backoff';
import { RESOURCES, type KubeClient, type OwnerReference } from '../../kube/client';
import { resultOf, type KubernetesRegistryMetrics } from './metrics';
import { buildLease, leaseName, nodeKey, type LeaseObject } from './objects';
import type { RecordSigner } from './record-signature';
import { clampDelay } from '../../time/timer';

export interface LeaseKeeperOptions {
  client: Pick<KubeClient, 'apply' | 'delete'>;
  namespace: string;
  cluster: string;
  nodeId: string;
  /** Signs the Lease, so readers can tell it from one written by anyone else with access to Leases. */
  signer: RecordSigner;
  proxyAddr: string;
  adminAddr: string;
  durationMs: number;
  renewIntervalMs: number;
  /** The Pod, when known; otherwise the Lease has no owner. */
  owner?: OwnerReference | undefined;
  metrics?: KubernetesRegistryMetrics;
  /** After every successful write, with the Lease's UID (it changes if someone recreated it). */
  onRenewed?(uid: string): void;
  onRenewError?(err: unknown, retryInMs: number): void;
  onRenewRecovered?(): void;
  backoff?: { minMs: number; maxMs: number };
}

export class LeaseKeeper {
  readonly name: string;
  private readonly backoff: Backoff;
  private readonly acquireTimeMs = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private running = false;
  private failing = false;
  private uid: string | undefined;
  private renewedAtMs: number | undefined;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.name = leaseName(options.cluster, nodeKey(options.nodeId));
    const b = options.backoff ?? { minMs: 500, maxMs: options.renewIntervalMs };
    this.backoff = new Backoff({ minMs: b.minMs, maxMs: Math.max(b.maxMs, b.minMs), jitter: 0.1 });
  }

  /** When the last successful write was sent. */
  get lastRenewedAtMs(): number | undefined {
    return this.renewedAtMs;
  }

  /** The UID of the Lease after the last successful write. */
  get leaseUid(): string | undefined {
    return this.uid;
  }

  /** One write of the Lease; rejects with the apiserver's error. */
  async renewOnce(): Promise<string> {
    const o = this.options;
    const sentAtMs = Date.now();
    const lease = o.signer.sealLease(
      buildLease({
        namespace: o.namespace,
        cluster: o.cluster,
        nodeId: o.nodeId,
        proxyAddr: o.proxyAddr,
        adminAddr: o.adminAddr,
        durationMs: o.durationMs,
        acquireTimeMs: this.acquireTimeMs,
        renewTimeMs: sentAtMs,
        owner: o.owner,
      }),
    );
    try {
      const stored = await o.client.apply<LeaseObject>(RESOURCES.leases, lease);
      o.metrics?.apiserverWritesTotal.inc({ kind: 'Lease', operation: 'apply', result: 'success' });
      const uid = stored.metadata?.uid ?? '';
      this.uid = uid;
      this.renewedAtMs = sentAtMs;
      o.onRenewed?.(uid);
      return uid;
    } catch (err) {
      o.metrics?.apiserverWritesTotal.inc({ kind: 'Lease', operation: 'apply', result: resultOf(err) });
      throw err;
    }
  }

  /** Renews every renew interval from now on. */
  start(): void {
    this.running = true;
    this.arm(this.options.renewIntervalMs);
  }

  /** Stops renewing (the Lease stays); waits for a renewal in flight. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  /** Deletes the Lease; resolves false when it was already gone. */
  async release(): Promise<boolean> {
    try {
      const existed = await this.options.client.delete(RESOURCES.leases, this.options.namespace, this.name);
      this.options.metrics?.apiserverWritesTotal.inc({
        kind: 'Lease',
        operation: 'delete',
        result: existed ? 'success' : 'not_found',
      });
      return existed;
    } catch (err) {
      this.options.metrics?.apiserverWritesTotal.inc({ kind: 'Lease', operation: 'delete', result: resultOf(err) });
      throw err;
    }
  }

  private arm(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.renew().then((next) => {
        this.inFlight = undefined;
        this.arm(next);
      });
    }, clampDelay(delayMs));
  }

  /** Renews and returns the delay before the next attempt. */
  private async renew(): Promise<number> {
    try {
      await this.renewOnce();
      this.backoff.reset();
      if (this.failing) {
        this.failing = false;
        this.options.onRenewRecovered?.();
      }
      return this.options.renewIntervalMs;
    } catch (err) {
      this.failing = true;
      const delay = Math.min(this.backoff.next(), this.options.renewIntervalMs);
      this.options.onRenewError?.(err, delay);
      return delay;
    }
  }
}
