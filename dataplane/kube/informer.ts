/**
 * Informers: a list-then-watch loop (ListWatch in list-watch.ts) behind a small interface, and
 * the ResilientInformer that keeps one running.
 */
import { Backoff } from '../time/backoff';
import { clampDelay } from '../time/timer';

/** Callbacks of one informer; invoked synchronously, so they must not throw. */
export interface InformerHandlers<T> {
  /** Added or changed (also once per changed object of every list). */
  upsert(obj: T): void;
  /** Deleted, or missing from a relist. */
  remove(obj: T): void;
  /** A list completed and its objects were delivered. */
  listed(): void;
  /** The informer stopped on this error; it will not go on by itself. */
  error(err: unknown): void;
}

/**
 * A list-then-watch loop. It relists on 410 Gone and resumes when the server ends a watch, but
 * stops on any other error after calling `error`; `start()` again resumes it.
 */
export interface Informer {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ResilientInformerOptions<T> {
  /** Builds the underlying informer once; it is restarted, not rebuilt. */
  create(handlers: InformerHandlers<T>): Informer;
  upsert(obj: T): void;
  remove(obj: T): void;
  /** Healthy = a list or an event arrived since the last error. */
  onHealthChange?(healthy: boolean): void;
  /** Each error the informer stopped on, before the restart is scheduled (to log it). */
  onError?(err: unknown, restartInMs: number): void;
  onRestart?(): void;
  backoff?: { minMs: number; maxMs: number };
}

const DEFAULT_BACKOFF = { minMs: 500, maxMs: 30_000 };

/**
 * Keeps an informer running. A ListWatch relists on 410 Gone and resumes when the server ends a
 * watch, but stops on any other error (connection refused, 403, a failed list); this restarts it
 * with capped exponential backoff plus jitter, reset once it delivers again. A restarted
 * informer resumes from its last resourceVersion, or relists when that is too old.
 */
export class ResilientInformer<T> {
  private readonly informer: Informer;
  private readonly backoff: Backoff;
  private healthy = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private resolveSynced!: () => void;
  private lastErr: unknown;
  /** Resolves at the first completed list. */
  readonly synced: Promise<void>;

  constructor(private readonly options: ResilientInformerOptions<T>) {
    this.synced = new Promise((resolve) => {
      this.resolveSynced = resolve;
    });
    const b = options.backoff ?? DEFAULT_BACKOFF;
    this.backoff = new Backoff({ minMs: b.minMs, maxMs: b.maxMs, jitter: 0.1 });
    this.informer = options.create({
      upsert: (obj) => {
        if (this.delivered()) options.upsert(obj);
      },
      remove: (obj) => {
        if (this.delivered()) options.remove(obj);
      },
      listed: () => {
        if (this.delivered()) this.resolveSynced();
      },
      error: (err) => this.failed(err),
    });
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  /** The error the informer last stopped on, if any. */
  get lastError(): unknown {
    return this.lastErr;
  }

  start(): void {
    this.stopped = false;
    this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.informer.stop();
  }

  private run(): void {
    // The informer reports most failures through `error`; a rejection of
    // start() itself (say, a credential plugin failing) goes the same way.
    this.informer.start().catch((err: unknown) => this.failed(err));
  }

  /** False once stopped: a list in flight when stop() was called still delivers. */
  private delivered(): boolean {
    if (this.stopped) {
      void this.informer.stop();
      return false;
    }
    this.backoff.reset();
    if (!this.healthy) {
      this.healthy = true;
      this.options.onHealthChange?.(true);
    }
    return true;
  }

  private failed(err: unknown): void {
    if (this.stopped) return;
    this.lastErr = err;
    if (this.healthy) {
      this.healthy = false;
      this.options.onHealthChange?.(false);
    }
    if (this.restartTimer !== undefined) return;
    const delay = this.backoff.next();
    this.options.onError?.(err, delay);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.options.onRestart?.();
      this.run();
    }, clampDelay(delay));
  }
}
