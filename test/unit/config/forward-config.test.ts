import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../dataplane/config/errors';
import { defaultForwardConfig, loadForwardConfig, type ForwardConfig } from '../../../dataplane/config/forward-config';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('forward config', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'piko-forward-config-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('has Piko defaults that validate', () => {
    const expected: ForwardConfig = {
      connect: { url: 'http://localhost:8000', timeoutMs: 30_000, tls: { insecureSkipVerify: false } },
      log: { level: 'info', subsystems: [], format: 'auto' },
      ports: [],
    };
    expect(defaultForwardConfig()).toEqual(expected);
  });

  it('reads ports from YAML and normalises their addresses', () => {
    const path = join(dir, 'forward.yaml');
    writeFileSync(
      path,
      'connect:\n  url: https://piko:8000\n  token: t\n  tls:\n    insecure_skip_verify: true\nports:\n  - addr: 3000\n    endpoint_id: a\n  - addr: 0.0.0.0:3001\n    endpoint_id: b\n',
    );
    const config = loadForwardConfig({ configPath: path });
    expect(config.ports).toEqual([
      { addr: 'localhost:3000', endpointId: 'a' },
      { addr: '0.0.0.0:3001', endpointId: 'b' },
    ]);
    expect(config.connect).toEqual({
      url: 'https://piko:8000',
      token: 't',
      timeoutMs: 30_000,
      tls: { insecureSkipVerify: true },
    });
  });

  it('lets the CLI port replace the file ports', () => {
    const path = join(dir, 'replace.yaml');
    writeFileSync(path, 'ports:\n  - addr: 3000\n    endpoint_id: a\n');
    expect(loadForwardConfig({ configPath: path, port: { addr: '4000', endpointId: 'b' } }).ports).toEqual([
      { addr: 'localhost:4000', endpointId: 'b' },
    ]);
  });

  it.each([
    [{ addr: 'x', endpointId: 'a' }, 'ports[0].addr "x" must be a port or host:port'],
    [{ addr: '3000', endpointId: 'a b' }, 'ports[0].endpoint_id: endpoint id "a b" contains " "'],
  ])('rejects port %j', (port, message) => {
    expect(configError(() => loadForwardConfig({ port })).message).toContain(message);
  });

  it('rejects a YAML port without an endpoint', () => {
    const path = join(dir, 'missing.yaml');
    writeFileSync(path, 'ports:\n  - addr: 3000\n');
    expect(configError(() => loadForwardConfig({ configPath: path })).message).toMatch(/^ports\[0\]\.endpoint_id is required/);
  });
});
