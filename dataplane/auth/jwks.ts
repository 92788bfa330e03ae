import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import {
  createLocalJWKSet,
  errors,
  type CompactJWSHeaderParameters,
  type CryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type LocalJWKSet,
} from 'jose';
import { jwksUrl, type JwksConfig } from './auth-config';
import { AuthConfigError } from './errors';

/** keyfunc's refresh interval, which is what Piko gets for `cache_ttl: 0`. */
export const DEFAULT_JWKS_CACHE_TTL_MS = 60 * 60_000;
export const DEFAULT_JWKS_TIMEOUT_MS = 10_000;

// A token with an unknown kid may mean the issuer rotated keys, so it earns a
// refetch, but at most this often: unknown kids are free for anyone to send.
const UNKNOWN_KID_REFRESH_COOLDOWN_MS = 30_000;
// After a failed fetch every verify would otherwise wait on the dead endpoint
// again; this bounds that to one attempt per interval.
const FAILED_FETCH_RETRY_MS = 5_000;
// A key set is a few KiB; the cap keeps a misbehaving endpoint from filling memory.
const MAX_JWKS_BYTES = 1024 * 1024;

/** No key set could be obtained, so the token cannot be judged (a 500, not a 401). */
export class JwksUnavailableError extends Error {
  override readonly name = 'JwksUnavailableError';
}

export interface JwksResolver {
  getKey(header: CompactJWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey>;
  close(): void;
}

export interface JwksResolverOptions {
  now: () => number;
  /** Told about each failed (re)load; the last good set stays in use meanwhile. */
  onError?: (err: Error) => void;
}

type Loader = (signal: AbortSignal) => Promise<unknown>;

/**
 * Keys from a JWKS endpoint. An http(s) set is fetched on first use, a file is
 * read now so a missing or invalid file fails start-up. Either is reloaded
 * once older than `cacheTtlMs` (a file with TTL 0 only on an unknown kid),
 * and on an unknown kid at most every 30 s, so rotated keys are picked up.
 * As with Piko's keyfunc, a failed reload keeps the last good set in
 * service: an issuer outage must not lock out every client.
 */
export function createJwksResolver(cfg: JwksConfig, field: string, options: JwksResolverOptions): JwksResolver {
  const url = jwksUrl(cfg.endpoint, `${field}.jwks.endpoint`);
  if (url.protocol === 'file:') {
    const path = fileURLToPath(url);
    const initial = readInitialFile(path, `${field}.jwks.endpoint`);
    return new KeySetCache((signal) => readJwksFile(path, signal), cfg.cacheTtlMs, options, initial);
  }
  const timeoutMs = cfg.timeoutMs || DEFAULT_JWKS_TIMEOUT_MS;
  const ttlMs = cfg.cacheTtlMs || DEFAULT_JWKS_CACHE_TTL_MS;
  return new KeySetCache((signal) => fetchJwks(url, timeoutMs, signal), ttlMs, options);
}

class KeySetCache implements JwksResolver {
  private keys: LocalJWKSet | undefined;
  private loadedAt = -Infinity;
  private failedAt = -Infinity;
  private lastError: Error | undefined;
  private pending: Promise<void> | undefined;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly load: Loader,
    /** 0 = never reload. */
    private readonly ttlMs: number,
    private readonly options: JwksResolverOptions,
    initial?: LocalJWKSet,
  ) {
    if (initial) {
      this.keys = initial;
      this.loadedAt = options.now();
    }
  }

  async getKey(header: CompactJWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    if (this.closed) throw new JwksUnavailableError('key set closed');
    const now = this.options.now();
    const stale = !this.keys || (this.ttlMs > 0 && now - this.loadedAt >= this.ttlMs);
    if (stale && now - this.failedAt >= FAILED_FETCH_RETRY_MS) await this.reload();
    const keys = this.keys;
    if (!keys) throw new JwksUnavailableError('no key set loaded', { cause: this.lastError });
    try {
      return await keys(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      const lastAttempt = Math.max(this.loadedAt, this.failedAt);
      if (this.options.now() - lastAttempt < UNKNOWN_KID_REFRESH_COOLDOWN_MS) throw err;
      await this.reload();
      return (this.keys ?? keys)(header, token);
    }
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
  }

  /** One load at a time; concurrent verifies share it. Never rejects. */
  private reload(): Promise<void> {
    this.pending ??= this.loadOnce().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async loadOnce(): Promise<void> {
    try {
      const keys = createLocalJWKSet((await this.load(this.abort.signal)) as JSONWebKeySet);
      this.keys = keys;
      this.loadedAt = this.options.now();
      this.lastError = undefined;
    } catch (err) {
      if (this.closed) return;
      this.failedAt = this.options.now();
      // isNativeError also holds for errors from other realms (DOMException from fetch).
      this.lastError = types.isNativeError(err) ? err : new Error(String(err));
      this.options.onError?.(this.lastError);
    }
  }
}

function readInitialFile(path: string, field: string): LocalJWKSet {
  try {
    const text = readFileSync(path, 'utf8');
    if (Buffer.byteLength(text) > MAX_JWKS_BYTES) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
    return createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
  } catch (cause) {
    throw new AuthConfigError('ERR_AUTH_CONFIG_INVALID_JWKS', field, `${field}: cannot load key set from ${path}`, {
      cause,
    });
  }
}

async function readJwksFile(path: string, signal: AbortSignal): Promise<unknown> {
  const { size } = await stat(path);
  if (size > MAX_JWKS_BYTES) throw new Error(`jwks file ${path} is larger than ${MAX_JWKS_BYTES} bytes`);
  return JSON.parse(await readFile(path, { encoding: 'utf8', signal }));
}

async function fetchJwks(url: URL, timeoutMs: number, closed: AbortSignal): Promise<unknown> {
  // Credentials in the URL must not reach a log line through an error.
  const where = `${url.protocol}//${url.host}${url.pathname}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([closed, timeout]);
  let res: Response;
  try {
    res = await fetch(url, { signal, headers: { accept: 'application/json, application/jwk-set+json' } });
  } catch (cause) {
    if (timeout.aborted) throw new Error(`jwks fetch from ${where} timed out after ${timeoutMs} ms`, { cause });
    throw new Error(`jwks fetch from ${where} failed`, { cause });
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`jwks fetch from ${where} answered ${res.status}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body ?? []) {
    total += chunk.byteLength;
    // Throwing out of the loop cancels the body, which closes the connection.
    if (total > MAX_JWKS_BYTES) throw new Error(`jwks from ${where} is larger than ${MAX_JWKS_BYTES} bytes`);
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}
