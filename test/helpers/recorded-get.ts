import { createHash } from 'node:crypto';
import http from 'node:http';

/** How one GET ended, for tests where a cut response is an outcome, not a failure. */
export interface Fetched {
  status: number;
  /** SHA-256 of the body, hex; empty unless the body arrived complete. */
  sha: string;
  bytes: number;
  /** The body ended as HTTP says it should (not aborted, reset or timed out). */
  complete: boolean;
  ms: number;
  error?: string;
}

/**
 * A GET on a fresh connection that never rejects: it resolves with how the
 * exchange ended, 20 s at the most. `onFirstByte` runs when the body starts,
 * so a test can break the connection mid-response.
 */
export function recordedGet(url: string, headers: Record<string, string>, onFirstByte?: () => void): Promise<Fetched> {
  const started = performance.now();
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let status = 0;
    let settled = false;
    const done = (complete: boolean, error?: string): void => {
      if (settled) return;
      settled = true;
      resolve({
        status,
        sha: complete ? hash.digest('hex') : '',
        bytes,
        complete,
        ms: performance.now() - started,
        ...(error ? { error } : {}),
      });
    };
    const req = http.get(url, { agent: false, headers }, (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (c: Buffer) => {
        if (bytes === 0) onFirstByte?.();
        bytes += c.length;
        hash.update(c);
      });
      res.on('end', () => done(true));
      res.on('aborted', () => done(false, 'aborted'));
      res.on('error', (err) => done(false, err.message));
    });
    req.on('error', (err) => done(false, err.message));
    req.setTimeout(20_000, () => req.destroy(new Error('client timeout')));
  });
}
