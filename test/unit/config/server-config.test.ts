import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../dataplane/config/errors';
import { defaultServerConfig, generateNodeId, loadServerConfig, type ServerConfig } from '../../../dataplane/config/server-config';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const noAuth = { disableDisconnectOnExpiry: false };
const noTls = { client: { insecureSkipVerify: false } };
const noHeaders = { allowList: [], blockList: [] };

describe('server config', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'piko-server-config-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const yaml = (text: string): string => {
    const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, text);
    return path;
  };

  it('has Piko defaults that validate', () => {
    const config = defaultServerConfig();
    expect(config.cluster.nodeId).toMatch(/^[a-z0-9]{7}$/);
    const expected: ServerConfig = {
      proxy: {
        bindAddr: ':8000',
        timeoutMs: 30_000,
        upstreamWaitMs: 0,
        accessLog: { level: 'info', disable: false, requestHeaders: noHeaders, responseHeaders: noHeaders },
        http: {
          readTimeoutMs: 10_000,
          readHeaderTimeoutMs: 10_000,
          writeTimeoutMs: 0,
          idleTimeoutMs: 300_000,
          maxHeaderBytes: 1_048_576,
        },
        tcp: { maxMessageBytes: 4 * 1024 * 1024 },
        maxConnections: 20_000,
        auth: noAuth,
        tls: noTls,
      },
      upstream: {
        bindAddr: ':8001',
        maxConnections: 20_000,
        maxMessageBytes: 4 * 1024 * 1024,
        session: {
          keepaliveIntervalMs: 30_000,
          keepaliveTimeoutMs: 10_000,
          maxStreams: 1024,
          maxBufferedBytes: 16 * 1024 * 1024,
          maxPendingControlFrames: 10_000,
          maxStreamWindow: 4 * 1024 * 1024,
          windowGrowthBudget: 32 * 1024 * 1024,
        },
        auth: noAuth,
        tls: noTls,
        tenants: [],
        serviceAccounts: { audience: '', cacheTtlMs: 300_000, rules: [] },
      },
      admin: { bindAddr: ':8002', maxConnections: 1_000, auth: noAuth, tls: noTls },
      cluster: {
        nodeId: config.cluster.nodeId,
        name: 'piko',
        registry: 'memory',
        kubernetes: { namespace: '', leaseDurationMs: 15_000, renewIntervalMs: 5_000 },
      },
      log: { level: 'info', subsystems: [], format: 'auto' },
      gracePeriodMs: 60_000,
    };
    expect(config).toEqual(expected);
  });

  it('is deep-frozen', () => {
    const config = defaultServerConfig();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.proxy.http)).toBe(true);
    expect(Object.isFrozen(config.log.subsystems)).toBe(true);
    expect(() => {
      (config.proxy as { timeoutMs: number }).timeoutMs = 1;
    }).toThrow(TypeError);
  });

  it('generates random 7-character node IDs, after the prefix when one is set', () => {
    expect(generateNodeId()).toMatch(/^[a-z0-9]{7}$/);
    expect(generateNodeId()).not.toBe(generateNodeId());
    const config = loadServerConfig({ flags: { 'cluster.node_id_prefix': 'piko-0-' } });
    expect(config.cluster.nodeId).toMatch(/^piko-0-[a-z0-9]{7}$/);
    expect(loadServerConfig({ flags: { 'cluster.node_id': 'node-a' } }).cluster.nodeId).toBe('node-a');
  });

  it('rejects node IDs that cannot travel in an admin URL path', () => {
    expect(configError(() => loadServerConfig({ flags: { 'cluster.node_id': 'a/b' } })).path).toBe('cluster.node_id');
  });

  it('reads a full YAML file with Piko keys', () => {
    const config = loadServerConfig({
      configPath: yaml(`
proxy:
  bind_addr: 127.0.0.1:9000
  advertise_addr: 10.0.0.1:9000
  timeout: 1m
  access_log:
    level: warn
    request_headers:
      block_list: [Cookie]
  http:
    write_timeout: 10s
  auth:
    hmac_secret_key: secret
    audience: aud
  tls:
    client:
      insecure_skip_verify: true
      server_name: piko.internal
upstream:
  tenants:
    - id: team-a
      auth:
        hmac_secret_key: a-secret
admin:
  auth:
    jwks:
      endpoint: https://idp.example/jwks.json
      cache_ttl: 5m
cluster:
  node_id: node-1
  registry: kubernetes
  secret: a-secret-of-sixteen-plus
  kubernetes:
    namespace: piko
log:
  level: debug
  subsystems: [proxy, upstream]
grace_period: 30s
`),
    });
    expect(config.proxy).toMatchObject({
      bindAddr: '127.0.0.1:9000',
      advertiseAddr: '10.0.0.1:9000',
      timeoutMs: 60_000,
      accessLog: { level: 'warn', requestHeaders: { blockList: ['Cookie'], allowList: [] } },
      http: { writeTimeoutMs: 10_000, readTimeoutMs: 10_000 },
      auth: { hmacSecretKey: 'secret', audience: 'aud', disableDisconnectOnExpiry: false },
      tls: { client: { insecureSkipVerify: true, serverName: 'piko.internal' } },
    });
    expect(config.proxy.auth.jwks).toBeUndefined();
    expect(config.upstream.tenants).toEqual([{ id: 'team-a', auth: { hmacSecretKey: 'a-secret', disableDisconnectOnExpiry: false } }]);
    expect(config.admin.auth.jwks).toEqual({ endpoint: 'https://idp.example/jwks.json', cacheTtlMs: 300_000, timeoutMs: 0 });
    expect(config.cluster).toMatchObject({ nodeId: 'node-1', registry: 'kubernetes', kubernetes: { namespace: 'piko' } });
    expect(config.log).toEqual({ level: 'debug', subsystems: ['proxy', 'upstream'], format: 'auto' });
    expect(config.gracePeriodMs).toBe(30_000);
  });

  it('lets a key in the file beat the same flag', () => {
    const configPath = yaml('proxy:\n  timeout: 7s\n');
    const config = loadServerConfig({ flags: { 'proxy.timeout': 5_000, grace_period: 5_000 }, configPath });
    expect(config.proxy.timeoutMs).toBe(7_000);
    expect(config.gracePeriodMs).toBe(5_000);
  });

  it.each([
    [{ 'proxy.tls.cert': 'c.pem' }, 'proxy.tls.key is required when proxy.tls.cert is set'],
    [{ 'admin.tls.key': 'k.pem' }, 'admin.tls.cert is required when admin.tls.key is set'],
    [{ 'proxy.tls.client.cert': 'c.pem' }, 'proxy.tls.client.key is required when proxy.tls.client.cert is set'],
    [
      { 'proxy.access_log.request_headers.allow_list': ['a'], 'proxy.access_log.request_headers.block_list': ['b'] },
      'proxy.access_log.request_headers: allow_list and block_list cannot both be set',
    ],
    [
      { 'upstream.auth.hmac_secret_key': 's', 'upstream.auth.jwks.endpoint': 'https://idp/jwks' },
      'upstream.auth.jwks.endpoint cannot be combined with',
    ],
    [{ 'admin.auth.jwks.endpoint': 'ftp://idp/jwks' }, 'unsupported scheme ftp'],
    [{ 'cluster.kubernetes.renew_interval': 20_000 }, 'renew_interval must be shorter than'],
    [{ grace_period: 0 }, '--grace-period must be greater than 0'],
  ])('rejects %j', (flags, message) => {
    expect(configError(() => loadServerConfig({ flags })).message).toContain(message);
  });

  it('allows both header lists when the access log is off, as Piko', () => {
    const config = loadServerConfig({
      flags: {
        'proxy.access_log.disable': true,
        'proxy.access_log.request_headers.allow_list': ['a'],
        'proxy.access_log.request_headers.block_list': ['b'],
      },
    });
    expect(config.proxy.accessLog.disable).toBe(true);
  });

  it('requires auth on every tenant and unique tenant IDs', () => {
    expect(configError(() => loadServerConfig({ configPath: yaml('upstream:\n  tenants:\n    - id: a\n') })).message).toContain(
      'upstream.tenants[0].auth: a tenant needs a verification key or JWKS endpoint',
    );
    const dup = yaml(
      'upstream:\n  tenants:\n    - id: a\n      auth: {hmac_secret_key: x}\n    - id: a\n      auth: {hmac_secret_key: y}\n',
    );
    expect(configError(() => loadServerConfig({ configPath: dup })).path).toBe('upstream.tenants[1].id');
  });

  it('reads ServiceAccount rules and refuses one without audience, with a bad name, or granting nothing', () => {
    const config = loadServerConfig({
      configPath: yaml(
        'upstream:\n  service_accounts:\n    audience: piko.dev/piko/piko\n    cache_ttl: 1m\n    rules:\n' +
          '      - {namespace: team-a, name: web, endpoints: [web, api]}\n      - {namespace: team-b, endpoint_prefix: team-b-}\n',
      ),
    });
    expect(config.upstream.serviceAccounts).toEqual({
      audience: 'piko.dev/piko/piko',
      cacheTtlMs: 60_000,
      rules: [
        { namespace: 'team-a', name: 'web', endpoints: ['web', 'api'], endpointPrefix: '' },
        { namespace: 'team-b', name: '', endpoints: [], endpointPrefix: 'team-b-' },
      ],
    });
    const rules = (body: string, audience = 'aud'): string =>
      yaml(`upstream:\n  service_accounts:\n    audience: '${audience}'\n    rules:\n      - ${body}\n`);
    expect(configError(() => loadServerConfig({ configPath: rules('{namespace: a, endpoints: [x]}', '') })).path).toBe(
      'upstream.service_accounts.audience',
    );
    expect(configError(() => loadServerConfig({ configPath: rules('{namespace: A_b, endpoints: [x]}') })).path).toBe(
      'upstream.service_accounts.rules[0].namespace',
    );
    expect(configError(() => loadServerConfig({ configPath: rules('{namespace: a}') })).message).toContain(
      'upstream.service_accounts.rules[0] must set endpoints or endpoint_prefix',
    );
    expect(configError(() => loadServerConfig({ configPath: rules("{namespace: a, endpoints: ['x/y']}") })).message).toContain(
      'upstream.service_accounts.rules[0].endpoints[0]: endpoint id "x/y" contains',
    );
  });

  it('rejects an invalid public key with its path', () => {
    const err = configError(() => loadServerConfig({ flags: { 'proxy.auth.rsa_public_key': 'not a pem' } }));
    expect(err.path).toMatch(/^proxy\.auth/);
  });
});

