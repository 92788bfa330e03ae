import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normaliseUpstreamAddr } from '../../../dataplane/config/addr';
import { defaultAgentConfig, loadAgentConfig, type AgentConfig, type ListenerConfig } from '../../../dataplane/config/agent-config';
import { ConfigError } from '../../../dataplane/config/errors';
import { normaliseDialAddr } from '../../../dataplane/net/host-port';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const noHeaders = { allowList: [], blockList: [] };

describe('agent config', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'piko-agent-config-'));
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
    const expected: AgentConfig = {
      connect: { url: 'http://localhost:8001', timeoutMs: 30_000, tls: { insecureSkipVerify: false } },
      server: { enabled: false, bindAddr: ':5000' },
      inspect: { bindAddr: '', allowRemote: false, maxRequests: 100, maxBodyBytes: 65536, maxTotalBytes: 16777216 },
      log: { level: 'info', subsystems: [], format: 'auto' },
      gracePeriodMs: 60_000,
      listeners: [],
    };
    const config = defaultAgentConfig();
    expect(config).toEqual(expected);
    expect(Object.isFrozen(config.connect.tls)).toBe(true);
  });

  it('builds a CLI listener from arguments and listener flags with Piko defaults', () => {
    const config = loadAgentConfig({
      listener: { protocol: 'http', endpointId: 'my-endpoint', addr: '3000', flags: { timeout: 5_000 } },
    });
    const expected: ListenerConfig = {
      endpointId: 'my-endpoint',
      addr: 'http://localhost:3000',
      protocol: 'http',
      timeoutMs: 5_000,
      accessLog: { level: 'info', disable: false, requestHeaders: noHeaders, responseHeaders: noHeaders },
      httpClient: { keepAliveTimeoutMs: 30_000, idleConnTimeoutMs: 90_000, maxIdleConns: 100, disableCompression: false },
      tls: { insecureSkipVerify: false },
    };
    expect(config.listeners).toEqual([expected]);
  });

  it('reads listeners from YAML, filling Piko defaults', () => {
    const config = loadAgentConfig({
      configPath: yaml(`
connect:
  url: https://piko.example:8001
  token: tok
  tenant_id: team-a
  proxy_url: http://proxy:3128
  tls:
    root_cas: /ca.pem
server:
  enabled: true
listeners:
  - endpoint_id: web
    addr: https://10.0.0.1:8443
    timeout: 15s
    tls:
      insecure_skip_verify: true
    http_client:
      max_idle_conns: -1
  - endpoint_id: db
    addr: 5432
    protocol: tcp
    timeout: 2s
    access_log:
      disable: true
`),
    });
    expect(config.connect).toEqual({
      url: 'https://piko.example:8001',
      token: 'tok',
      tenantId: 'team-a',
      proxyUrl: 'http://proxy:3128',
      timeoutMs: 30_000,
      tls: { rootCas: '/ca.pem', insecureSkipVerify: false },
    });
    expect(config.server.enabled).toBe(true);
    expect(config.listeners[0]).toMatchObject({
      endpointId: 'web',
      addr: 'https://10.0.0.1:8443',
      protocol: 'http',
      timeoutMs: 15_000,
      tls: { insecureSkipVerify: true },
      accessLog: { level: 'info', disable: false },
      httpClient: { maxIdleConns: -1, keepAliveTimeoutMs: 30_000 },
    });
    expect(config.listeners[1]).toMatchObject({ endpointId: 'db', addr: 'localhost:5432', protocol: 'tcp', timeoutMs: 2_000 });
  });

  it('requires a timeout on YAML listeners, as Piko', () => {
    const err = configError(() => loadAgentConfig({ configPath: yaml('listeners:\n  - endpoint_id: a\n    addr: 3000\n') }));
    expect(err.message).toMatch(/^listeners\[0\]\.timeout is required/);
  });

  it('treats zero HTTP client settings as Piko defaults', () => {
    const config = loadAgentConfig({
      configPath: yaml(
        'listeners:\n  - endpoint_id: a\n    addr: 3000\n    timeout: 1s\n    http_client:\n      keep_alive_timeout: 0s\n      idle_conn_timeout: 0\n      max_idle_conns: 0\n',
      ),
    });
    expect(config.listeners[0]!.httpClient).toMatchObject({
      keepAliveTimeoutMs: 30_000,
      idleConnTimeoutMs: 90_000,
      maxIdleConns: 100,
    });
  });

  it('adds --listen listeners in short form to those of the file, with listener defaults', () => {
    const config = loadAgentConfig({
      configPath: yaml('listeners:\n  - endpoint_id: file\n    addr: "9000"\n    timeout: 5s\n'),
      flags: { listen: ['web=8080,db=localhost:5432/tcp', 'api=8081/http'] },
    });
    expect(config.listeners.map((l) => [l.endpointId, l.addr, l.protocol, l.timeoutMs])).toEqual([
      ['file', 'http://localhost:9000', 'http', 5_000],
      ['web', 'http://localhost:8080', 'http', 10_000],
      ['db', 'localhost:5432', 'tcp', 10_000],
      ['api', 'http://localhost:8081', 'http', 10_000],
    ]);
    expect(Object.keys(config)).not.toContain('listen');
  });

  it('refuses a --listen listener with its problem', () => {
    const problem = (listen: string): string => configError(() => loadAgentConfig({ flags: { listen: [listen] } })).message;
    expect(problem('web')).toContain('"web" is not <endpoint>=<port>[/http|/tcp]');
    expect(problem('web=8080/udp')).toContain('protocol "udp" is not http or tcp');
    expect(problem('we b=8080')).toContain('contains " "');
    expect(problem('web=70000')).toContain('port 70000 is out of range (1-65535)');
    expect(problem('web=8080,web=8081')).toContain('endpoint "web" is listed twice');
    expect(problem('web=local:host')).toContain('"local:host" is not a port or host:port');
  });

  it('replaces YAML listeners with the CLI listener, as Piko', () => {
    const config = loadAgentConfig({
      configPath: yaml('listeners:\n  - endpoint_id: from-file\n    addr: 3000\n    timeout: 1s\n'),
      listener: { protocol: 'tcp', endpointId: 'from-cli', addr: '4000' },
    });
    expect(config.listeners.map((l) => l.endpointId)).toEqual(['from-cli']);
  });

  it.each([
    [{ protocol: 'http' as const, endpointId: 'a/b', addr: '3000' }, 'listeners[0].endpoint_id: endpoint id "a/b" contains "/"'],
    [{ protocol: 'http' as const, endpointId: '', addr: '3000' }, 'listeners[0].endpoint_id: endpoint id is empty'],
    [{ protocol: 'http' as const, endpointId: 'a', addr: 'nope' }, 'listeners[0].addr "nope" must be a port, host:port or http(s) URL'],
    [{ protocol: 'tcp' as const, endpointId: 'a', addr: 'http://x:1' }, 'listeners[0].addr "http://x:1" must be a port or host:port'],
    [{ protocol: 'http' as const, endpointId: 'a', addr: '3000', flags: { timeout: 0 } }, '--timeout must be greater than 0'],
  ])('rejects listener %j', (listener, message) => {
    expect(configError(() => loadAgentConfig({ listener })).message).toContain(message);
  });

  it.each([
    [{ 'connect.url': 'not a url' }, 'connect.url "not a url" is not a URL'],
    [{ 'connect.url': 'ftp://x' }, 'connect.url must use one of http, https, ws, wss'],
    [{ 'connect.proxy_url': 'socks5://x' }, 'connect.proxy_url must use one of http, https'],
    [{ 'connect.tls.cert': 'c.pem' }, 'connect.tls.key is required when connect.tls.cert is set'],
    [{ 'connect.timeout': 0 }, '--connect.timeout must be greater than 0'],
  ])('rejects flags %j', (flags, message) => {
    expect(configError(() => loadAgentConfig({ flags })).message).toContain(message);
  });
});

