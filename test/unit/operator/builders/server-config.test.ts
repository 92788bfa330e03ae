import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { loadServerConfig } from '../../../../dataplane/config/server-config';
import { configHash, renderServerConfig } from '../../../../operator/builders/server-config';
import { makeCluster } from '../fixtures';

const POD_ENV = {
  POD_NAME: 'piko-1',
  POD_NAMESPACE: 'edge',
  POD_UID: 'u',
  POD_IP: '10.4.0.17',
  PIKO_CLUSTER_SECRET: 'a1'.repeat(32),
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'piko-operator-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Loads the rendered YAML with the data plane's own loader, as `piko server --config.expand-env` would. */
function load(text: string, env: Record<string, string>) {
  const file = path.join(dir, `server-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return loadServerConfig({ configPath: file, expandEnv: true, env });
}

describe('renderServerConfig', () => {
  it("renders issued certificates' {node} server name so the data plane loads it as given", () => {
    const cluster = makeCluster({
      tls: {
        issuerRef: { name: 'internal-ca' },
        proxy: { secretName: 'piko-proxy-tls' },
        forwarding: { rootCASecretRef: { name: 'piko-proxy-tls', key: 'ca.crt' } },
      },
    });
    expect(load(renderServerConfig(cluster), POD_ENV).proxy.tls.client.serverName).toBe('{node}.piko-nodes.edge.svc');
  });

  it('renders a config the data plane loads, with per-pod values from the environment', () => {
    const config = load(renderServerConfig(makeCluster()), POD_ENV);
    expect(config.proxy.bindAddr).toBe(':8000');
    expect(config.proxy.advertiseAddr).toBe('[10.4.0.17]:8000');
    expect(config.upstream.advertiseAddr).toBe('[10.4.0.17]:8001');
    expect(config.admin.advertiseAddr).toBe('[10.4.0.17]:8002');
    expect(config.proxy.timeoutMs).toBe(30_000);
    expect(config.proxy.upstreamWaitMs).toBe(5_000);
    expect(config.cluster).toEqual({
      nodeId: 'piko-1',
      name: 'piko',
      registry: 'kubernetes',
      secret: POD_ENV.PIKO_CLUSTER_SECRET,
      kubernetes: { namespace: 'edge', leaseDurationMs: 15_000, renewIntervalMs: 5_000 },
    });
    expect(config.log.level).toBe('info');
    expect(config.gracePeriodMs).toBe(60_000);
  });

  it('tells agents the exposed wildcard URL of their endpoint, and nothing when the host has no place for the ID', () => {
    const exposed = (proxyHost: string, tlsSecretName?: string) =>
      load(
        renderServerConfig(
          makeCluster({
            exposure: {
              ingress: {
                proxy: { host: proxyHost, ...(tlsSecretName ? { tlsSecretName } : {}) },
                upstream: { host: 'agents.tunnel.example.com' },
              },
            },
          }),
        ),
        POD_ENV,
      ).proxy.publicUrl;
    expect(exposed('*.tunnel.example.com', 'tunnel-tls')).toBe('https://<endpoint>.tunnel.example.com');
    expect(exposed('*.tunnel.example.com')).toBe('http://<endpoint>.tunnel.example.com');
    // One host for every endpoint: clients name theirs in x-piko-endpoint, so no URL per endpoint exists.
    expect(exposed('tunnel.example.com')).toBeUndefined();
    expect(load(renderServerConfig(makeCluster()), POD_ENV).proxy.publicUrl).toBeUndefined();
  });

  it('renders ServiceAccount rules with the audience of this PikoCluster, beside no JWT key', () => {
    const cluster = makeCluster({
      auth: {
        upstream: {
          serviceAccounts: [
            { namespace: 'team-a', name: 'web', endpoints: ['web', 'api'] },
            { namespace: 'team-b', endpointPrefix: 'b-' },
          ],
        },
      },
    });
    const config = load(renderServerConfig(cluster), POD_ENV);
    expect(config.upstream.serviceAccounts).toEqual({
      audience: `piko.dev/${cluster.metadata.namespace}/${cluster.metadata.name}`,
      cacheTtlMs: 300_000,
      rules: [
        { namespace: 'team-a', name: 'web', endpoints: ['web', 'api'], endpointPrefix: '' },
        { namespace: 'team-b', name: '', endpoints: [], endpointPrefix: 'b-' },
      ],
    });
    expect(config.upstream.auth.hmacSecretKey).toBeUndefined();
  });

  it('brackets an IPv6 pod address so host and port stay apart', () => {
    const config = load(renderServerConfig(makeCluster()), { ...POD_ENV, POD_IP: 'fd00:10:4::17' });
    expect(config.proxy.advertiseAddr).toBe('[fd00:10:4::17]:8000');
  });

  it('carries ports, timings and log level from the spec', () => {
    const cluster = makeCluster({
      ports: { proxy: 9000, upstream: 9001, admin: 9002 },
      proxyTimeout: '1m',
      upstreamWait: '0s',
      registry: { leaseDuration: '30s', renewInterval: '10s' },
      logLevel: 'debug',
      gracePeriod: '2m30s',
    });
    const config = load(renderServerConfig(cluster), POD_ENV);
    expect([config.proxy.bindAddr, config.upstream.bindAddr, config.admin.bindAddr]).toEqual([':9000', ':9001', ':9002']);
    expect(config.proxy.advertiseAddr).toBe('[10.4.0.17]:9000');
    expect(config.proxy.timeoutMs).toBe(60_000);
    expect(config.proxy.upstreamWaitMs).toBe(0);
    expect(config.cluster.kubernetes).toMatchObject({ leaseDurationMs: 30_000, renewIntervalMs: 10_000 });
    expect(config.log.level).toBe('debug');
    expect(config.gracePeriodMs).toBe(150_000);
  });

  it('references the HMAC secret from the environment and renders claims and JWKS settings', () => {
    const cluster = makeCluster({
      auth: {
        proxy: { hmacSecretKeyRef: { name: 'auth', key: 'hmac' }, audience: 'piko', issuer: 'https://issuer' },
        upstream: { rsaPublicKeyRef: { name: 'auth', key: 'rsa.pem' }, disableDisconnectOnExpiry: true },
        admin: { jwks: { url: 'https://issuer/jwks.json', cacheTTL: '10m', timeout: '3s' } },
      },
    });
    const hmac = 'k3y"with\\odd$chars+/=';
    const config = load(renderServerConfig(cluster), { ...POD_ENV, PIKO_PROXY_HMAC_SECRET_KEY: hmac });
    expect(config.proxy.auth).toMatchObject({ hmacSecretKey: hmac, audience: 'piko', issuer: 'https://issuer' });
    // The PEM key comes as a flag (see pod-contract.test.ts); the YAML only says what else the block holds.
    expect(config.upstream.auth).toMatchObject({ disableDisconnectOnExpiry: true });
    expect(config.upstream.auth.rsaPublicKey).toBeUndefined();
    expect(config.admin.auth.jwks).toEqual({ endpoint: 'https://issuer/jwks.json', cacheTtlMs: 600_000, timeoutMs: 3_000 });
  });

  it('points TLS at the mounted Secret files, forwarding TLS under proxy.tls.client', () => {
    const cluster = makeCluster({
      tls: {
        proxy: { secretName: 'proxy-tls', clientCASecretRef: { name: 'ca', key: 'ca.pem' } },
        admin: { secretName: 'admin-tls' },
        forwarding: { rootCASecretRef: { name: 'ca', key: 'ca.pem' }, serverName: 'piko.internal', clientCertSecretName: 'node-tls' },
      },
    });
    const doc = parse(renderServerConfig(cluster)) as Record<string, { tls?: unknown }>;
    expect(doc['proxy']?.tls).toEqual({
      cert: '/etc/piko/tls/proxy/tls.crt',
      key: '/etc/piko/tls/proxy/tls.key',
      client_cas: '/etc/piko/tls/proxy-client-ca/ca.crt',
      client: {
        cert: '/etc/piko/tls/forwarding-client/tls.crt',
        key: '/etc/piko/tls/forwarding-client/tls.key',
        root_cas: '/etc/piko/tls/forwarding-ca/ca.crt',
        server_name: 'piko.internal',
      },
    });
    expect(doc['admin']?.tls).toEqual({ cert: '/etc/piko/tls/admin/tls.crt', key: '/etc/piko/tls/admin/tls.key' });
    expect(doc['upstream']?.tls).toBeUndefined();
  });

  it('renders the same text for the same spec, and a different hash when it changes', () => {
    const a = renderServerConfig(makeCluster());
    expect(renderServerConfig(makeCluster())).toBe(a);
    expect(configHash(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(configHash(renderServerConfig(makeCluster({ logLevel: 'warn' })))).not.toBe(configHash(a));
  });

  it('holds no secret, only references to the environment', () => {
    const text = renderServerConfig(makeCluster({ auth: { proxy: { hmacSecretKeyRef: { name: 'auth', key: 'hmac' } } } }));
    expect(text).toContain("secret: '${PIKO_CLUSTER_SECRET}'");
    expect(text).toContain("hmac_secret_key: '${PIKO_PROXY_HMAC_SECRET_KEY}'");
  });
});
