/**
 * The controller's queue of `namespace/name` keys, with client-go's
 * workqueue semantics:
 * - a key is queued at most once (dedup while queued);
 * - a key is handed to one worker at a time: added again while being
 *   processed, it is queued once more when that worker calls done(), so
 *   the change that arrived meanwhile is not lost and never raced;
 * - addAfter() delays a key (the earliest of several delays wins);
 *   addRateLimited() delays it by the rate limiter's backoff, forget()
 *   resets that backoff after a success.
 * Pure apart from timers (the global ones, so fake timers drive it).
 */
import { defaultControllerRateLimiter, type RateLimiter } from './rate-limiter';
import { clampDelay } from '../../dataplane/time/timer';

export interface WorkQueueOptions {
  rateLimiter?: RateLimiter;
  /** Called whenever the number of keys waiting for a worker changes. */
  onDepthChange?: (depth: number) => void;
}

interface Delayed {
  atMs: number;
  timer: NodeJS.Timeout;
}

export class WorkQueue {
  private readonly rateLimiter: RateLimiter;
  private readonly onDepthChange: (depth: number) => void;
  /** Keys waiting for a worker, in order. */
  private readonly queue: string[] = [];
  /** Keys that need processing: queued, or re-added while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, Delayed>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private readonly drained: (() => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter();
    this.onDepthChange = options.onDepthChange ?? (() => undefined);
  }

  /** Keys waiting for a worker. */
  get length(): number {
    return this.queue.length;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** Adds the key after `delayMs`; a key already waiting keeps the earlier of the two times. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const atMs = Date.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending !== undefined) {
      if (pending.atMs <= atMs) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, clampDelay(delayMs));
    this.delayed.set(key, { atMs, timer });
  }

  /** Adds the key after its backoff: a failure. */
  addRateLimited(key: string): void {
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** The key succeeded: its next failure starts from the shortest backoff. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next key, once there is one; the caller must call done(key) after
   * processing it. Resolves undefined once the queue is shut down (after
   * draining, if that was asked for).
   */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) this.enqueue(key);
    this.checkDrained();
  }

  /**
   * Stops at once: queued and delayed keys are dropped, get() resolves
   * undefined. Keys being processed finish with done() as usual.
   */
  shutDown(): void {
    this.beginShutdown();
    this.queue.length = 0;
    this.dirty.clear();
    this.onDepthChange(0);
    this.checkDrained();
  }

  /**
   * Stops taking keys but hands out those already queued, and resolves once
   * every one of them is done. Delayed keys (future retries) are dropped.
   */
  shutDownWithDrain(): Promise<void> {
    this.beginShutdown();
    const drained = new Promise<void>((resolve) => this.drained.push(resolve));
    this.checkDrained();
    return drained;
  }

  private beginShutdown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    if (this.queue.length === 0) for (const getter of this.getters.splice(0)) getter(undefined);
  }

  private enqueue(key: string): void {
    const getter = this.getters.shift();
    if (getter !== undefined) {
      getter(this.take(key));
      return;
    }
    this.queue.push(key);
    this.onDepthChange(this.queue.length);
  }

  private take(key: string): string {
    this.processing.add(key);
    this.dirty.delete(key);
    this.onDepthChange(this.queue.length);
    return key;
  }

  private checkDrained(): void {
    if (!this.shuttingDown || this.queue.length > 0 || this.processing.size > 0) return;
    for (const getter of this.getters.splice(0)) getter(undefined);
    for (const resolve of this.drained.splice(0)) resolve();
  }
}