describe('listener addresses', () => {
  it.each([
    ['3000', 'http', 'http://localhost:3000'],
    ['3000', 'tcp', 'localhost:3000'],
    ['10.0.0.1:3000', 'http', 'http://10.0.0.1:3000'],
    ['10.0.0.1:3000', 'tcp', '10.0.0.1:3000'],
    [':3000', 'tcp', 'localhost:3000'],
    ['[::1]:3000', 'tcp', '[::1]:3000'],
    ['[::1]:3000', 'http', 'http://[::1]:3000'],
    ['https://svc.local:8443/base', 'http', 'https://svc.local:8443/base'],
    ['http://svc', 'http', 'http://svc'],
  ] as const)('normalises %j (%s) to %j', (addr, protocol, expected) => {
    expect(normaliseUpstreamAddr(addr, protocol)).toBe(expected);
  });

  it.each([
    ['0', 'tcp'],
    ['65536', 'tcp'],
    ['host', 'tcp'],
    ['host:port', 'tcp'],
    ['::1:3000', 'tcp'],
    ['ftp://x:21', 'http'],
    ['http://', 'http'],
    ['http://x:1', 'tcp'],
    ['a b:1', 'tcp'],
  ] as const)('rejects %j (%s)', (addr, protocol) => {
    expect(normaliseUpstreamAddr(addr, protocol)).toBeUndefined();
  });

  it('keeps host:port for listen addresses', () => {
    expect(normaliseDialAddr('0.0.0.0:3000')).toBe('0.0.0.0:3000');
    expect(normaliseDialAddr('65535')).toBe('localhost:65535');
  });
});
