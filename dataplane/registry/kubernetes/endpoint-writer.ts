/**
 * Publishes this node's endpoint table as ConfigMap shards, batched so a
 * pod writes at most one object per flush interval whatever the churn
 * (docs/registry-design.md §4).
 */
import { Backoff } from '../../time/backoff';
import { EndpointShards } from './endpoint-shards';
import { RESOURCES, type KubeClient, type OwnerReference } from '../../kube/client';
import { resultOf, type KubernetesRegistryMetrics, type WriteResult } from './metrics';
import { buildShard, nodeKey, shardName, type ConfigMapObject, type ShardRecord } from './objects';
import type { RecordSigner } from './record-signature';
import { clampDelay } from '../../time/timer';

export interface EndpointWriterOptions {
  client: Pick<KubeClient, 'apply' | 'delete'>;
  namespace: string;
  cluster: string;
  nodeId: string;
  signer: RecordSigner;
  /** Minimum spacing of two writes. */
  flushIntervalMs: number;
  maxShardBytes: number;
  metrics?: KubernetesRegistryMetrics;
  /** A write failed; it is retried after `retryInMs` with the then current table. */
  onWriteError?(err: unknown, retryInMs: number): void;
  /** A write succeeded after failures. */
  onWriteRecovered?(): void;
  backoff?: { minMs: number; maxMs: number };
}

interface Published {
  json: string;
  ownerUid: string | undefined;
}

/** Resource versions of our own recent writes per shard, to recognise their echoes. */
const REMEMBERED_WRITES = 8;

export class EndpointWriter {
  private readonly client: EndpointWriterOptions['client'];
  private readonly namespace: string;
  private readonly cluster: string;
  private readonly nodeId: string;
  private readonly key: string;
  private readonly flushIntervalMs: number;
  private readonly metrics: KubernetesRegistryMetrics | undefined;
  private readonly backoff: Backoff;
  private readonly table: EndpointShards;
  /** What the apiserver holds, as far as we know: index → content. Absent = no object. */
  private readonly published = new Map<number, Published>();
  private readonly ownWrites = new Map<number, string[]>();
  /** Shards to compare with `published`, oldest first. */
  private readonly dirty = new Set<number>();
  private owner: OwnerReference | undefined;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private nextSlotAt = 0;
  private failing = false;

  constructor(private readonly options: EndpointWriterOptions) {
    this.client = options.client;
    this.namespace = options.namespace;
    this.cluster = options.cluster;
    this.nodeId = options.nodeId;
    this.key = nodeKey(options.nodeId);
    this.flushIntervalMs = options.flushIntervalMs;
    this.metrics = options.metrics;
    this.table = new EndpointShards({ maxShardBytes: options.maxShardBytes });
    const b = options.backoff ?? { minMs: Math.max(options.flushIntervalMs, 1), maxMs: 30_000 };
    this.backoff = new Backoff({ minMs: b.minMs, maxMs: Math.max(b.maxMs, b.minMs), jitter: 0.1 });
    this.metrics?.endpointShards.set(this.table.shardCount);
  }

  /** The local table. */
  snapshot(): Map<string, number> {
    return this.table.snapshot();
  }

  get shardCount(): number {
    return this.table.shardCount;
  }

  /** True while some shard may differ from what the apiserver holds. */
  get pending(): boolean {
    return this.dirty.size > 0 || this.inFlight !== undefined;
  }

  set(endpointId: string, count: number): void {
    const changed = this.table.set(endpointId, count);
    if (changed.length === 0) return;
    if (changed.length > 1) {
      // The shard count changed: shards beyond the new count must go too.
      for (const i of this.published.keys()) this.dirty.add(i);
      this.metrics?.endpointShards.set(this.table.shardCount);
    }
    for (const i of changed) this.dirty.add(i);
    this.schedule();
  }

  /** The owner of every shard; a new UID (a recreated Lease) rewrites them all. */
  setOwner(owner: OwnerReference): void {
    const changed = this.owner?.uid !== owner.uid;
    this.owner = owner;
    if (!changed) return;
    for (const i of this.published.keys()) this.dirty.add(i);
    this.schedule();
  }

