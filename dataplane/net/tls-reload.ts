/**
 * Certificates renewed in place: a poller reads a port's PEM files and, when their bytes
 * change, builds the new TLS settings and hands them over, so a renewal (cert-manager's, a
 * Secret edited by hand, a kubelet swapping a mounted Secret) needs no restart. Reading a few
 * kilobytes every few seconds costs nothing measurable; fs.watch would miss the kubelet's
 * symlink swap on some file systems.
 *
 * A change seen halfway (the new certificate beside the old key) fails to load; the settings
 * in use stay, and the next poll tries again. Failures are logged once per run of them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from '../log/logger';
import { clampDelay } from '../time/timer';

export const DEFAULT_TLS_RELOAD_INTERVAL_MS = 10_000;

export interface TlsReloadOptions<T> {
  /** The PEM files the settings come from; unset entries are skipped. */
  files: readonly (string | undefined)[];
  /** Builds the settings from the files; throws (a TlsConfigError) when they do not make a whole. */
  load: () => T;
  /** Takes the settings into use; called only after a change that loaded. */
  apply: (settings: T) => void;
  /** What is reloaded, for the log: `proxy.tls`. */
  what: string;
  logger: Logger;
  intervalMs?: number;
  /**
   * The settings from the files as they are now are already in use (read at start-up, where a
   * bad file fails the start). False: the first check() loads them, as for files another
   * process has yet to write.
   */
  inUse?: boolean;
}

export class TlsReloader<T> {
  private timer: NodeJS.Timeout | undefined;
  private last: string;
  private failing = false;

  constructor(private readonly options: TlsReloadOptions<T>) {
    this.last = options.inUse === false ? '' : (this.digest() ?? '');
  }

  start(): this {
    if (this.timer === undefined) {
      const every = clampDelay(this.options.intervalMs ?? DEFAULT_TLS_RELOAD_INTERVAL_MS);
      this.timer = setInterval(() => this.check(), every);
      this.timer.unref();
    }
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reloads when the files changed; true when new settings were applied. */
  check(): boolean {
    const digest = this.digest();
    if (digest === undefined) return false;
    if (digest === this.last) {
      // Back to what is in use (a swap completed, a bad edit reverted): a later failure is news.
      this.failing = false;
      return false;
    }
    let settings: T;
    try {
      settings = this.options.load();
    } catch (err) {
      if (!this.failing) {
        this.options.logger.warn('changed TLS files do not load; still serving the previous ones', {
          tls: this.options.what,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      this.failing = true;
      return false;
    }
    this.options.apply(settings);
    this.last = digest;
    this.failing = false;
    this.options.logger.info('reloaded TLS certificates', { tls: this.options.what });
    return true;
  }

  /** A hash of every file's bytes, or undefined while one cannot be read (mid-swap, or not yet written). */
  private digest(): string | undefined {
    const hash = createHash('sha256');
    for (const file of this.options.files) {
      if (file === undefined) continue;
      try {
        hash.update(readFileSync(file)).update('\0');
      } catch (err) {
        if (!this.failing) {
          this.options.logger.warn('cannot read TLS files; still serving the previous ones', {
            tls: this.options.what,
            error: err instanceof Error ? err.message : String(err),
          });
        }
        this.failing = true;
        return undefined;
      }
    }
    return hash.digest('hex');
  }
}