describe('cluster options', () => {
  it('requires a secret with the kubernetes registry', () => {
    expect(() => loadServerConfig({ flags: { 'cluster.registry': 'kubernetes' } })).toThrow('cluster.secret is required');
  });

  it('refuses a short secret and a cluster name Kubernetes labels cannot hold', () => {
    expect(() => loadServerConfig({ flags: { 'cluster.secret': 'short' } })).toThrow('at least 16 characters');
    expect(() => loadServerConfig({ flags: { 'cluster.name': 'Not_Valid' } })).toThrow('cluster.name');
  });
});

describe('upstream session windows', () => {
  it('takes a larger stream window with a message limit to match, and refuses one past the limit', () => {
    const cfg = loadServerConfig({
      flags: { 'upstream.session.max_stream_window': 8 * 1024 * 1024, 'upstream.max_message_bytes': 8 * 1024 * 1024 },
    });
    expect(cfg.upstream.session.maxStreamWindow).toBe(8 * 1024 * 1024);
    expect(() => loadServerConfig({ flags: { 'upstream.session.max_stream_window': 8 * 1024 * 1024 } })).toThrow(
      'upstream.session.max_stream_window must not exceed upstream.max_message_bytes',
    );
    expect(() => loadServerConfig({ flags: { 'upstream.session.max_stream_window': 1024 } })).toThrow(
      'max-stream-window must be at least 262144',
    );
  });
});
