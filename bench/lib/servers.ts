import * as fs from 'node:fs';
import * as path from 'node:path';
import { BenchError, freePorts, httpGet, pollUntil, startChild, waitForEndpoints, type Child } from './procs';

/** Starts our server and agent (bin/piko, from dist/) and the original Go Piko, each as its own process. */

export type Impl = 'ours' | 'go';

export const ROOT = path.resolve(__dirname, '..', '..');
const OURS_BIN = path.join(ROOT, 'bin', 'piko');
const READY_TIMEOUT_MS = 30_000;
const REGISTER_TIMEOUT_MS = 60_000;

export function goBinary(): string {
  const bin = process.env.GO_PIKO_BIN;
  if (!bin || !fs.existsSync(bin)) {
    throw new BenchError('ERR_BENCH_GO', 'GO_PIKO_BIN must name the Go Piko binary (bench/run.sh sets it)');
  }
  return bin;
}

export interface NodeFlags {
  /** Written to NODE_OPTIONS: e.g. --inspect for forced GC, --cpu-prof for profiles. Ours only. */
  nodeOptions?: string;
}

export interface Server {
  impl: Impl;
  child: Child;
  proxyUrl: string;
  upstreamUrl: string;
  adminUrl: string;
}

function env(nodeOptions: string | undefined): NodeJS.ProcessEnv {
  const out = { ...process.env };
  delete out.NODE_OPTIONS;
  // BENCH_NODE_OPTIONS: runtime flags for our processes only, to weigh a V8 flag in a whole run.
  const all = [process.env.BENCH_NODE_OPTIONS, nodeOptions].filter(Boolean).join(' ');
  if (all) out.NODE_OPTIONS = all;
  return out;
}

export async function startServer(impl: Impl, flags: NodeFlags = {}): Promise<Server> {
  const [proxy, upstream, admin, gossip] = await freePorts(4, [3]);
  const bind = (p: number | undefined): string => `127.0.0.1:${p}`;
  let child: Child;
  if (impl === 'ours') {
    child = startChild(
      'our server',
      OURS_BIN,
      [
        'server',
        '--proxy.bind-addr',
        bind(proxy),
        '--upstream.bind-addr',
        bind(upstream),
        '--admin.bind-addr',
        bind(admin),
        '--proxy.access-log.disable',
        '--log.level',
        'warn',
        '--grace-period',
        '3s',
      ],
      { env: env(flags.nodeOptions) },
    );
  } else {
    child = startChild('go server', goBinary(), [
      'server',
      '--proxy.bind-addr',
      bind(proxy),
      '--upstream.bind-addr',
      bind(upstream),
      '--admin.bind-addr',
      bind(admin),
      '--cluster.gossip.bind-addr',
      bind(gossip),
      '--proxy.access-log=false',
      // v0.7.0 reports anonymous usage over the internet unless told not to.
      '--usage.disable',
      '--log.level',
      'warn',
      '--grace-period',
      '3s',
    ]);
  }
  const server: Server = {
    impl,
    child,
    proxyUrl: `http://${bind(proxy)}`,
    upstreamUrl: `http://${bind(upstream)}`,
    adminUrl: `http://${bind(admin)}`,
  };
  await pollUntil(
    `${child.name} ready`,
    async () => (await httpGet(`${server.adminUrl}/ready`, 2_000)).status === 200,
    READY_TIMEOUT_MS,
    50,
    child,
  );
  return server;
}

/** `piko agent http <endpoint> <addr>` of either implementation, registered before it resolves. */
export async function startHttpAgent(
  impl: Impl,
  server: Server,
  endpointId: string,
  upstreamAddr: string,
  flags: NodeFlags = {},
): Promise<Child> {
  const common = [
    'agent',
    'http',
    endpointId,
    upstreamAddr,
    '--connect.url',
    server.upstreamUrl,
    '--log.level',
    'warn',
    '--grace-period',
    '3s',
  ];
  const child =
    impl === 'ours'
      ? startChild(`our agent → ${server.impl} server`, OURS_BIN, [...common, '--access-log.disable'], { env: env(flags.nodeOptions) })
      : startChild(`go agent → ${server.impl} server`, goBinary(), [...common, '--access-log=false']);
  await waitForEndpoints(server.adminUrl, [endpointId], REGISTER_TIMEOUT_MS, child);
  return child;
}

/**
 * `piko agent start` with one HTTP listener per endpoint, all toward `upstreamAddr`:
 * one process holding one session per listener, as `piko bench http` does in-process.
 */
export async function startMultiAgent(
  impl: Impl,
  server: Server,
  endpointIds: string[],
  upstreamAddr: string,
  dir: string,
): Promise<Child> {
  // The YAML differs: v0.7.0's access_log is a boolean, ours (as v0.9) an object.
  const accessLog = impl === 'ours' ? '    access_log:\n      disable: true\n' : '    access_log: false\n';
  const listeners = endpointIds
    .map((id) => `  - endpoint_id: ${id}\n    addr: ${upstreamAddr}\n    protocol: http\n    timeout: 10s\n${accessLog}`)
    .join('');
  const yaml = `connect:\n  url: ${server.upstreamUrl}\nlog:\n  level: warn\ngrace_period: 3s\nlisteners:\n${listeners}`;
  const file = path.join(dir, `agent-${impl}-${endpointIds.length}.yaml`);
  fs.writeFileSync(file, yaml);
  const child =
    impl === 'ours'
      ? startChild(`our agent (${endpointIds.length} listeners)`, OURS_BIN, ['agent', 'start', '--config.path', file], {
          env: env(undefined),
        })
      : startChild(`go agent (${endpointIds.length} listeners)`, goBinary(), ['agent', 'start', '--config.path', file]);
  await waitForEndpoints(server.adminUrl, endpointIds, REGISTER_TIMEOUT_MS, child);
  return child;
}
