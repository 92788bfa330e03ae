import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentCommand, parseForwardCommand, parseServerCommand } from '../../../dataplane/cli/parse';
import { ConfigError } from '../../../dataplane/config/errors';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'piko-cli-parse-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
const yaml = (text: string): string => {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, text);
  return path;
};

describe('piko server flags', () => {
  it('gives the defaults without flags', () => {
    const config = parseServerCommand([]);
    expect(config.proxy.bindAddr).toBe(':8000');
    expect(config.gracePeriodMs).toBe(60_000);
  });

  it('parses every kind of flag', () => {
    const config = parseServerCommand([
      '--proxy.bind-addr=127.0.0.1:9000',
      '--proxy.timeout',
      '5s',
      '--proxy.http.max-header-bytes',
      '2048',
      '--proxy.access-log.disable',
      '--log.subsystems',
      'proxy,upstream',
      '--log.subsystems',
      'admin',
      '--cluster.registry',
      'kubernetes',
      '--cluster.secret',
      'sixteen-or-more-chars',
      '--cluster.kubernetes.lease-duration',
      '1m',
      '--upstream.auth.hmac-secret-key',
      'secret',
      '--grace-period',
      '10s',
    ]);
    expect(config.proxy).toMatchObject({
      bindAddr: '127.0.0.1:9000',
      timeoutMs: 5_000,
      http: { maxHeaderBytes: 2048 },
      accessLog: { disable: true },
    });
    expect(config.log.subsystems).toEqual(['proxy', 'upstream', 'admin']);
    expect(config.cluster).toMatchObject({ registry: 'kubernetes', kubernetes: { leaseDurationMs: 60_000 } });
    expect(config.upstream.auth.hmacSecretKey).toBe('secret');
    expect(config.gracePeriodMs).toBe(10_000);
  });

  it('accepts --flag=true and --flag=false for booleans, as pflag', () => {
    expect(parseServerCommand(['--proxy.access-log.disable=false']).proxy.accessLog.disable).toBe(false);
    expect(parseServerCommand(['--proxy.access-log.disable=1']).proxy.accessLog.disable).toBe(true);
    expect(configError(() => parseServerCommand(['--proxy.access-log.disable=maybe'])).message).toBe(
      '--proxy.access-log.disable must be a boolean, got "maybe"',
    );
  });

  it.each([
    [['--proxy.timeout', '5x'], '--proxy.timeout must be a duration: unknown unit "x" in duration "5x"'],
    [['--proxy.timeout', '-1s'], '--proxy.timeout must not be negative'],
    [['--proxy.http.max-header-bytes', '1k'], '--proxy.http.max-header-bytes must be an integer, got "1k"'],
    [['--log.level', 'loud'], '--log.level must be one of debug, info, warn, error, got "loud"'],
    [['--cluster.registry', 'etcd'], '--cluster.registry must be one of memory, kubernetes'],
    [['--proxy.bind-addr', ''], '--proxy.bind-addr must not be empty'],
    [['--cluster.join', 'a'], "unknown option '--cluster.join'"],
    [['--cluster.gossip.bind-addr', ':8003'], "unknown option '--cluster.gossip.bind-addr'"],
    [['extra'], 'too many arguments'],
    [['--proxy.tls.cert', 'c.pem'], 'proxy.tls.key is required when proxy.tls.cert is set'],
  ])('rejects %j', (argv, message) => {
    expect(configError(() => parseServerCommand(argv)).message).toContain(message);
  });

  it('lets a key in the config file beat the same flag', () => {
    const path = yaml('proxy:\n  timeout: 7s\n');
    const config = parseServerCommand(['--proxy.timeout', '5s', '--proxy.http.idle-timeout', '1m', '--config.path', path]);
    expect(config.proxy.timeoutMs).toBe(7_000);
    expect(config.proxy.http.idleTimeoutMs).toBe(60_000);
  });

  it('expands environment variables in the file with --config.expand-env', () => {
    const path = yaml('cluster:\n  node_id_prefix: ${POD_NAME}-\nproxy:\n  timeout: ${TIMEOUT:9s}\n');
    const env = { POD_NAME: 'piko-1' };
    const config = parseServerCommand(['--config.path', path, '--config.expand-env'], { env });
    expect(config.cluster.nodeId).toMatch(/^piko-1-[a-z0-9]{7}$/);
    expect(config.proxy.timeoutMs).toBe(9_000);
    expect(configError(() => parseServerCommand(['--config.path', path, '--config.expand-env=false'], { env })).message).toContain(
      'proxy.timeout must be a duration',
    );
  });

  it('reports an unknown key in the config file with its path', () => {
    const path = yaml('proxy:\n  timout: 5s\n');
    const err = configError(() => parseServerCommand(['--config.path', path]));
    expect(err.message).toMatch(/^unknown key proxy\.timout/);
    expect(err.path).toBe('proxy.timout');
  });
});

