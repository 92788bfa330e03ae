import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../dataplane/config/errors';
import { loadRaw } from '../../../dataplane/config/load';
import { expandEnvVars, parseYamlConfig } from '../../../dataplane/config/yaml-file';
import { SERVER_SPEC } from '../../../dataplane/config/server-config';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('ERR_CONFIG');
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const decode = (text: string) => parseYamlConfig(text, SERVER_SPEC, 'server.yaml');

describe('expandEnvVars', () => {
  const env = { A: 'x', A_B1c: 'long', EMPTY: '', URL: 'http://h:1' };

  it.each([
    ['${A}', 'x'],
    ['$A', 'x'],
    ['$A_B1c!', 'long!'],
    ['pre-${A}-post', 'pre-x-post'],
    ['${MISSING}', ''],
    ['$MISSING', ''],
    ['${MISSING:def}', 'def'],
    ['${EMPTY:def}', 'def'],
    ['${A:def}', 'x'],
    ['${MISSING:}', ''],
    ['${MISSING:http://x:1}', 'http://x:1'],
    ['${URL}', 'http://h:1'],
    ['cost $', 'cost $'],
    ['$ x', '$ x'],
    ['a$-b', 'ab'],
    ['$$', ''],
    ['$1', ''],
    ['${}', ''],
    ['a${b', 'ab'],
    ['no vars', 'no vars'],
  ])('expands %j to %j as Go os.Expand does', (text, expected) => {
    expect(expandEnvVars(text, env)).toBe(expected);
  });
});

describe('parseYamlConfig', () => {
  it('returns only the keys the file sets', () => {
    expect(decode('proxy:\n  timeout: 5s\n')).toEqual({ proxy: { timeout: 5_000 } });
    expect(decode('')).toEqual({});
    expect(decode('# only a comment\n')).toEqual({});
  });

  it('rejects an unknown key, naming its full path and line', () => {
    const err = configError(() => decode('proxy:\n  bind_addr: ":8000"\n  timout: 5s\n'));
    expect(err.message).toMatch(/^unknown key proxy\.timout/);
    expect(err.path).toBe('proxy.timout');
    expect(err.file).toBe('server.yaml');
    expect(err.line).toBe(3);
  });

  it('rejects unknown keys inside list items with the index', () => {
    const err = configError(() => decode('upstream:\n  tenants:\n    - id: t1\n      auth:\n        hmac_key: k\n'));
    expect(err.message).toMatch(/^unknown key upstream\.tenants\[0\]\.auth\.hmac_key/);
  });

  it('rejects keys Piko removed or we do not have', () => {
    expect(configError(() => decode('usage:\n  disable: true\n')).message).toMatch(/^unknown key usage/);
    expect(configError(() => decode('cluster:\n  join: [a]\n')).message).toMatch(/^unknown key cluster\.join/);
    expect(configError(() => decode('cluster:\n  gossip:\n    bind_addr: ":8003"\n')).path).toBe('cluster.gossip');
  });

  it.each([
    ['proxy:\n  timeout: abc\n', 'proxy.timeout must be a duration'],
    ['proxy:\n  timeout: 30\n', 'proxy.timeout must be a duration: missing unit in duration "30"'],
    ['proxy:\n  timeout: [1]\n', 'proxy.timeout must be a duration'],
    ['proxy:\n  timeout: -1s\n', 'proxy.timeout must not be negative'],
    ['proxy:\n  http:\n    max_header_bytes: lots\n', 'proxy.http.max_header_bytes must be an integer'],
    ['proxy:\n  http:\n    max_header_bytes: 1.5\n', 'proxy.http.max_header_bytes must be an integer'],
    ['proxy:\n  http:\n    max_header_bytes: 0\n', 'proxy.http.max_header_bytes must be greater than 0'],
    ['proxy:\n  access_log:\n    disable: maybe\n', 'proxy.access_log.disable must be a boolean'],
    ['log:\n  subsystems: proxy\n', 'log.subsystems must be a list of strings'],
    ['log:\n  subsystems: [[a]]\n', 'log.subsystems must be a list of strings'],
    ['log:\n  level: loud\n', 'log.level must be one of debug, info, warn, error, got "loud"'],
    ['proxy:\n  bind_addr: ""\n', 'proxy.bind_addr must not be empty'],
    ['proxy:\n  bind_addr: {a: 1}\n', 'proxy.bind_addr must be a string'],
    ['proxy: [1, 2]\n', 'proxy must be a mapping'],
    ['- a\n- b\n', 'the config file must be a mapping'],
    ['upstream:\n  tenants: {id: a}\n', 'upstream.tenants must be a list'],
    ['upstream:\n  tenants:\n    - auth: {hmac_secret_key: k}\n', 'upstream.tenants[0].id is required'],
    ['cluster:\n  registry: etcd\n', 'cluster.registry must be one of memory, kubernetes'],
  ])('rejects a wrong type: %j', (text, message) => {
    expect(configError(() => decode(text)).message).toContain(message);
  });

  it('accepts 0 as a duration without a unit, as Go does', () => {
    expect(decode('proxy:\n  timeout: 0\n')).toEqual({ proxy: { timeout: 0 } });
  });

  it('keeps scalars given to string keys as written', () => {
    expect(decode('proxy:\n  bind_addr: 9000\nupstream:\n  tenants:\n    - id: 0123\n      auth: {hmac_secret_key: 1e3}\n')).toMatchObject({
      proxy: { bind_addr: '9000' },
      upstream: { tenants: [{ id: '0123', auth: { hmac_secret_key: '1e3' } }] },
    });
  });

  it('accepts YAML 1.1 booleans, as Go yaml.v3 does for bool keys', () => {
    expect(decode('proxy:\n  access_log:\n    disable: yes\n')).toEqual({ proxy: { access_log: { disable: true } } });
    expect(decode('proxy:\n  access_log:\n    disable: Off\n')).toEqual({ proxy: { access_log: { disable: false } } });
  });

  it('treats null as absent, except that it empties lists', () => {
    expect(decode('proxy:\nlog:\n  level: ~\n  subsystems:\n')).toEqual({ log: { subsystems: [] } });
  });

  it('fills defaults into list items', () => {
    const raw = decode('upstream:\n  tenants:\n    - id: t1\n      auth: {hmac_secret_key: k}\n');
    const tenant = (raw.upstream as { tenants: Array<Record<string, unknown>> }).tenants[0]!;
    expect(tenant).toMatchObject({ id: 't1', auth: { hmac_secret_key: 'k', disable_disconnect_on_expiry: false } });
  });

  it('resolves aliases and merge keys', () => {
    const raw = decode(
      [
        'proxy:',
        '  auth: &auth',
        '    hmac_secret_key: shared',
        '    audience: aud',
        'admin:',
        '  auth:',
        '    <<: *auth',
        '    audience: admin-aud',
        'upstream:',
        '  auth: *auth',
      ].join('\n'),
    );
    expect(raw).toMatchObject({
      proxy: { auth: { hmac_secret_key: 'shared', audience: 'aud' } },
      admin: { auth: { hmac_secret_key: 'shared', audience: 'admin-aud' } },
      upstream: { auth: { hmac_secret_key: 'shared', audience: 'aud' } },
    });
  });

  it('rejects invalid YAML with its line', () => {
    const err = configError(() => decode('proxy:\n  timeout: 5s\n  timeout: 6s\n'));
    expect(err.message).toMatch(/^invalid YAML/);
    expect(err.line).toBe(3);
    expect(configError(() => decode('proxy: {a: 1\n')).message).toMatch(/^invalid YAML/);
  });
});

