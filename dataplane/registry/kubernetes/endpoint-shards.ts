/**
 * This node's endpoint table, split into shards that each serialise to at
 * most `maxShardBytes` (docs/registry-design.md §3.4). Pure: the writer
 * decides when to publish.
 */
import { serializeShard } from './objects';

export interface EndpointShardsOptions {
  /** Cap of one shard's JSON document. */
  maxShardBytes: number;
  /** Growth stops here; a table that still does not fit is written oversize and the apiserver may refuse it. */
  maxShards?: number;
}

const DEFAULT_MAX_SHARDS = 256;
/** `{"version":1,"endpoints":{}}` */
const DOCUMENT_OVERHEAD_BYTES = serializeShard(new Map()).length;

/** FNV-1a, 32 bits: cheap, stable across processes and versions. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Bytes of `"<id>":<count>,` in the document (the last entry has no comma). */
export function entryBytes(id: string, count: number): number {
  return Buffer.byteLength(JSON.stringify(id)) + String(count).length + 2;
}

/** The document of a shard whose entries take `entries` bytes, commas included. */
function documentBytes(entries: number): number {
  return entries === 0 ? 0 : DOCUMENT_OVERHEAD_BYTES + entries - 1;
}

export class EndpointShards {
  private readonly maxShardBytes: number;
  private readonly maxShards: number;
  private readonly endpoints = new Map<string, number>();
  private shards: Map<string, number>[] = [new Map()];
  private shardBytes: number[] = [0];
  private totalBytes = 0;

  constructor(options: EndpointShardsOptions) {
    if (!(options.maxShardBytes > DOCUMENT_OVERHEAD_BYTES)) {
      throw new RangeError(`maxShardBytes must exceed ${DOCUMENT_OVERHEAD_BYTES}, got ${options.maxShardBytes}`);
    }
    this.maxShardBytes = options.maxShardBytes;
    this.maxShards = options.maxShards ?? DEFAULT_MAX_SHARDS;
  }

  get shardCount(): number {
    return this.shards.length;
  }

  get size(): number {
    return this.endpoints.size;
  }

  get(endpointId: string): number {
    return this.endpoints.get(endpointId) ?? 0;
  }

  /** A copy of the whole table. */
  snapshot(): Map<string, number> {
    return new Map(this.endpoints);
  }

  shardOf(endpointId: string, count = this.shards.length): number {
    // Counts are powers of two, so the low bits pick the shard.
    return fnv1a32(endpointId) & (count - 1);
  }

  /**
   * Sets the count (≤ 0 removes the endpoint) and returns the shards whose
   * content may have changed: none, the endpoint's shard, or every shard
   * (before and after) when the shard count changed.
   */
  set(endpointId: string, count: number): number[] {
    const next = count > 0 ? Math.floor(count) : 0;
    const prev = this.endpoints.get(endpointId) ?? 0;
    if (next === prev) return [];
    const shard = this.shardOf(endpointId);
    const delta = (next > 0 ? entryBytes(endpointId, next) : 0) - (prev > 0 ? entryBytes(endpointId, prev) : 0);
    if (next > 0) {
      this.endpoints.set(endpointId, next);
      this.shards[shard].set(endpointId, next);
    } else {
      this.endpoints.delete(endpointId);
      this.shards[shard].delete(endpointId);
    }
    this.shardBytes[shard] += delta;
    this.totalBytes += delta;

    const before = this.shards.length;
    const after = this.rebalance();
    if (after === before) return [shard];
    return Array.from({ length: Math.max(before, after) }, (_, i) => i);
  }

  /** The shard's document, or undefined when it holds nothing (it should not exist). */
  json(index: number): string | undefined {
    const shard = this.shards[index];
    if (!shard || shard.size === 0) return undefined;
    return serializeShard(shard);
  }

  /** Bytes of the shard's document as tracked, for tests and metrics. */
  bytes(index: number): number {
    const shard = this.shards[index];
    return shard && shard.size > 0 ? documentBytes(this.shardBytes[index]) : 0;
  }

  private fits(entries: number): boolean {
    return documentBytes(entries) <= this.maxShardBytes;
  }

  /** Doubles while a shard is over the cap; halves when the table fills a quarter or less. */
  private rebalance(): number {
    let count = this.shards.length;
    if (!this.shardBytes.every((b) => this.fits(b))) {
      while (count < this.maxShards) {
        count *= 2;
        if (this.redistribute(count)) break;
      }
      return this.shards.length;
    }
    while (count > 1 && this.totalBytes <= (count * this.maxShardBytes) / 4 - count * DOCUMENT_OVERHEAD_BYTES) {
      const half = count / 2;
      if (!this.wouldFit(half)) break;
      count = half;
    }
    if (count !== this.shards.length) this.redistribute(count);
    return this.shards.length;
  }

  private wouldFit(count: number): boolean {
    const bytes = new Array<number>(count).fill(0);
    for (const [id, n] of this.endpoints) bytes[this.shardOf(id, count)] += entryBytes(id, n);
    return bytes.every((b) => this.fits(b));
  }

  /** Rebuilds the shards for `count`; true when every shard fits. */
  private redistribute(count: number): boolean {
    this.shards = Array.from({ length: count }, () => new Map<string, number>());
    this.shardBytes = new Array<number>(count).fill(0);
    for (const [id, n] of this.endpoints) {
      const s = this.shardOf(id, count);
      this.shards[s].set(id, n);
      this.shardBytes[s] += entryBytes(id, n);
    }
    return this.shardBytes.every((b) => this.fits(b));
  }
}
