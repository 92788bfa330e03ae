import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JWK } from 'jose';
import type { AuthConfig } from '../../../dataplane/auth/auth-config';
import { AuthConfigError, AuthError } from '../../../dataplane/auth/errors';
import { createVerifier, type TokenVerifier, type VerifierOptions } from '../../../dataplane/auth/verifier';
import { hmacKey, keyPair, publicJwk, sign, type KeyPair } from './jwt-fixtures';

interface JwksServer {
  url: string;
  fetches: number;
  /** What the next requests get. */
  mode: 'ok' | 'error' | 'hang' | 'not-a-set' | 'huge';
  keys: JWK[];
  http: http.Server;
  close(): Promise<void>;
}

async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  const state: JwksServer = {
    http: undefined as unknown as http.Server,
    url: '',
    fetches: 0,
    mode: 'ok',
    keys,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  const server = http.createServer((_req, res) => {
    state.fetches++;
    switch (state.mode) {
      case 'ok':
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: state.keys }));
        return;
      case 'error':
        res.statusCode = 503;
        res.end();
        return;
      case 'not-a-set':
        res.end('{"nope":true}');
        return;
      case 'huge':
        res.end(JSON.stringify({ keys: state.keys, padding: 'x'.repeat(2 * 1024 * 1024) }));
        return;
      case 'hang':
        return; // never answered; close() resets the connection
    }
  });
  state.http = server;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return state;
}

async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AuthError)) throw new Error(`expected an AuthError, got ${String(err)}`);
  return err;
}

let k1: KeyPair;
let k2: KeyPair;
let clock: number;
const jwksErrors: Error[] = [];
const verifiers: TokenVerifier[] = [];

function verifierFor(jwks: NonNullable<AuthConfig['jwks']>, extra: VerifierOptions = {}): TokenVerifier {
  const v = createVerifier(
    { disableDisconnectOnExpiry: false, jwks },
    { field: 'proxy.auth', now: () => clock, onJwksError: (err) => jwksErrors.push(err), ...extra },
  );
  verifiers.push(v);
  return v;
}

const tokenFor = (pair: KeyPair, kid: string): Promise<string> => sign({}, pair.privateKey, { alg: 'RS256', kid });

beforeAll(async () => {
  [k1, k2] = await Promise.all([keyPair('rsa'), keyPair('rsa')]);
});

beforeEach(() => {
  clock = Date.now();
  jwksErrors.length = 0;
});

afterEach(() => {
  verifiers.splice(0).forEach((v) => v.close());
});

describe('JWKS over http', () => {
  let server: JwksServer;

  beforeEach(async () => {
    server = await startJwksServer([publicJwk(k1, 'k1', 'RS256')]);
  });

  afterEach(async () => {
    await server.close();
  });

  it('verifies with a fetched key and fetches once while the set is fresh', async () => {
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 60_000, timeoutMs: 0 });
    expect(server.fetches).toBe(0);
    const token = await tokenFor(k1, 'k1');
    for (let i = 0; i < 3; i++) await expect(v.verify(token)).resolves.toMatchObject({ endpoints: [] });
    expect(server.fetches).toBe(1);
  });

  it('shares one fetch between concurrent first verifies', async () => {
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 60_000, timeoutMs: 0 });
    const token = await tokenFor(k1, 'k1');
    await Promise.all(Array.from({ length: 5 }, () => v.verify(token)));
    expect(server.fetches).toBe(1);
  });

  it('refetches once the cache TTL has passed', async () => {
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 60_000, timeoutMs: 0 });
    const token = await tokenFor(k1, 'k1');
    await v.verify(token);
    clock += 59_999;
    await v.verify(token);
    expect(server.fetches).toBe(1);
    clock += 1;
    await v.verify(token);
    expect(server.fetches).toBe(2);
  });

  it('answers invalid token for an unknown kid without refetching inside the cooldown', async () => {
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 60 * 60_000, timeoutMs: 0 });
    await v.verify(await tokenFor(k1, 'k1'));
    const err = await rejection(v.verify(await tokenFor(k2, 'k2')));
    expect(err).toMatchObject({ code: 'ERR_AUTH_INVALID_TOKEN', status: 401 });
    expect(server.fetches).toBe(1);
  });

  it('refetches for an unknown kid after the cooldown, picking up a rotated key', async () => {
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 60 * 60_000, timeoutMs: 0 });
    await v.verify(await tokenFor(k1, 'k1'));
    server.keys = [publicJwk(k1, 'k1', 'RS256'), publicJwk(k2, 'k2', 'RS256')];
    clock += 30_000;
    await expect(v.verify(await tokenFor(k2, 'k2'))).resolves.toBeDefined();
    expect(server.fetches).toBe(2);
  });

  it('rejects a token whose kid matches but whose signature is from another key', async () => {
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 0, timeoutMs: 0 });
    expect((await rejection(v.verify(await tokenFor(k2, 'k1')))).code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('rejects an HS256 token, which a public key set cannot verify', async () => {
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 0, timeoutMs: 0 });
    const token = await sign({}, hmacKey(), { alg: 'HS256', kid: 'k1' });
    expect((await rejection(v.verify(token))).code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('keeps using the last good key set when a refetch fails, and backs off', async () => {
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 60_000, timeoutMs: 0 });
    const token = await tokenFor(k1, 'k1');
    await v.verify(token);
    server.mode = 'error';
    clock += 60_000;
    await expect(v.verify(token)).resolves.toBeDefined();
    await expect(v.verify(token)).resolves.toBeDefined();
    expect(server.fetches).toBe(2);
    expect(jwksErrors).toHaveLength(1);
    expect(jwksErrors[0]?.message).toContain('503');
  });

  it('answers ERR_AUTH_INTERNAL (500) while no key set could be fetched, retrying after a pause', async () => {
    server.mode = 'error';
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 0, timeoutMs: 0 });
    const token = await tokenFor(k1, 'k1');
    expect(await rejection(v.verify(token))).toMatchObject({ code: 'ERR_AUTH_INTERNAL', status: 500 });
    expect((await rejection(v.verify(token))).code).toBe('ERR_AUTH_INTERNAL');
    expect(server.fetches).toBe(1);
    server.mode = 'ok';
    clock += 5_000;
    await expect(v.verify(token)).resolves.toBeDefined();
    expect(server.fetches).toBe(2);
  });

  it('answers ERR_AUTH_INTERNAL when the fetch times out', async () => {
    server.mode = 'hang';
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 0, timeoutMs: 100 });
    expect((await rejection(v.verify(await tokenFor(k1, 'k1')))).code).toBe('ERR_AUTH_INTERNAL');
    expect(jwksErrors[0]?.message).toMatch(/timed out after 100 ms/);
  });

  it.each(['not-a-set', 'huge'] as const)('answers ERR_AUTH_INTERNAL when the endpoint serves %s', async (mode) => {
    server.mode = mode;
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 0, timeoutMs: 0 });
    expect((await rejection(v.verify(await tokenFor(k1, 'k1')))).code).toBe('ERR_AUTH_INTERNAL');
  });

  it('abandons an in-flight fetch on close', async () => {
    server.mode = 'hang';
    const v = verifierFor({ endpoint: server.url, cacheTtlMs: 0, timeoutMs: 30_000 });
    const token = await tokenFor(k1, 'k1');
    const requested = once(server.http, 'request');
    const pending = v.verify(token);
    await requested;
    v.close();
    expect((await rejection(pending)).code).toBe('ERR_AUTH_INTERNAL');
  });
});