describe('piko agent flags', () => {
  it('builds an HTTP listener from arguments and flags', () => {
    const config = parseAgentCommand([
      'http',
      'my-endpoint',
      '3000',
      '--timeout',
      '5s',
      '--access-log.request-headers.block-list',
      'Cookie,X-Secret',
      '--http-client.max-idle-conns',
      '-1',
      '--http-client.disable-compression',
    ]);
    expect(config.listeners).toEqual([
      expect.objectContaining({
        endpointId: 'my-endpoint',
        addr: 'http://localhost:3000',
        protocol: 'http',
        timeoutMs: 5_000,
        accessLog: expect.objectContaining({ requestHeaders: { allowList: [], blockList: ['Cookie', 'X-Secret'] } }),
        httpClient: expect.objectContaining({ maxIdleConns: -1, disableCompression: true }),
      }),
    ]);
  });

  it('accepts the agent flags before or after the subcommand', () => {
    const before = parseAgentCommand(['--connect.url', 'https://piko:8001', '--log.level=debug', 'tcp', 'db', '5432']);
    const after = parseAgentCommand(['tcp', 'db', '5432', '--connect.url', 'https://piko:8001', '--log.level=debug']);
    for (const config of [before, after]) {
      expect(config.connect.url).toBe('https://piko:8001');
      expect(config.log.level).toBe('debug');
      expect(config.listeners[0]).toMatchObject({ protocol: 'tcp', addr: 'localhost:5432', timeoutMs: 10_000 });
    }
  });

  it('parses the connect, server and TLS flags', () => {
    const config = parseAgentCommand([
      'http',
      'a',
      '3000',
      '--connect.token',
      'tok',
      '--connect.tenant-id',
      'team',
      '--connect.timeout',
      '1m',
      '--connect.tls.root-cas',
      '/ca.pem',
      '--connect.tls.insecure-skip-verify',
      '--connect.proxy-url',
      'http://proxy:3128',
      '--server.enabled',
      '--server.bind-addr',
      ':5001',
      '--grace-period',
      '5s',
    ]);
    expect(config.connect).toEqual({
      url: 'http://localhost:8001',
      token: 'tok',
      tenantId: 'team',
      timeoutMs: 60_000,
      tls: { rootCas: '/ca.pem', insecureSkipVerify: true },
      proxyUrl: 'http://proxy:3128',
    });
    expect(config.server).toEqual({ enabled: true, bindAddr: ':5001' });
    expect(config.gracePeriodMs).toBe(5_000);
  });

  it('offers TCP listeners only the flags Piko gives them', () => {
    expect(parseAgentCommand(['tcp', 'a', '3000', '--access-log.disable']).listeners[0]!.accessLog.disable).toBe(true);
    expect(configError(() => parseAgentCommand(['tcp', 'a', '3000', '--http-client.max-idle-conns', '5'])).message).toContain(
      "unknown option '--http-client.max-idle-conns'",
    );
  });

  it('replaces the file listeners with the argument listener', () => {
    const path = yaml('listeners:\n  - endpoint_id: from-file\n    addr: 3000\n    timeout: 1s\n');
    expect(parseAgentCommand(['http', 'from-cli', '4000', '--config.path', path]).listeners.map((l) => l.endpointId)).toEqual(['from-cli']);
    expect(parseAgentCommand(['start', '--config.path', path]).listeners.map((l) => l.endpointId)).toEqual(['from-file']);
  });

  it('fails to start without listeners', () => {
    expect(configError(() => parseAgentCommand(['start'])).message).toBe('no listeners configured');
  });

  it.each([
    [['http', 'a/b', '3000'], 'listeners[0].endpoint_id: endpoint id "a/b" contains "/"'],
    [['http', 'a', 'not-an-addr'], 'listeners[0].addr "not-an-addr" must be a port, host:port or http(s) URL'],
    [['http', 'a'], "missing required argument 'addr'"],
    [['tcp', 'a', '3000', '--timeout', '0s'], '--timeout must be greater than 0'],
  ])('rejects %j', (argv, message) => {
    expect(configError(() => parseAgentCommand(argv)).message).toContain(message);
  });
});

describe('piko forward flags', () => {
  it('builds a port from arguments', () => {
    const config = parseForwardCommand(['tcp', '3000', 'my-endpoint', '--connect.url', 'https://piko:8000', '--connect.token', 't']);
    expect(config.ports).toEqual([{ addr: 'localhost:3000', endpointId: 'my-endpoint' }]);
    expect(config.connect).toMatchObject({ url: 'https://piko:8000', token: 't' });
  });

  it('starts the ports of the file and fails without any', () => {
    const path = yaml('ports:\n  - addr: 0.0.0.0:3000\n    endpoint_id: a\n');
    expect(parseForwardCommand(['start', '--config.path', path]).ports).toEqual([{ addr: '0.0.0.0:3000', endpointId: 'a' }]);
    expect(configError(() => parseForwardCommand(['start'])).message).toBe('no ports configured');
  });

  it('has no tenant or proxy option, as Piko', () => {
    expect(configError(() => parseForwardCommand(['tcp', '3000', 'a', '--connect.tenant-id', 't'])).message).toContain(
      "unknown option '--connect.tenant-id'",
    );
  });
});