describe('loadRaw', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'piko-load-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('starts from the defaults', () => {
    expect(loadRaw(SERVER_SPEC)).toMatchObject({ proxy: { bind_addr: ':8000', timeout: 30_000 }, grace_period: 60_000 });
  });

  it('lays flags over defaults and the file over flags', () => {
    const configPath = file('precedence.yaml', 'proxy:\n  timeout: 7s\n');
    const raw = loadRaw(SERVER_SPEC, {
      flags: { 'proxy.timeout': 5_000, 'proxy.bind_addr': ':9000' },
      configPath,
    });
    // The file sets proxy.timeout, so it beats the flag; the flag still
    // beats the default for the key the file leaves alone.
    expect(raw).toMatchObject({ proxy: { timeout: 7_000, bind_addr: ':9000', http: { read_timeout: 10_000 } } });
  });

  it('replaces lists from the file whole', () => {
    const configPath = file('lists.yaml', 'log:\n  subsystems: [proxy]\n');
    expect(loadRaw(SERVER_SPEC, { flags: { 'log.subsystems': ['a', 'b'] }, configPath })).toMatchObject({
      log: { subsystems: ['proxy'] },
    });
  });

  it('expands environment variables only when asked', () => {
    const configPath = file('env.yaml', 'proxy:\n  bind_addr: "${BIND:127.0.0.1:8000}"\n  timeout: ${TIMEOUT}\n');
    const env = { TIMEOUT: '3s' };
    expect(loadRaw(SERVER_SPEC, { configPath, expandEnv: true, env })).toMatchObject({
      proxy: { bind_addr: '127.0.0.1:8000', timeout: 3_000 },
    });
    expect(loadRaw(SERVER_SPEC, { configPath, expandEnv: true, env: { ...env, BIND: ':1' } })).toMatchObject({
      proxy: { bind_addr: ':1' },
    });
    const err = configError(() => loadRaw(SERVER_SPEC, { configPath, expandEnv: false, env }));
    expect(err.message).toContain('proxy.timeout must be a duration');
  });

  it('reports an unreadable file', () => {
    const err = configError(() => loadRaw(SERVER_SPEC, { configPath: join(dir, 'missing.yaml') }));
    expect(err.message).toMatch(/^cannot read config file .*missing\.yaml: ENOENT/);
  });

  it('names the file in errors from it', () => {
    const configPath = file('bad.yaml', 'proxy:\n  timout: 1s\n');
    const err = configError(() => loadRaw(SERVER_SPEC, { configPath }));
    expect(err.message).toBe(`unknown key proxy.timout (${configPath} line 2)`);
  });

  it('rejects flag values of the wrong type or for no flag', () => {
    expect(configError(() => loadRaw(SERVER_SPEC, { flags: { 'proxy.timeout': '5s' } })).message).toBe(
      '--proxy.timeout must be a duration',
    );
    expect(configError(() => loadRaw(SERVER_SPEC, { flags: { 'proxy.timout': 5 } })).message).toBe('unknown flag --proxy.timout');
    // Lists are YAML only.
    expect(configError(() => loadRaw(SERVER_SPEC, { flags: { 'upstream.tenants': [] } })).path).toBe('upstream.tenants');
  });
});