  /**
   * One of our shards as the apiserver shows it (`undefined` = deleted).
   * Echoes of our own writes are recognised and ignored; anything else
   * (leftovers of an earlier run, edits, deletions by others) replaces what
   * we believed and the shard is compared again.
   */
  observed(index: number, shard: ShardRecord | undefined, resourceVersion?: string): void {
    if (shard) {
      if (resourceVersion !== undefined && this.ownWrites.get(index)?.includes(resourceVersion)) return;
      this.published.set(index, { json: shard.json, ownerUid: shard.ownerUid });
    } else {
      if (!this.published.has(index)) return;
      this.published.delete(index);
    }
    this.dirty.add(index);
    this.schedule();
  }

  /** Starts writing; requires the owner. */
  start(): void {
    if (!this.owner) throw new Error('EndpointWriter.start() before setOwner()');
    this.running = true;
    this.schedule();
  }

  /** Stops writing and waits for a write in flight. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  /** Deletes every shard known to exist (graceful shutdown); resolves when all settled. */
  async deleteAll(): Promise<void> {
    const indexes = [...this.published.keys()];
    await Promise.allSettled(
      indexes.map(async (i) => {
        await this.remove(i);
      }),
    );
  }

  private schedule(): void {
    if (!this.running || this.timer !== undefined || this.inFlight !== undefined || this.dirty.size === 0) return;
    const delay = Math.max(0, this.nextSlotAt - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushOne();
    }, clampDelay(delay));
  }

  /** Desired content of a shard, undefined when it should not exist. */
  private desired(index: number): string | undefined {
    return index < this.table.shardCount ? this.table.json(index) : undefined;
  }

  private upToDate(index: number): boolean {
    const want = this.desired(index);
    const have = this.published.get(index);
    if (want === undefined) return have === undefined;
    return have !== undefined && have.json === want && have.ownerUid === this.owner?.uid;
  }

  private flushOne(): void {
    if (!this.running) return;
    let target: number | undefined;
    for (const i of this.dirty) {
      this.dirty.delete(i);
      if (!this.upToDate(i)) {
        target = i;
        break;
      }
    }
    if (target === undefined) return;
    const index = target;
    // The slot is taken when the write starts, so writes are spaced whatever their latency.
    this.nextSlotAt = Date.now() + this.flushIntervalMs;
    this.inFlight = this.write(index).finally(() => {
      this.inFlight = undefined;
      this.schedule();
    });
  }

  private async write(index: number): Promise<void> {
    try {
      if (this.desired(index) === undefined) await this.remove(index);
      else await this.apply(index);
      if (this.failing) {
        this.failing = false;
        this.options.onWriteRecovered?.();
      }
      this.backoff.reset();
    } catch (err) {
      this.dirty.add(index);
      const delay = this.backoff.next();
      this.nextSlotAt = Math.max(this.nextSlotAt, Date.now() + delay);
      this.failing = true;
      this.options.onWriteError?.(err, delay);
    }
  }

  private async apply(index: number): Promise<void> {
    const json = this.desired(index) as string;
    const owner = this.owner;
    const body = this.options.signer.sealShard(
      buildShard({ namespace: this.namespace, cluster: this.cluster, nodeId: this.nodeId, index, json, owner }),
    );
    try {
      const stored = await this.client.apply<ConfigMapObject>(RESOURCES.configMaps, body);
      this.count('apply', 'success');
      this.published.set(index, { json, ownerUid: owner?.uid });
      const rv = stored.metadata?.resourceVersion;
      if (rv) {
        const list = this.ownWrites.get(index) ?? [];
        list.push(rv);
        if (list.length > REMEMBERED_WRITES) list.shift();
        this.ownWrites.set(index, list);
      }
    } catch (err) {
      this.count('apply', resultOf(err));
      throw err;
    }
  }

  private async remove(index: number): Promise<void> {
    try {
      const existed = await this.client.delete(RESOURCES.configMaps, this.namespace, shardName(this.cluster, this.key, index));
      this.count('delete', existed ? 'success' : 'not_found');
      this.published.delete(index);
    } catch (err) {
      this.count('delete', resultOf(err));
      throw err;
    }
  }

  private count(operation: 'apply' | 'delete', result: WriteResult): void {
    this.metrics?.apiserverWritesTotal.inc({ kind: 'ConfigMap', operation, result });
  }
}
