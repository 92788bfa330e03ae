/**
 * How long a failed key waits before it is tried again, as client-go's
 * workqueue rate limiters: per key, an exponential backoff that `forget`
 * resets on success; overall, a token bucket, so a storm of failures across
 * many keys cannot hammer the apiserver. Pure state; the clock is injected.
 */

export interface RateLimiter {
  /** The delay before the key's next attempt; each call counts one more failure. */
  when(key: string): number;
  /** The key succeeded: its backoff starts over. */
  forget(key: string): void;
  /** Failures counted for the key since it was last forgotten. */
  numRequeues(key: string): number;
}

/** 5 ms, 10 ms, 20 ms ... doubling per failure of the key, capped. */
export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) throw new RangeError(`invalid backoff ${baseMs} ms to ${maxMs} ms`);
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // Past 2^40 the cap has long been reached; stop the exponent growing.
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(n, 40));
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

export interface TokenBucketOptions {
  /** Tokens added per second. */
  qps: number;
  /** Bucket size: how many retries may go at once before the rate applies. */
  burst: number;
  now?: () => number;
}

/**
 * Each call takes a token, even when none is left (the bucket goes into
 * debt), and waits until the debt is paid: calls are spread at `qps` once
 * the burst is spent, as golang.org/x/time/rate's Reserve().Delay().
 */
export class TokenBucketRateLimiter implements RateLimiter {
  private readonly qps: number;
  private readonly burst: number;
  private readonly now: () => number;
  private tokens: number;
  private lastMs: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.qps > 0) || !(options.burst >= 1)) throw new RangeError('qps must be above 0 and burst at least 1');
    this.qps = options.qps;
    this.burst = options.burst;
    this.now = options.now ?? Date.now;
    this.tokens = options.burst;
    this.lastMs = this.now();
  }

  when(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastMs) * this.qps) / 1000);
    this.lastMs = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.qps);
  }

  forget(): void {
    // Shared by every key: one key's success returns no tokens.
  }

  numRequeues(): number {
    return 0;
  }
}

/** The longest delay any of the limiters asks for. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    // Every limiter must count the failure, so no short-circuit.
    return this.limiters.map((l) => l.when(key)).reduce((a, b) => Math.max(a, b), 0);
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return this.limiters.map((l) => l.numRequeues(key)).reduce((a, b) => Math.max(a, b), 0);
  }
}

export const DEFAULT_BACKOFF_BASE_MS = 5;
/**
 * client-go caps at 1000 s; five minutes bounds how long a cluster stays
 * unreconciled after the apiserver (or a webhook) has been failing for a
 * while, at the cost of one request per cluster every five minutes.
 */
export const DEFAULT_BACKOFF_MAX_MS = 5 * 60_000;
export const DEFAULT_RETRY_QPS = 10;
export const DEFAULT_RETRY_BURST = 100;

/** client-go's DefaultControllerRateLimiter, with the five-minute cap above. */
export function defaultControllerRateLimiter(now?: () => number): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialRateLimiter(DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_MAX_MS),
    new TokenBucketRateLimiter({ qps: DEFAULT_RETRY_QPS, burst: DEFAULT_RETRY_BURST, ...(now === undefined ? {} : { now }) }),
  );
}