describe('JWKS from a file:// URL', () => {
  let dir: string;
  let file: string;
  const writeKeys = (keys: JWK[]): Promise<void> => writeFile(file, JSON.stringify({ keys }));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'piko-jwks-'));
    file = join(dir, 'jwks.json');
    await writeKeys([publicJwk(k1, 'k1', 'RS256')]);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const endpoint = (): string => pathToFileURL(file).href;

  it('verifies with a key read from the file', async () => {
    const v = verifierFor({ endpoint: endpoint(), cacheTtlMs: 0, timeoutMs: 0 });
    await expect(v.verify(await tokenFor(k1, 'k1'))).resolves.toMatchObject({ endpoints: [] });
    expect((await rejection(v.verify(await tokenFor(k2, 'k2')))).code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('fails start-up when the file is missing', async () => {
    await rm(file);
    expect(() => verifierFor({ endpoint: endpoint(), cacheTtlMs: 0, timeoutMs: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_AUTH_CONFIG_INVALID_JWKS', field: 'proxy.auth.jwks.endpoint' }),
    );
  });

  it.each([
    ['not JSON', '{keys'],
    ['not a key set', '{"keys": 7}'],
  ])('fails start-up when the file is %s', async (_name, text) => {
    await writeFile(file, text);
    expect(() => verifierFor({ endpoint: endpoint(), cacheTtlMs: 0, timeoutMs: 0 })).toThrow(AuthConfigError);
  });

  it('re-reads the file once it is older than the cache TTL', async () => {
    const v = verifierFor({ endpoint: endpoint(), cacheTtlMs: 60_000, timeoutMs: 0 });
    await writeKeys([publicJwk(k2, 'k2', 'RS256')]);
    const rotated = await tokenFor(k2, 'k2');
    expect((await rejection(v.verify(rotated))).code).toBe('ERR_AUTH_INVALID_TOKEN');
    clock += 60_000;
    await expect(v.verify(rotated)).resolves.toBeDefined();
    expect((await rejection(v.verify(await tokenFor(k1, 'k1')))).code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('with TTL 0 re-reads only for an unknown kid, after the cooldown', async () => {
    const v = verifierFor({ endpoint: endpoint(), cacheTtlMs: 0, timeoutMs: 0 });
    await writeKeys([publicJwk(k2, 'k2', 'RS256')]);
    clock += 24 * 60 * 60_000;
    await expect(v.verify(await tokenFor(k1, 'k1'))).resolves.toBeDefined();
    await expect(v.verify(await tokenFor(k2, 'k2'))).resolves.toBeDefined();
  });

  it('keeps the last good keys when the file turns bad', async () => {
    const v = verifierFor({ endpoint: endpoint(), cacheTtlMs: 60_000, timeoutMs: 0 });
    await writeFile(file, 'half-written');
    clock += 60_000;
    await expect(v.verify(await tokenFor(k1, 'k1'))).resolves.toBeDefined();
    expect(jwksErrors).toHaveLength(1);
  });
});
