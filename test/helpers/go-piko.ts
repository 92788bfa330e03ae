import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Runs the original Go Piko (built by test/interop/build-go-piko.sh) for interop tests and
 * benchmarks. Every process started here is tracked; call stopAllGoPiko() in afterAll.
 */

const BUILD_SCRIPT = path.resolve(__dirname, '..', 'interop', 'build-go-piko.sh');
// A cold build downloads the module graph and compiles it: about a minute on two shared cores.
const BUILD_TIMEOUT_MS = 10 * 60 * 1000;
const LOG_LIMIT_BYTES = 1024 * 1024;
const READY_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 50;
const STOP_GRACE_MS = 5_000;
const HTTP_PROBE_TIMEOUT_MS = 2_000;

export type GoPikoErrorCode =
  | 'GO_PIKO_BUILD_FAILED'
  | 'GO_PIKO_SPAWN_FAILED'
  | 'GO_PIKO_EXITED'
  | 'GO_PIKO_NOT_READY'
  | 'GO_PIKO_LOG_TIMEOUT'
  | 'GO_PIKO_ENDPOINT_TIMEOUT'
  | 'GO_PIKO_PORT_TIMEOUT';

export class GoPikoError extends Error {
  readonly code: GoPikoErrorCode;

  constructor(code: GoPikoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GoPikoError';
    this.code = code;
  }
}

export interface GoPikoExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `piko` process. */
export interface GoPikoProcess {
  readonly pid: number;
  /** The arguments after the binary, for error messages. */
  readonly args: readonly string[];
  /** Resolves once the process has exited and its output is fully read. */
  readonly exited: Promise<GoPikoExit>;
  /** SIGTERM, then SIGKILL if it is still running after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
  /** SIGKILL; resolves when it has exited. */
  kill(): Promise<void>;
  /** Captured stdout and stderr interleaved in arrival order, the last 1 MiB. */
  logs(): string;
  /** Resolves when the captured output matches `re`; rejects on exit or after timeoutMs. */
  waitForLog(re: RegExp, timeoutMs: number): Promise<void>;
}

export interface GoPikoServer extends GoPikoProcess {
  readonly proxyUrl: string;
  readonly upstreamUrl: string;
  readonly adminUrl: string;
  /** host:port for another node's `--cluster.join`. */
  readonly gossipAddr: string;
}

export interface GoPikoServerOptions {
  /** Extra `piko server` arguments; a flag repeated here overrides the harness's (last wins). */
  args?: string[];
  /** Sent as `Authorization: Bearer` on the readiness probe when admin auth is configured. */
  adminToken?: string;
  /**
   * Ports to bind on 127.0.0.1 instead of fresh ones, e.g. those of a server
   * just stopped, to restart it in place. The gossip port must be free for UDP too.
   */
  ports?: { proxy: number; upstream: number; admin: number; gossip: number };
}

/** The ports a running server was started on, for restarting it in place. */
export function goPikoServerPorts(server: GoPikoServer): NonNullable<GoPikoServerOptions['ports']> {
  const port = (url: string): number => Number(new URL(url).port);
  return {
    proxy: port(server.proxyUrl),
    upstream: port(server.upstreamUrl),
    admin: port(server.adminUrl),
    gossip: port(`http://${server.gossipAddr}`),
  };
}

let cachedBinary: string | undefined;

/**
 * Path of the Go Piko binary, building it on first use. Synchronous because jest needs it before
 * any server starts and the build script is itself idempotent and fast once cached.
 */
export function goPikoBinary(): string {
  if (cachedBinary !== undefined) return cachedBinary;
  let stdout: string;
  try {
    stdout = execFileSync('bash', [BUILD_SCRIPT], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const stderr = errorOutput(err);
    throw new GoPikoError('GO_PIKO_BUILD_FAILED', `${BUILD_SCRIPT} failed${stderr === '' ? '' : `:\n${stderr}`}`, { cause: err });
  }
  const lines = stdout.split('\n').filter((line) => line.trim() !== '');
  const last = lines[lines.length - 1];
  if (last === undefined || !path.isAbsolute(last.trim())) {
    throw new GoPikoError('GO_PIKO_BUILD_FAILED', `${BUILD_SCRIPT} printed no binary path`);
  }
  cachedBinary = last.trim();
  return cachedBinary;
}

function errorOutput(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'stderr' in err) {
    const stderr: unknown = err.stderr;
    if (typeof stderr === 'string') return stderr.trim();
    if (Buffer.isBuffer(stderr)) return stderr.toString('utf8').trim();
  }
  return '';
}

const running = new Set<ProcessHandle>();

/** Stops every Go Piko process this module started (SIGTERM, SIGKILL after 5 s). */
export async function stopAllGoPiko(): Promise<void> {
  await Promise.all([...running].map((proc) => proc.stop()));
}

