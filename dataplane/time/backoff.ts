import { clampDelay } from './timer';

export interface BackoffOptions {
  /** First delay; Piko: 100 ms. */
  minMs: number;
  /** Cap of the doubling delay (before jitter); Piko: 15 s. */
  maxMs: number;
  /** Up to this fraction is added at random, so agents cut off together do not return together. */
  jitter?: number;
  /** In [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * Piko's reconnect backoff: the first delay is `minMs`, each next one
 * doubles up to `maxMs`, and 0-10 % jitter is added on top. Pure state; the
 * caller decides when a connection has lasted long enough to `reset()`.
 */
export class Backoff {
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private failures = 0;

  constructor(options: BackoffOptions) {
    if (!(options.minMs > 0) || !Number.isFinite(options.minMs)) {
      throw new RangeError(`minimum backoff must be a positive number of milliseconds, got ${options.minMs}`);
    }
    if (!(options.maxMs >= options.minMs) || !Number.isFinite(options.maxMs)) {
      throw new RangeError(`maximum backoff (${options.maxMs}) must be at least the minimum (${options.minMs})`);
    }
    this.minMs = options.minMs;
    this.maxMs = options.maxMs;
    this.jitter = options.jitter ?? 0.1;
    this.random = options.random ?? Math.random;
  }

  /** Delays handed out since the last reset. */
  get attempts(): number {
    return this.failures;
  }

  /** The delay before the next attempt; each call doubles the following one. */
  next(): number {
    // Past 2^30 the doubling has long hit any sane cap; stop counting so it cannot overflow.
    const exponent = Math.min(this.failures, 30);
    this.failures++;
    const base = Math.min(this.maxMs, this.minMs * 2 ** exponent);
    return Math.round(base * (1 + this.random() * this.jitter));
  }

  reset(): void {
    this.failures = 0;
  }
}

/**
 * Resolves after `ms`, or rejects with the signal's reason once it aborts.
 * Uses the global timer functions, so fake timers drive it in tests.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, clampDelay(ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
