/**
 * `piko operator` flags and operator/operator-config.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { commandHelp, runCli, type CliDeps } from '../../../dataplane/cli/program';
import { ConfigError } from '../../../dataplane/config/errors';
import { loadOperatorConfig, OPERATOR_SPEC, type OperatorConfig } from '../../../operator/operator-config';
import { flagLeaves } from '../../../dataplane/config/schema';

function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; config?: OperatorConfig; err: string }> {
  let config: OperatorConfig | undefined;
  let err = '';
  const deps: CliDeps = {
    runServer: async () => undefined,
    runAgent: async () => undefined,
    runForward: async () => undefined,
    runOperator: async (c) => void (config = c),
    writeOut: () => undefined,
    writeErr: (s) => void (err += s),
    env,
    version: '1.2.3',
  };
  return runCli(argv, deps).then((code) => ({ code, err, ...(config === undefined ? {} : { config }) }));
}

/** The webhook flags' defaults: the names the chart gives its objects for release `piko`. */
const DEFAULT_WEBHOOK = {
  bindAddr: '',
  configuration: 'piko-operator',
  service: 'piko-operator-webhook',
  secret: 'piko-operator-webhook-tls',
  certDir: '',
};

describe('loadOperatorConfig', () => {
  it('validates its defaults', () => {
    expect(loadOperatorConfig({ version: '1.2.3', env: {} })).toEqual({
      namespace: '',
      namespaces: [],
      kubeconfig: '',
      tokenReviewerClusterRole: '',
      webhook: DEFAULT_WEBHOOK,
      leaderElect: true,
      leaderElectionNamespace: 'default',
      metricsBindAddr: ':8080',
      healthBindAddr: ':8081',
      defaultImage: 'ghcr.io/piko-k8s/piko:1.2.3',
      log: { level: 'info', subsystems: [], format: 'auto' },
    });
  });

  it('takes the Lease namespace from POD_NAMESPACE and the image from PIKO_IMAGE, flags first', () => {
    const env = { POD_NAMESPACE: 'piko-system', PIKO_IMAGE: 'registry.example.com/piko:9' };
    const fromEnv = loadOperatorConfig({ version: '1.2.3', env });
    expect(fromEnv.leaderElectionNamespace).toBe('piko-system');
    expect(fromEnv.defaultImage).toBe('registry.example.com/piko:9');
    const fromFlags = loadOperatorConfig({
      version: '1.2.3',
      env,
      flags: { leader_election_namespace: 'ops', default_image: 'mirror.example.com/piko@sha256:' + 'a'.repeat(64) },
    });
    expect(fromFlags.leaderElectionNamespace).toBe('ops');
    expect(fromFlags.defaultImage).toBe('mirror.example.com/piko@sha256:' + 'a'.repeat(64));
  });

  it('is deep-frozen', () => {
    const config = loadOperatorConfig({ version: '1.2.3', env: {} });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.log)).toBe(true);
  });

  it.each([
    [{ namespace: 'Not_A_Namespace' }, 'namespace "Not_A_Namespace" must be a namespace name'],
    [{ health_bind_addr: 'localhost' }, 'health_bind_addr must be host:port'],
    [{ metrics_bind_addr: ':99999' }, 'metrics_bind_addr must be host:port'],
    [{ default_image: 'has space' }, 'default_image "has space" is not an image reference'],
    [{ 'log.level': 'loud' }, '--log.level must be one of debug, info, warn, error'],
  ])('refuses %j', (flags, message) => {
    expect(() => loadOperatorConfig({ version: '1.2.3', env: {}, flags })).toThrow(ConfigError);
    expect(() => loadOperatorConfig({ version: '1.2.3', env: {}, flags })).toThrow(message);
  });

  it("turns the metrics server off with '0'", () => {
    expect(loadOperatorConfig({ version: '1.2.3', env: {}, flags: { metrics_bind_addr: '0' } }).metricsBindAddr).toBe('0');
  });

  it('reads a YAML file with the same keys, rejecting unknown ones', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'piko-operator-config-'));
    try {
      const file = path.join(dir, 'operator.yaml');
      writeFileSync(file, 'namespace: edge\nleader_elect: false\nlog:\n  level: debug\n');
      expect(loadOperatorConfig({ version: '1', env: {}, configPath: file })).toMatchObject({
        namespace: 'edge',
        leaderElect: false,
        log: { level: 'debug' },
      });
      writeFileSync(file, 'leader_election: true\n');
      expect(() => loadOperatorConfig({ version: '1', env: {}, configPath: file })).toThrow('unknown key leader_election');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('piko operator', () => {
  it('lists every flag with its default', () => {
    const help = commandHelp(['operator']);
    for (const f of flagLeaves(OPERATOR_SPEC)) expect(help).toContain(`--${f.flag}`);
    const flat = help.replace(/\s+/g, ' ');
    expect(flat).toContain(
      '--leader-elect Elect a leader among replicas through a Lease, so that one reconciles at a time. (default true)',
    );
    expect(flat).toContain('--metrics-bind-addr <addr>');
    expect(flat).toContain('(default ":8080")');
    expect(flat).toContain('(default ":8081")');
    expect(flat).toContain('--log.level <level>');
  });

  it('hands the parsed config to the run function', async () => {
    const out = await cli(
      [
        'operator',
        '--namespace',
        'edge',
        '--leader-elect=false',
        '--leader-election-namespace',
        'ops',
        '--metrics-bind-addr',
        '127.0.0.1:9090',
        '--health-bind-addr',
        ':9091',
        '--default-image',
        'example.com/piko:2',
        '--log.level',
        'debug',
      ],
      { POD_NAMESPACE: 'ignored' },
    );
    expect(out).toMatchObject({ code: 0, err: '' });
    expect(out.config).toEqual({
      namespace: 'edge',
      namespaces: ['edge'],
      kubeconfig: '',
      tokenReviewerClusterRole: '',
      webhook: DEFAULT_WEBHOOK,
      leaderElect: false,
      leaderElectionNamespace: 'ops',
      metricsBindAddr: '127.0.0.1:9090',
      healthBindAddr: ':9091',
      defaultImage: 'example.com/piko:2',
      log: { level: 'debug', subsystems: [], format: 'auto' },
    });
  });

  it('takes a comma-separated list of namespaces, and refuses one that is not a namespace name', async () => {
    expect((await cli(['operator', '--namespace', 'apps, tunnels,apps'])).config).toMatchObject({ namespaces: ['apps', 'tunnels'] });
    const bad = await cli(['operator', '--namespace', 'apps,Bad_Name']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('namespace "Bad_Name" must be a namespace name');
  });

  it('uses the package version for the default image tag and the environment for the Lease namespace', async () => {
    const out = await cli(['operator'], { POD_NAMESPACE: 'piko-system' });
    expect(out.config).toMatchObject({
      defaultImage: 'ghcr.io/piko-k8s/piko:1.2.3',
      leaderElectionNamespace: 'piko-system',
      leaderElect: true,
    });
  });

  it('prints a config error and exits 1', async () => {
    const out = await cli(['operator', '--health-bind-addr', 'nope']);
    expect(out.code).toBe(1);
    expect(out.err).toBe('error: health_bind_addr must be host:port (for example :8000 or 127.0.0.1:8000), got "nope"\n');
  });
});