/** Bounded log capture: keeps the newest LOG_LIMIT_BYTES so a chatty process cannot grow memory. */
class LogBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  append(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > LOG_LIMIT_BYTES && this.chunks.length > 0) {
      const first = this.chunks[0] as Buffer;
      const excess = this.size - LOG_LIMIT_BYTES;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  toString(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8');
  }
}

class ProcessHandle implements GoPikoProcess {
  readonly pid: number;
  readonly exited: Promise<GoPikoExit>;
  private readonly output = new LogBuffer();
  private readonly events = new EventEmitter();
  private exit: GoPikoExit | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly args: readonly string[],
    pid: number,
  ) {
    this.pid = pid;
    const onData = (chunk: Buffer): void => {
      this.output.append(chunk);
      this.events.emit('data');
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    // A failed kill() is reported as 'error'; record it rather than crash the test process.
    child.on('error', (err: Error) => onData(Buffer.from(`[harness] ${err.message}\n`)));
    // 'close' rather than 'exit' so logs() is complete once exited resolves.
    this.exited = new Promise<GoPikoExit>((resolve) => {
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        this.exit = { code, signal };
        running.delete(this);
        this.events.emit('exit');
        resolve(this.exit);
      });
    });
  }

  static async spawn(binary: string, args: readonly string[]): Promise<ProcessHandle> {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await once(child, 'spawn');
    } catch (err) {
      throw new GoPikoError('GO_PIKO_SPAWN_FAILED', `cannot run ${binary}`, { cause: err });
    }
    const pid = child.pid;
    if (pid === undefined) {
      throw new GoPikoError('GO_PIKO_SPAWN_FAILED', `cannot run ${binary}: no pid`);
    }
    const handle = new ProcessHandle(child, args, pid);
    running.add(handle);
    return handle;
  }

  logs(): string {
    return this.output.toString();
  }

  async stop(): Promise<void> {
    if (this.exit !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<void> {
    if (this.exit !== undefined) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  waitForLog(re: RegExp, timeoutMs: number): Promise<void> {
    // search() ignores lastIndex, so a /g regex behaves the same on every check.
    if (this.logs().search(re) !== -1) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.events.off('data', onData);
        this.events.off('exit', onExit);
      };
      const onData = (): void => {
        if (this.logs().search(re) === -1) return;
        cleanup();
        resolve();
      };
      const onExit = (): void => {
        cleanup();
        reject(this.failure('GO_PIKO_EXITED', `exited before logging ${re}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(this.failure('GO_PIKO_LOG_TIMEOUT', `did not log ${re} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.events.on('data', onData);
      if (this.exit !== undefined) onExit();
      else this.events.on('exit', onExit);
    });
  }

  /** Rejects as soon as the process exits; for racing against readiness polls. */
  exitedEarly(): Promise<never> {
    return this.exited.then(() => {
      throw this.failure('GO_PIKO_EXITED', 'exited during start-up');
    });
  }

  /** An error naming the command with the tail of its output, so a failed test explains itself. */
  failure(code: GoPikoErrorCode, what: string, cause?: unknown): GoPikoError {
    const exit = this.exit === undefined ? '' : ` (exit code ${this.exit.code}, signal ${this.exit.signal})`;
    const tail = this.logs().slice(-4000);
    return new GoPikoError(
      code,
      `piko ${this.args.join(' ')}: ${what}${exit}\n--- output ---\n${tail}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** Starts `piko server` with every port on 127.0.0.1 and resolves once GET /ready answers 200. */
export async function startGoPikoServer(opts: GoPikoServerOptions = {}): Promise<GoPikoServer> {
  const binary = goPikoBinary();
  const [proxyPort, upstreamPort, adminPort, gossipPort] = opts.ports
    ? [opts.ports.proxy, opts.ports.upstream, opts.ports.admin, opts.ports.gossip]
    : await freeLoopbackPorts(4, [3]);
  const gossipAddr = `127.0.0.1:${gossipPort}`;
  const args = [
    'server',
    '--proxy.bind-addr',
    `127.0.0.1:${proxyPort}`,
    '--upstream.bind-addr',
    `127.0.0.1:${upstreamPort}`,
    '--admin.bind-addr',
    `127.0.0.1:${adminPort}`,
    '--cluster.gossip.bind-addr',
    gossipAddr,
    ...(opts.args ?? []),
  ];
  const proc = await ProcessHandle.spawn(binary, args);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const headers: http.OutgoingHttpHeaders = opts.adminToken === undefined ? {} : { authorization: `Bearer ${opts.adminToken}` };
  try {
    await Promise.race([
      pollUntil(async () => (await httpGet(`${adminUrl}/ready`, headers)).status === 200, READY_TIMEOUT_MS),
      proc.exitedEarly(),
    ]);
  } catch (err) {
    await proc.kill();
    if (err instanceof GoPikoError && err.code === 'GO_PIKO_EXITED') throw err;
    throw proc.failure('GO_PIKO_NOT_READY', `not ready within ${READY_TIMEOUT_MS} ms`, err);
  }
  return Object.assign(proc, {
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    upstreamUrl: `http://127.0.0.1:${upstreamPort}`,
    adminUrl,
    gossipAddr,
  });
}

/**
 * Starts `piko agent <args>`, e.g. ['http', 'my-endpoint', '3000', '--connect.url', url].
 * Resolves once the process runs; wait for registration with waitForGoPikoEndpoint().
 */
export async function startGoPikoAgent(args: string[]): Promise<GoPikoProcess> {
  return ProcessHandle.spawn(goPikoBinary(), ['agent', ...args]);
}

/**
 * Starts `piko forward <args>`, e.g. ['tcp', '127.0.0.1:4000', 'my-endpoint', '--connect.url', url].
 * Go forward logs nothing once its port listens; wait with waitForTcpPort().
 */
export async function startGoPikoForward(args: string[]): Promise<GoPikoProcess> {
  return ProcessHandle.spawn(goPikoBinary(), ['forward', ...args]);
}

/**
 * Resolves once the admin API reports at least `count` local upstreams for the endpoint. The Go
 * agent's "starting reverse proxy" log comes after its WebSocket handshake but the server adds
 * the upstream to its registry only after sending the 101, so the log alone is racy.
 */
export async function waitForGoPikoEndpoint(
  adminUrl: string,
  endpointId: string,
  opts: { count?: number; timeoutMs?: number; adminToken?: string } = {},
): Promise<void> {
  const count = opts.count ?? 1;
  const timeoutMs = opts.timeoutMs ?? READY_TIMEOUT_MS;
  const headers: http.OutgoingHttpHeaders = opts.adminToken === undefined ? {} : { authorization: `Bearer ${opts.adminToken}` };
  try {
    await pollUntil(async () => {
      const res = await httpGet(`${adminUrl}/status/upstream/endpoints`, headers);
      if (res.status !== 200) return false;
      const parsed: unknown = JSON.parse(res.body);
      if (typeof parsed !== 'object' || parsed === null) return false;
      const found: unknown = (parsed as Record<string, unknown>)[endpointId];
      return typeof found === 'number' && found >= count;
    }, timeoutMs);
  } catch (err) {
    throw new GoPikoError('GO_PIKO_ENDPOINT_TIMEOUT', `endpoint ${endpointId} did not reach ${count} upstream(s) within ${timeoutMs} ms`, {
      cause: err,
    });
  }
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForTcpPort(port: number, timeoutMs: number): Promise<void> {
  try {
    await pollUntil(() => canConnect(port), timeoutMs);
  } catch (err) {
    throw new GoPikoError('GO_PIKO_PORT_TIMEOUT', `nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`, { cause: err });
  }
}

/**
 * Distinct free loopback ports. All are held open together so they differ; they are released
 * before use, accepting the small race with other processes. Indexes in `alsoUdp` must be free
 * for UDP as well (Go Piko's gossip binds the same port on TCP and UDP).
 */
export async function freeLoopbackPorts(n: number, alsoUdp: number[] = []): Promise<number[]> {
  const held: net.Server[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < n) {
      const server = net.createServer();
      held.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as net.AddressInfo).port;
      if (alsoUdp.includes(ports.length) && !(await udpFree(port))) continue;
      ports.push(port);
    }
  } finally {
    await Promise.all(held.map((server) => new Promise<void>((r) => server.close(() => r()))));
  }
  return ports;
}

async function udpFree(port: number): Promise<boolean> {
  const socket = dgram.createSocket('udp4');
  let free = true;
  try {
    socket.bind(port, '127.0.0.1');
    await once(socket, 'listening');
  } catch {
    // EADDRINUSE: the caller holds this TCP port and tries the next one.
    free = false;
  }
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return free;
}

/**
 * Polls a condition on an external process, which offers no event to wait on. Each probe is
 * itself bounded (HTTP_PROBE_TIMEOUT_MS), so the deadline holds; probe errors count as "not yet".
 */
async function pollUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() + POLL_INTERVAL_MS > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms`, { cause: lastError });
    }
    await delay(POLL_INTERVAL_MS);
  }
}

interface HttpResult {
  status: number;
  body: string;
}

function httpGet(url: string, headers: http.OutgoingHttpHeaders): Promise<HttpResult> {
  return new Promise<HttpResult>((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, timeout: HTTP_PROBE_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', timeout: HTTP_PROBE_TIMEOUT_MS });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}
