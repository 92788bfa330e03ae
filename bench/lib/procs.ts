import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Child processes of the benchmark: every one is tracked so an exit, an
 * error or a signal kills them all, and each can be measured through /proc.
 */

export class BenchError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BenchError';
    this.code = code;
  }
}

const LOG_LIMIT = 64 * 1024;
const children = new Set<Child>();

export class Child {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private tail = '';
  private done = false;
  private stopping = false;

  /** A long-running child (server, agent, upstream) reports an exit nobody asked for, with its last output. */
  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    readonly longRunning = true,
  ) {
    if (proc.pid === undefined) throw new BenchError('ERR_BENCH_SPAWN', `${name}: no pid`);
    this.pid = proc.pid;
    const keep = (chunk: Buffer): void => {
      this.tail = (this.tail + chunk.toString('utf8')).slice(-LOG_LIMIT);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.on('error', (err) => keep(Buffer.from(`[bench] ${err.message}\n`)));
    this.exited = new Promise((resolve) => {
      proc.once('close', (code, signal) => {
        this.done = true;
        children.delete(this);
        if (this.longRunning && !this.stopping) {
          process.stderr.write(
            `[bench] ${this.name} (pid ${this.pid}) exited unexpectedly: code ${code}, signal ${signal}\n--- last output ---\n${this.tail.slice(-4000)}\n---\n`,
          );
        }
        resolve({ code, signal });
      });
    });
    children.add(this);
  }

  get running(): boolean {
    return !this.done;
  }

  logs(): string {
    return this.tail;
  }

  /** Its exit from here on is expected (shutdown of the whole run). */
  markStopping(): void {
    this.stopping = true;
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.done) return;
    this.stopping = true;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    if (this.done) return;
    this.stopping = true;
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

export function startChild(name: string, cmd: string, args: string[], options: SpawnOptions & { longRunning?: boolean } = {}): Child {
  const { longRunning, ...spawnOptions } = options;
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
  return new Child(name, proc, longRunning ?? true);
}

/** Kills every tracked child at once; safe to call from an 'exit' handler (synchronous). */
export function killAllChildren(): void {
  for (const child of children) {
    child.markStopping();
    try {
      child.proc.kill('SIGKILL');
    } catch {
      // Already gone: nothing left to kill.
    }
  }
}

let hooked = false;

/** Kill the children whatever ends this process. */
export function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      killAllChildren();
      process.exit(130);
    });
  }
}

// USER_HZ, the unit of /proc/<pid>/stat times, is 100 on every Linux architecture Node supports.
const CLK_TCK = 100;

/** utime + stime of a process (all threads) in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLK_TCK;
}

/** Read and write system calls made so far (all threads), from /proc/<pid>/io. */
export function syscallCounts(pid: number): { reads: number; writes: number } {
  const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? NaN);
  return { reads: field('syscr'), writes: field('syscw') };
}

export interface MemoryKiB {
  /** VmRSS: everything resident, including pages of the executable and libraries. */
  rss: number;
  /** RssAnon: heap, stacks and other private memory, what the process itself allocated. */
  anon: number;
  /** RssFile: mapped file pages (the executable's code); depends on what was touched and on the page cache. */
  file: number;
}

function statusField(status: string, field: string, pid: number): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new BenchError('ERR_BENCH_PROC', `no ${field} for pid ${pid}`);
  return Number(match[1]);
}

export function memoryKiB(pid: number): MemoryKiB {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rss: statusField(status, 'VmRSS', pid), anon: statusField(status, 'RssAnon', pid), file: statusField(status, 'RssFile', pid) };
}

/** Resident set size in KiB. */
export function rssKiB(pid: number): number {
  return memoryKiB(pid).rss;
}

/**
 * Waits until RSS stops moving: three samples in a row within 0.5% (or 256 KiB)
 * of each other, or maxMs. Returns the last sample and whether it settled.
 */
export async function settledRss(
  pid: number,
  maxMs: number,
  intervalMs = 500,
): Promise<{ kib: number; mem: MemoryKiB; settled: boolean; waitedMs: number }> {
  const started = Date.now();
  const samples: MemoryKiB[] = [memoryKiB(pid)];
  for (;;) {
    await delay(intervalMs);
    const mem = memoryKiB(pid);
    samples.push(mem);
    const last = samples.slice(-3).map((m) => m.rss);
    if (last.length === 3) {
      const spread = Math.max(...last) - Math.min(...last);
      if (spread <= Math.max(256, (last[2] as number) * 0.005)) {
        return { kib: mem.rss, mem, settled: true, waitedMs: Date.now() - started };
      }
    }
    if (Date.now() - started >= maxMs) {
      return { kib: mem.rss, mem, settled: false, waitedMs: Date.now() - started };
    }
  }
}

/** Distinct free loopback ports; the test helpers' picker, shared so there is one. */
export { freeLoopbackPorts as freePorts } from '../../test/helpers/go-piko';

export interface HttpResult {
  status: number;
  body: string;
}

export function httpGet(url: string, timeoutMs = 5_000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * Polls a condition on another process, which offers no event to wait on.
 * Probe errors count as "not yet"; rejects after timeoutMs, or when `child` exits.
 */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
  child?: Child,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (child && !child.running) {
      throw new BenchError('ERR_BENCH_EXITED', `${child.name} exited while waiting for ${what}:\n${child.logs().slice(-3000)}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() + intervalMs > deadline) {
      const tail = child ? `\n--- ${child.name} output ---\n${child.logs().slice(-3000)}` : '';
      throw new BenchError('ERR_BENCH_TIMEOUT', `${what}: not within ${timeoutMs} ms${tail}`, { cause: lastError });
    }
    await delay(intervalMs);
  }
}

/** Upstream sessions per endpoint, from the admin API (the same route on both servers). */
export async function upstreamCounts(adminUrl: string): Promise<Record<string, number>> {
  const res = await httpGet(`${adminUrl}/status/upstream/endpoints`);
  if (res.status !== 200) throw new BenchError('ERR_BENCH_ADMIN', `status ${res.status} from ${adminUrl}`);
  const parsed: unknown = JSON.parse(res.body);
  if (typeof parsed !== 'object' || parsed === null) return {};
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof v === 'number') out[k] = v;
  }
  return out;
}

export async function waitForEndpoints(adminUrl: string, ids: string[], timeoutMs: number, child?: Child): Promise<void> {
  await pollUntil(
    `${ids.length} endpoint(s) at ${adminUrl}`,
    async () => {
      const counts = await upstreamCounts(adminUrl);
      return ids.every((id) => (counts[id] ?? 0) >= 1);
    },
    timeoutMs,
    100,
    child,
  );
}
