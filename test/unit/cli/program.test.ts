import { commandHelp, runCli, type CliDeps } from '../../../dataplane/cli/program';
import { packageVersion } from '../../../dataplane/cli/version';
import { LISTENER_SPEC, AGENT_SPEC, TCP_LISTENER_FLAG_PATHS } from '../../../dataplane/config/agent-config';
import { FORWARD_SPEC } from '../../../dataplane/config/forward-config';
import { flagLeaves } from '../../../dataplane/config/schema';
import { SERVER_SPEC, type ServerConfig } from '../../../dataplane/config/server-config';

interface Harness {
  deps: CliDeps;
  out: () => string;
  err: () => string;
  servers: ServerConfig[];
}

function harness(overrides: Partial<CliDeps> = {}): Harness {
  let out = '';
  let err = '';
  const servers: ServerConfig[] = [];
  const deps: CliDeps = {
    runServer: async (c) => void servers.push(c),
    runAgent: async () => undefined,
    runForward: async () => undefined,
    writeOut: (s) => void (out += s),
    writeErr: (s) => void (err += s),
    version: '1.2.3',
    ...overrides,
  };
  return { deps, out: () => out, err: () => err, servers };
}

// Commander wraps long descriptions; compare text with the wrapping undone.
const flat = (help: string): string => help.replace(/\s+/g, ' ');

/** The help entry of one flag: its name, argument, description and default. */
function entry(help: string, flag: string): string {
  const found = flat(help)
    .split(/ (?=--[a-z])/)
    .find((e) => e.startsWith(`${flag} `));
  if (found === undefined) throw new Error(`no help entry for ${flag}`);
  return found.trim();
}

const flagsOf = (help: string): string[] => [...help.matchAll(/^\s+(--[a-z0-9.-]+)/gm)].map((m) => m[1]!);

describe('piko --help', () => {
  it('lists every server flag with its description and default', async () => {
    const h = harness();
    expect(await runCli(['server', '--help'], h.deps)).toBe(0);
    const help = h.out();
    const expected = flagLeaves(SERVER_SPEC).map((f) => `--${f.flag}`);
    expect(flagsOf(help)).toEqual(expect.arrayContaining([...expected, '--config.path', '--config.expand-env']));
    expect(expected).toHaveLength(new Set(expected).size);
    expect(flat(help)).toContain(
      '--proxy.bind-addr <addr> Host and port to listen on for proxy connections; an empty host means all interfaces. (default ":8000")',
    );
    expect(entry(help, '--proxy.timeout')).toMatch(/^--proxy\.timeout <duration> .*\(default 30s\)$/);
    expect(entry(help, '--proxy.http.idle-timeout')).toMatch(/^--proxy\.http\.idle-timeout <duration> .*\(default 5m0s\)$/);
    expect(entry(help, '--grace-period')).toMatch(/^--grace-period <duration> .*\(default 1m0s\)$/);
    for (const flag of flagLeaves(SERVER_SPEC)) {
      expect(flag.leaf.description.length).toBeGreaterThan(10);
    }
    // Gossip is not ours, and the hidden --no- twins stay hidden.
    expect(help).not.toContain('gossip');
    expect(help).not.toContain('--no-');
  });

  it('lists the agent http flags and the agent flags', () => {
    const help = commandHelp(['agent', 'http']);
    const expected = [...flagLeaves(LISTENER_SPEC), ...flagLeaves(AGENT_SPEC)].map((f) => `--${f.flag}`);
    expect(flagsOf(help)).toEqual(expect.arrayContaining([...expected, '--config.path']));
    expect(help).toContain('--timeout <duration>');
    expect(entry(help, '--http-client.idle-conn-timeout')).toMatch(/^--http-client\.idle-conn-timeout <duration> .*\(default 1m30s\)$/);
    expect(entry(help, '--connect.url')).toMatch(/\(default "http:\/\/localhost:8001"\)$/);
  });

  it('lists only the TCP listener flags for agent tcp', () => {
    const help = commandHelp(['agent', 'tcp']);
    const listenerFlags = flagsOf(help.slice(0, help.indexOf('Global Options')));
    expect(listenerFlags).toEqual(TCP_LISTENER_FLAG_PATHS.map((p) => `--${p.replace(/_/g, '-')}`));
  });

  it('lists the agent flags for agent start', () => {
    const help = commandHelp(['agent', 'start']);
    expect(flagsOf(help)).toEqual(expect.arrayContaining(flagLeaves(AGENT_SPEC).map((f) => `--${f.flag}`)));
  });

  it('lists the forward flags', () => {
    for (const sub of ['tcp', 'start']) {
      const help = commandHelp(['forward', sub]);
      expect(flagsOf(help)).toEqual(
        expect.arrayContaining([...flagLeaves(FORWARD_SPEC).map((f) => `--${f.flag}`), '--config.path', '--config.expand-env']),
      );
      expect(entry(help, '--connect.url')).toMatch(/\(default "http:\/\/localhost:8000"\)$/);
    }
  });

  it('lists the status flags, including --server.token', () => {
    const help = commandHelp(['server', 'status', 'cluster', 'nodes']);
    expect(flagsOf(help)).toEqual(expect.arrayContaining(['--status', '--server.url', '--server.token', '--forward']));
  });

  it('names the commands at the top level', async () => {
    const h = harness();
    expect(await runCli(['--help'], h.deps)).toBe(0);
    expect(h.out()).toMatch(/server[\s\S]*agent[\s\S]*forward/);
  });
});

describe('runCli', () => {
  it('prints the version', async () => {
    const h = harness();
    expect(await runCli(['--version'], h.deps)).toBe(0);
    expect(h.out()).toBe('1.2.3\n');
  });

  it('reads the version from package.json', () => {
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('hands the parsed config to the run function', async () => {
    const h = harness();
    expect(await runCli(['server', '--proxy.timeout=2s'], h.deps)).toBe(0);
    expect(h.servers.map((c) => c.proxy.timeoutMs)).toEqual([2_000]);
  });

  it('prints config errors as "error: <message>" and exits 1', async () => {
    const h = harness();
    expect(await runCli(['server', '--proxy.tls.cert', 'c.pem'], h.deps)).toBe(1);
    expect(h.err()).toBe('error: proxy.tls.key is required when proxy.tls.cert is set\n');
    expect(h.servers).toEqual([]);
  });

  it('prints flag errors the same way', async () => {
    for (const argv of [
      ['server', '--proxy.timeout', '5x'],
      ['server', '--proxy.timeout=5x'],
      ['server', '--nope'],
    ]) {
      const h = harness();
      expect(await runCli(argv, h.deps)).toBe(1);
      expect(h.err()).toMatch(/^error: /);
      expect(h.err()).not.toContain('    at ');
    }
  });

  it('prints a failing run function as an error without a stack trace', async () => {
    const h = harness({ runAgent: async () => Promise.reject(new Error('listen EADDRINUSE')) });
    expect(await runCli(['agent', 'tcp', 'a', '3000'], h.deps)).toBe(1);
    expect(h.err()).toBe('error: listen EADDRINUSE\n');
  });

  it('does not accept server flags after status', async () => {
    const h = harness();
    expect(await runCli(['server', 'status', 'upstream', 'endpoints', '--proxy.timeout', '1s'], h.deps)).toBe(1);
    expect(h.err()).toContain("unknown option '--proxy.timeout'");
  });
});
