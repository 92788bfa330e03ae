/**
 * Each endpoint's recent HTTP traffic through this node, for the status page: requests per
 * second, the share answered 5xx, and latency percentiles over the last WINDOW_MS. The
 * Prometheus metrics cannot answer this, as the server's carry no endpoint label (as in Piko:
 * one series per endpoint would be unbounded).
 *
 * The window is SLOTS slots of SLOT_MS, each a count, an error count and a log-scale latency
 * histogram; a slot older than the window is reused. Memory is bounded: at most MAX_TRACKED
 * endpoints at once (a request to one more is counted only in `untracked`), and an endpoint
 * with no request for a window is dropped.
 */
export const SLOT_MS = 5_000;
export const SLOTS = 6;
export const WINDOW_MS = SLOT_MS * SLOTS;
export const MAX_TRACKED = 1_000;

/** Bucket i holds latencies up to FIRST_BOUND_MS · 2^(i/2): 0.1 ms to about 20 min in 48 buckets, ±19% at worst. */
const FIRST_BOUND_MS = 0.1;
const BUCKETS = 48;
const COUNT = BUCKETS;
const ERRORS = BUCKETS + 1;
const SLOT_SIZE = BUCKETS + 2;

/** What the status page shows of an endpoint's traffic, as its JSON spells it (admin/status-overview-json.d.ts). */
export type TrafficSummary = StatusOverviewJson.Traffic;

interface Entry {
  /** Slot number (time / SLOT_MS) each of the SLOTS rings holds, or -1. */
  readonly slotOf: Float64Array;
  readonly counts: Uint32Array;
  firstMs: number;
  lastSlot: number;
}

function bucketOf(ms: number): number {
  if (!(ms > FIRST_BOUND_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(2 * Math.log2(ms / FIRST_BOUND_MS)));
}

function upperBound(bucket: number): number {
  return FIRST_BOUND_MS * 2 ** (bucket / 2);
}

export class EndpointTraffic {
  private readonly entries = new Map<string, Entry>();
  private untrackedCount = 0;
  private sweptSlot = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Requests not recorded because MAX_TRACKED endpoints were already tracked. */
  get untracked(): number {
    return this.untrackedCount;
  }

  get tracked(): number {
    return this.entries.size;
  }

  record(endpointId: string, status: number, durationMs: number): void {
    const now = this.now();
    const slot = Math.floor(now / SLOT_MS);
    if (slot !== this.sweptSlot) this.sweep(slot);
    let entry = this.entries.get(endpointId);
    if (entry === undefined) {
      if (this.entries.size >= MAX_TRACKED) {
        this.untrackedCount++;
        return;
      }
      entry = { slotOf: new Float64Array(SLOTS).fill(-1), counts: new Uint32Array(SLOTS * SLOT_SIZE), firstMs: now, lastSlot: slot };
      this.entries.set(endpointId, entry);
    }
    const ring = slot % SLOTS;
    const base = ring * SLOT_SIZE;
    if (entry.slotOf[ring] !== slot) {
      entry.counts.fill(0, base, base + SLOT_SIZE);
      entry.slotOf[ring] = slot;
    }
    entry.lastSlot = slot;
    entry.counts[base + COUNT]!++;
    if (status >= 500) entry.counts[base + ERRORS]!++;
    entry.counts[base + bucketOf(durationMs)]!++;
  }

  /** The endpoint's traffic over the window, or undefined with none. */
  summary(endpointId: string): TrafficSummary | undefined {
    const entry = this.entries.get(endpointId);
    if (entry === undefined) return undefined;
    const now = this.now();
    const current = Math.floor(now / SLOT_MS);
    const histogram = new Float64Array(BUCKETS);
    let requests = 0;
    let errors = 0;
    for (let ring = 0; ring < SLOTS; ring++) {
      const slot = entry.slotOf[ring]!;
      if (slot < 0 || current - slot >= SLOTS) continue;
      const base = ring * SLOT_SIZE;
      requests += entry.counts[base + COUNT]!;
      errors += entry.counts[base + ERRORS]!;
      for (let b = 0; b < BUCKETS; b++) histogram[b]! += entry.counts[base + b]!;
    }
    if (requests === 0) return undefined;
    // The window covers the oldest slot still counted, up to now; no less than a second, so one
    // request just seen is not a burst of thousands per second.
    const windowStart = Math.max((current - SLOTS + 1) * SLOT_MS, entry.firstMs);
    const seconds = Math.max(1, (now - windowStart) / 1000);
    // Rounded past what the figures can tell (the buckets are ±19%): the page lists 500 of these.
    return {
      rps: round(requests / seconds, 100),
      error_rate: round(errors / requests, 10_000),
      p50_ms: round(quantile(histogram, requests, 0.5), 100),
      p95_ms: round(quantile(histogram, requests, 0.95), 100),
      p99_ms: round(quantile(histogram, requests, 0.99), 100),
      requests,
    };
  }

  /** Drops endpoints with no request in the window: run at most once per slot. */
  private sweep(slot: number): void {
    this.sweptSlot = slot;
    for (const [id, entry] of this.entries) if (slot - entry.lastSlot >= SLOTS) this.entries.delete(id);
  }
}

function round(value: number, per: number): number {
  return Math.round(value * per) / per;
}

/** The q-quantile, interpolated linearly within its bucket. */
function quantile(histogram: Float64Array, total: number, q: number): number {
  const rank = q * total;
  let seen = 0;
  for (let b = 0; b < BUCKETS; b++) {
    const n = histogram[b]!;
    if (n === 0) continue;
    if (seen + n >= rank) {
      const lo = b === 0 ? 0 : upperBound(b - 1);
      const hi = upperBound(b);
      return lo + ((hi - lo) * (rank - seen)) / n;
    }
    seen += n;
  }
  return upperBound(BUCKETS - 1);
}
