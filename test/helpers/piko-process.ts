import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const MAIN = path.join(ROOT, 'dist/dataplane/cli/main.js');
const NODE = path.join(ROOT, 'node_modules/node/bin/node');

export interface PikoProcess {
  child: ChildProcess;
  pid: number;
  /** Everything the process wrote to stderr (its JSON log), bounded to the last 1 MiB. */
  logs(): string;
  /** Resolves with the first log record that matches, event driven, bounded by `timeoutMs`. */
  waitForLog(match: (record: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resident set size now, from /proc, in bytes. */
  rss(): number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<PikoProcess>();

/** Runs the built `piko` CLI (dist/) as a child process: what users run. */
export function startPikoProcess(args: string[], env: NodeJS.ProcessEnv = {}): PikoProcess {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`make build\` first`);
  const child = spawn(existsSync(NODE) ? NODE : process.execPath, [MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
  let output = '';
  const records: Record<string, unknown>[] = [];
  let partial = '';
  const onLine = (line: string): void => {
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      records.push(record);
      child.emit('record', record);
    } catch {
      // not a log record (e.g. a usage message)
    }
  };
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString();
    output = (output + text).slice(-1024 * 1024);
    partial += text;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      onLine(partial.slice(0, nl));
      partial = partial.slice(nl + 1);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const handle: PikoProcess = {
    child,
    pid: child.pid as number,
    logs: () => output,
    waitForLog: (match, timeoutMs = 10_000) => {
      const found = records.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching log record within ${timeoutMs} ms; output:\n${output}`));
        }, timeoutMs);
        const onRecord = (record: Record<string, unknown>): void => {
          if (!match(record)) return;
          cleanup();
          resolve(record);
        };
        const onExit = (): void => {
          cleanup();
          reject(new Error(`process exited before a matching log record; output:\n${output}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          child.off('record', onRecord);
          child.off('exit', onExit);
        };
        child.on('record', onRecord);
        child.once('exit', onExit);
      });
    },
    rss: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
      return kb * 1024;
    },
    stop: async (signal = 'SIGTERM') => {
      running.delete(handle);
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  running.add(handle);
  return handle;
}

export interface ServerProcess extends PikoProcess {
  proxyUrl: string;
  upstreamUrl: string;
  adminUrl: string;
}

/** `piko server` on ephemeral ports of a loopback address; resolves once it logged its addresses. */
export async function startServerProcess(
  extraArgs: string[] = [],
  options: { host?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ServerProcess> {
  const host = options.host ?? '127.0.0.1';
  const proc = startPikoProcess(
    ['server', '--proxy.bind-addr', `${host}:0`, '--upstream.bind-addr', `${host}:0`, '--admin.bind-addr', `${host}:0`, ...extraArgs],
    options.env,
  );
  const started = await proc.waitForLog((r) => r.message === 'server started');
  return {
    ...proc,
    proxyUrl: `http://${String(started.proxyAddr)}`,
    upstreamUrl: `http://${String(started.upstreamAddr)}`,
    adminUrl: `http://${String(started.adminAddr)}`,
  };
}

export async function stopAllPikoProcesses(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL')));
}
