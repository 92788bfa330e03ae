import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { forceGc } from './lib/inspector';
import {
  BenchError,
  Child,
  cpuSeconds,
  httpGet,
  syscallCounts,
  freePorts,
  installExitHooks,
  killAllChildren,
  pollUntil,
  rssKiB,
  settledRss,
  startChild,
  upstreamCounts,
} from './lib/procs';
import {
  median,
  writeReports,
  type BenchResults,
  type HttpCase,
  type IdleSample,
  type PikoBenchSample,
  type BodySample,
  type DistanceSample,
  type FootprintSample,
} from './lib/report';
import { startToxiproxy } from '../test/helpers/toxiproxy';
import { goBinary, ROOT, startHttpAgent, startMultiAgent, startServer, type Impl, type Server } from './lib/servers';
import type { HolderReply, HolderRequest } from './lib/tunnel-holder';
import { runWrk } from './lib/wrk';

/**
 * The benchmark behind `make bench` (bench/run.sh): our server and agent
 * (dist/, separate processes) against a direct Node upstream and against the
 * original Go Piko, on loopback. Measurements alternate between targets
 * (A B C A B C ...) so a change in background load hits all of them alike;
 * each is repeated and the median reported.
 */

const QUICK = process.env.BENCH_QUICK === '1';

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new BenchError('ERR_BENCH_CONFIG', `${name} must be a positive number, got ${raw}`);
  return n;
}

const CFG = {
  reps: envNumber('BENCH_REPS', QUICK ? 1 : 3),
  durationS: envNumber('BENCH_DURATION', QUICK ? 2 : 7),
  warmupS: QUICK ? 1 : 2,
  threads: 2,
  idleSmall: QUICK ? 200 : 1_000,
  idleLarge: QUICK ? 1_000 : 10_000,
  holders: 4,
  holderWindow: 32,
  settleMaxMs: QUICK ? 4_000 : 12_000,
  pikoBenchRequests: QUICK ? 5_000 : 20_000,
  // Whole-run watchdog: everything is killed past it.
  maxRunMs: envNumber('BENCH_MAX_SECONDS', QUICK ? 300 : 1_500) * 1000,
};

const SUITES = ['http', 'bodies', 'distance', 'footprint', 'multi', 'pikobench', 'idle'] as const;
type Suite = (typeof SUITES)[number];
// BENCH_SUITES=idle,bodies runs only those (for working on one measurement); the default is all.
const selected = new Set<string>((process.env.BENCH_SUITES ?? SUITES.join(',')).split(',').map((s) => s.trim()));
for (const s of selected) {
  if (!(SUITES as readonly string[]).includes(s))
    throw new BenchError('ERR_BENCH_CONFIG', `BENCH_SUITES: unknown suite ${s} (known: ${SUITES.join(', ')})`);
}
const want = (s: Suite): boolean => selected.has(s);

const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
// Under bench/run.sh's own temporary directory when there is one, which its trap removes.
const SCRATCH = fs.mkdtempSync(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'piko-bench-'));
const ENDPOINT = 'bench';
const MIXED_ENDPOINT = 'bench-mixed';
const MULTI_ENDPOINTS = 100;

function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${t}] ${msg}\n`);
}

interface Target {
  name: string;
  /** Base URL the load goes to (proxy port or the upstream itself). */
  url: string;
  headers: Record<string, string>;
  /** Processes whose CPU time is charged to the requests: [server, agent]. */
  pids?: [number, number];
}

let upstreamStatsUrl = '';

/** TCP connections the local service has accepted so far. */
async function upstreamConnections(): Promise<number> {
  const res = await httpGet(upstreamStatsUrl);
  return (JSON.parse(res.body) as { connections: number }).connections;
}

async function measureHttp(
  suite: string,
  targets: Target[],
  reqPath: string,
  connections: number,
  extra: { endpoints?: { prefix: string; count: number } } = {},
): Promise<HttpCase[]> {
  const cases: HttpCase[] = targets.map((t) => ({ suite, target: t.name, path: reqPath, connections, samples: [] }));
  const run = async (t: Target, durationS: number): Promise<ReturnType<typeof runWrk>> =>
    runWrk({ url: t.url + reqPath, connections, threads: CFG.threads, durationS, headers: t.headers, dir: SCRATCH, ...extra });
  log(`${suite}: warm-up ${targets.map((t) => t.name).join(', ')}`);
  for (const t of targets) await run(t, CFG.warmupS);
  for (let rep = 0; rep < CFG.reps; rep++) {
    for (const [i, t] of targets.entries()) {
      for (const pid of t.pids ?? []) {
        if (!fs.existsSync(`/proc/${pid}`))
          throw new BenchError('ERR_BENCH_EXITED', `${t.name}: process ${pid} is gone (see its output above)`);
      }
      const connsBefore = await upstreamConnections();
      const before = t.pids?.map((pid) => ({ cpu: cpuSeconds(pid), io: syscallCounts(pid) }));
      const wrk = await run(t, CFG.durationS);
      const after = t.pids?.map((pid) => ({ cpu: cpuSeconds(pid), io: syscallCounts(pid) }));
      // Read after the CPU figures so this request is not charged to the run.
      const upstreamConns = (await upstreamConnections()) - connsBefore;
      const sample: HttpCase['samples'][number] = { rep, wrk, loadavg: os.loadavg()[0] as number, upstreamConns };
      if (before && after) {
        const [sb, ab] = before as [(typeof before)[number], (typeof before)[number]];
        const [sa, aa] = after as [(typeof after)[number], (typeof after)[number]];
        sample.cpuS = { server: sa.cpu - sb.cpu, agent: aa.cpu - ab.cpu };
        sample.syscalls = {
          server: { reads: sa.io.reads - sb.io.reads, writes: sa.io.writes - sb.io.writes },
          agent: { reads: aa.io.reads - ab.io.reads, writes: aa.io.writes - ab.io.writes },
        };
      }
      (cases[i] as HttpCase).samples.push(sample);
      const errs = wrk.errors.connect + wrk.errors.read + wrk.errors.write + wrk.errors.status + wrk.errors.timeout;
      log(
        `${suite} ${t.name} #${rep + 1}: ${wrk.rps.toFixed(0)} req/s, p50 ${(wrk.latencyUs.p50 / 1000).toFixed(2)} ms, ` +
          `p99 ${(wrk.latencyUs.p99 / 1000).toFixed(2)} ms, ${wrk.mbps.toFixed(1)} MB/s` +
          (sample.cpuS ? `, cpu ${(((sample.cpuS.server + sample.cpuS.agent) / wrk.requests) * 1e6).toFixed(0)} µs/req` : '') +
          (errs > 0 ? `, ERRORS ${JSON.stringify(wrk.errors)}` : ''),
      );
    }
  }
  return cases;
}

/** Fetches one body through a target with a plain Node client; MB/s over the whole exchange. */
/** A body read to its end, or (complete: false) cut after its head: callers compare `bytes` with what they asked for. */
function fetchBody(
  t: Target,
  reqPath: string,
  timeoutMs: number,
): Promise<{ bytes: number; seconds: number; status: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.get(t.url + reqPath, { agent: false, headers: t.headers, timeout: timeoutMs }, (res) => {
      let bytes = 0;
      const done = (complete: boolean): void =>
        resolve({ bytes, seconds: (performance.now() - started) / 1000, status: res.statusCode ?? 0, complete });
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('end', () => done(true));
      res.on('error', () => done(false));
    });
    req.on('timeout', () => req.destroy(new BenchError('ERR_BENCH_TIMEOUT', `GET ${t.url}${reqPath} timed out`)));
    req.on('error', reject);
  });
}

async function checkTarget(t: Target, reqPath: string, expectBytes: number): Promise<void> {
  const res = await fetchBody(t, reqPath, 10_000);
  if (res.status !== 200 || res.bytes !== expectBytes) {
    throw new BenchError(
      'ERR_BENCH_CHECK',
      `${t.name}: GET ${reqPath} gave ${res.status} with ${res.bytes} bytes, expected 200 with ${expectBytes}`,
    );
  }
}

async function measureBodies(targets: Target[]): Promise<BodySample[]> {
  const out: BodySample[] = [];
  const MIB = 1024 * 1024;
  log(`100 MiB bodies: warm-up`);
  for (const t of targets) await fetchBody(t, '/100m', 120_000);
  for (let rep = 0; rep < CFG.reps; rep++) {
    for (const t of targets) {
      const res = await fetchBody(t, '/100m', 120_000);
      if (res.status !== 200 || res.bytes !== 100 * MIB) {
        throw new BenchError('ERR_BENCH_CHECK', `${t.name}: 100 MiB body came back as ${res.status} with ${res.bytes} bytes`);
      }
      out.push({ target: t.name, rep, bytes: res.bytes, seconds: res.seconds, mbps: res.bytes / res.seconds / 1e6 });
      log(`100 MiB ${t.name} #${rep + 1}: ${(res.bytes / res.seconds / 1e6).toFixed(0)} MB/s`);
    }
  }
  return out;
}

/**
 * Agent and server far apart: the agent's connection to the upstream port
 * goes through toxiproxy with half the round trip added each way, the
 * client and the local service stay on loopback (as a tunnel across the
 * internet to a cluster). One stream's throughput is bounded by the
 * receive window over the RTT; a request's latency by the round trips it
 * waits for. Sizes keep Go Piko under its 10 s proxy write timeout.
 */
const DISTANCES = QUICK
  ? [{ rttMs: 50, mib: 8 }]
  : [
      { rttMs: 50, mib: 32 },
      { rttMs: 200, mib: 4 },
    ];
const LATENCY_REQUESTS = QUICK ? 5 : 15;

async function measureDistance(servers: Record<Impl, Server>, upstreamAddr: string): Promise<DistanceSample[]> {
  const out: DistanceSample[] = [];
  const toxi = await startToxiproxy();
  try {
    for (const d of DISTANCES) {
      const paths: { name: string; agentImpl: Impl; serverImpl: Impl }[] = [
        { name: 'ours', agentImpl: 'ours', serverImpl: 'ours' },
        { name: 'go', agentImpl: 'go', serverImpl: 'go' },
        { name: 'go agent → our server', agentImpl: 'go', serverImpl: 'ours' },
      ];
      const running: { target: Target; agent: Child }[] = [];
      try {
        for (const [i, p] of paths.entries()) {
          const server = servers[p.serverImpl];
          const proxy = await toxi.createProxy(`rtt${d.rttMs}-${i}`, new URL(server.upstreamUrl).host);
          const half = { type: 'latency' as const, attributes: { latency: d.rttMs / 2 } };
          await proxy.addToxic('delay-up', half, 'upstream');
          await proxy.addToxic('delay-down', half, 'downstream');
          const endpoint = `bench-far-${i}`;
          const agent = await startHttpAgent(p.agentImpl, { ...server, upstreamUrl: proxy.url('http') }, endpoint, upstreamAddr);
          running.push({ agent, target: { name: p.name, url: server.proxyUrl, headers: { 'x-piko-endpoint': endpoint } } });
        }
        log(`${d.rttMs} ms RTT: warm-up`);
        for (const { target } of running) await checkTarget(target, '/2m', 2 * 1024 * 1024);
        for (let rep = 0; rep < CFG.reps; rep++) {
          for (const { target } of running) {
            const res = await fetchBody(target, `/${d.mib}m`, 300_000);
            // Go Piko's proxy cuts a response after its 10 s write timeout: its rate is then what
            // arrived in those 10 s. Ours never cuts, so a short body from ours is a failure.
            const cutByGo = !res.complete && res.status === 200 && target.name === 'go';
            if (cutByGo)
              log(`${target.name}: cut by the server after ${res.seconds.toFixed(1)} s; rate over the ${res.bytes} bytes that arrived`);
            if (!cutByGo && (res.status !== 200 || res.bytes !== d.mib * 1024 * 1024)) {
              throw new BenchError(
                'ERR_BENCH_CHECK',
                `${target.name}: ${d.mib} MiB body came back as ${res.status} with ${res.bytes} bytes`,
              );
            }
            const latencies: number[] = [];
            for (let i = 0; i < LATENCY_REQUESTS; i++) {
              const r = await fetchBody(target, '/1k', 30_000);
              if (r.status !== 200 || !r.complete)
                throw new BenchError('ERR_BENCH_CHECK', `${target.name}: GET /1k gave ${r.status}${r.complete ? '' : ', cut'}`);
              latencies.push(r.seconds * 1000);
            }
            const sample: DistanceSample = {
              target: target.name,
              rttMs: d.rttMs,
              rep,
              bytes: res.bytes,
              seconds: res.seconds,
              mbps: res.bytes / res.seconds / 1e6,
              requestMs: median(latencies) ?? 0,
            };
            out.push(sample);
            log(
              `${d.rttMs} ms RTT ${target.name} #${rep + 1}: ${sample.mbps.toFixed(1)} MB/s one stream, ` +
                `1 KiB request ${sample.requestMs.toFixed(0)} ms`,
            );
          }
        }
      } finally {
        await Promise.all(running.map((r) => r.agent.stop(5_000)));
      }
    }
  } finally {
    await toxi.stop();
  }
  return out;
}

/**
 * What a process costs at rest: a server with nothing connected, and an
 * agent with one HTTP listener registered (the sidecar case: one per
 * application pod), each fresh, RSS read once it stops moving; beside
 * them a bare Node process on the same binary that bin/piko runs.
 */
async function measureFootprint(upstreamAddr: string): Promise<FootprintSample[]> {
  const out: FootprintSample[] = [];
  const bundled = path.join(ROOT, 'node_modules', 'node', 'bin', 'node');
  const nodeBin = fs.existsSync(bundled) ? bundled : process.execPath;
  const settle = async (pid: number): Promise<{ rssKiB: number; anonKiB: number }> => {
    const { mem } = await settledRss(pid, CFG.settleMaxMs);
    return { rssKiB: mem.rss, anonKiB: mem.anon };
  };
  for (let rep = 0; rep < CFG.reps; rep++) {
    const bare = startChild('bare node', nodeBin, ['-e', 'setInterval(() => undefined, 1 << 30)']);
    try {
      out.push({ process: 'bare node', impl: 'ours', rep, ...(await settle(bare.pid)) });
    } finally {
      await bare.stop(2_000);
    }
    for (const impl of ['ours', 'go'] as const) {
      const server = await startServer(impl);
      try {
        out.push({ process: 'server', impl, rep, ...(await settle(server.child.pid)) });
        const agent = await startHttpAgent(impl, server, `bench-footprint-${rep}`, upstreamAddr);
        try {
          out.push({ process: 'agent', impl, rep, ...(await settle(agent.pid)) });
        } finally {
          await agent.stop(5_000);
        }
      } finally {
        await server.child.stop(5_000);
      }
    }
    log(
      `footprint #${rep + 1}: ` +
        out
          .filter((f) => f.rep === rep)
          .map(
            (f) =>
              `${f.process}${f.process === 'bare node' ? '' : ` (${f.impl})`} ${(f.rssKiB / 1024).toFixed(1)} MiB (${(f.anonKiB / 1024).toFixed(1)} anon)`,
          )
          .join(', '),
    );
  }
  return out;
}

class Holder {
  private replies: HolderReply[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly child: Child) {
    child.proc.on('message', (msg: HolderReply) => {
      this.replies.push(msg);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static start(i: number): Holder {
    const proc = fork(path.join(__dirname, 'lib', 'tunnel-holder.ts'), [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      cwd: ROOT,
    });
    return new Holder(new Child(`tunnel holder ${i}`, proc));
  }

  send(msg: HolderRequest): void {
    this.child.proc.send(msg);
  }

  async next<T extends HolderReply['type']>(type: T, timeoutMs: number): Promise<Extract<HolderReply, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.replies.findIndex((r) => r.type === type);
      if (i >= 0) return this.replies.splice(i, 1)[0] as Extract<HolderReply, { type: T }>;
      if (!this.child.running) throw new BenchError('ERR_BENCH_EXITED', `${this.child.name} exited:\n${this.child.logs().slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new BenchError('ERR_BENCH_TIMEOUT', `${this.child.name}: no '${type}' within ${timeoutMs} ms`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), delay(Math.min(left, 1_000))]);
    }
  }
}

async function idleRun(impl: Impl, count: number, rep: number, holders: Holder[]): Promise<IdleSample> {
  const [inspectPort] = await freePorts(1);
  const server = await startServer(impl, impl === 'ours' ? { nodeOptions: `--inspect=127.0.0.1:${inspectPort}` } : {});
  const pid = server.child.pid;
  try {
    if (impl === 'ours') await forceGc(inspectPort as number);
    const before = await settledRss(pid, CFG.settleMaxMs);
    const prefix = `idle${rep}`;
    const share = Math.ceil(count / holders.length);
    const started = performance.now();
    holders.forEach((h, i) => {
      const n = Math.min(share, count - i * share);
      if (n > 0) h.send({ type: 'open', url: server.upstreamUrl, prefix: `${prefix}h${i}`, count: n, window: CFG.holderWindow });
    });
    // Polled rather than taken from the holders: a session counts once the server has registered it.
    let registered = 0;
    await pollUntil(
      `${count} idle tunnels registered at ${impl} server`,
      async () => {
        const counts = await upstreamCounts(server.adminUrl);
        registered = Object.entries(counts).reduce((sum, [k, v]) => (k.startsWith(prefix) ? sum + v : sum), 0);
        return registered >= count;
      },
      180_000,
      count > 2_000 ? 100 : 20,
      server.child,
    );
    const connectMs = performance.now() - started;
    let failed = 0;
    let firstError: string | undefined;
    for (const h of holders) {
      const r = await h.next('opened', 180_000);
      failed += r.failed;
      firstError ??= r.firstError;
    }
    const after = await settledRss(pid, CFG.settleMaxMs);
    const sample: IdleSample = {
      impl,
      count,
      rep,
      connectMs,
      failed,
      rssBeforeKiB: before.kib,
      rssAfterKiB: after.kib,
      memBeforeKiB: before.mem,
      memAfterKiB: after.mem,
      settled: before.settled && after.settled,
      kibPerTunnel: (after.kib - before.kib) / count,
    };
    if (firstError !== undefined) sample.firstError = firstError;
    if (impl === 'ours') {
      await forceGc(inspectPort as number, 60_000);
      const gc = await settledRss(pid, CFG.settleMaxMs);
      sample.rssAfterGcKiB = gc.kib;
      sample.memAfterGcKiB = gc.mem;
      sample.kibPerTunnelGc = (gc.kib - before.kib) / count;
    }
    const anonPer = (after.mem.anon - before.mem.anon) / count;
    log(
      `idle ${count} ${impl} #${rep + 1}: connect ${(connectMs / 1000).toFixed(2)} s, RSS ${(before.kib / 1024).toFixed(1)} → ${(after.kib / 1024).toFixed(1)} MiB ` +
        `(anon ${(before.mem.anon / 1024).toFixed(1)} → ${(after.mem.anon / 1024).toFixed(1)}, file ${(before.mem.file / 1024).toFixed(1)} → ${(after.mem.file / 1024).toFixed(1)}), ` +
        `${sample.kibPerTunnel.toFixed(1)} KiB/tunnel (anon ${anonPer.toFixed(1)})` +
        (sample.kibPerTunnelGc !== undefined ? ` (${sample.kibPerTunnelGc.toFixed(1)} after forced GC)` : '') +
        (sample.settled ? '' : ' (RSS still moving at the time limit)') +
        (failed > 0 ? `, ${failed} dials FAILED: ${firstError}` : ''),
    );
    for (const h of holders) h.send({ type: 'close' });
    for (const h of holders) {
      const r = await h.next('closed', 60_000);
      sample.lost = (sample.lost ?? 0) + r.lost;
    }
    return sample;
  } finally {
    await server.child.kill();
  }
}

async function measureIdle(): Promise<IdleSample[]> {
  const holders = Array.from({ length: CFG.holders }, (_, i) => Holder.start(i));
  try {
    for (const h of holders) await h.next('ready', 60_000);
    const out: IdleSample[] = [];
    for (const count of [CFG.idleSmall, CFG.idleLarge]) {
      for (let rep = 0; rep < CFG.reps; rep++) {
        for (const impl of ['ours', 'go'] as const) out.push(await idleRun(impl, count, rep, holders));
      }
    }
    return out;
  } finally {
    await Promise.all(holders.map((h) => h.child.stop(2_000)));
  }
}

/** The Go tool `piko bench http` (in-process Go SDK upstreams and clients) against each server. */
async function measurePikoBench(servers: Record<Impl, Server>): Promise<PikoBenchSample[]> {
  const out: PikoBenchSample[] = [];
  for (let rep = 0; rep < CFG.reps; rep++) {
    for (const impl of ['ours', 'go'] as const) {
      const s = servers[impl];
      const child = startChild(
        `piko bench http → ${impl}`,
        goBinary(),
        [
          'bench',
          'http',
          '--requests',
          String(CFG.pikoBenchRequests),
          '--connect.proxy-url',
          s.proxyUrl,
          '--connect.upstream-url',
          s.upstreamUrl,
          '--log.level',
          'warn',
        ],
        { longRunning: false },
      );
      const guard = setTimeout(() => void child.kill(), 180_000);
      await child.exited;
      clearTimeout(guard);
      const m = /Throughput: ([\d.]+) requests\/sec/.exec(child.logs());
      const problems = child
        .logs()
        .split('\n')
        .filter((l) => /warn|error/i.test(l)).length;
      if (!m) throw new BenchError('ERR_BENCH_PIKO_BENCH', `piko bench http gave no result:\n${child.logs().slice(-2000)}`);
      out.push({ impl, rep, rps: Number(m[1]), problems });
      log(`piko bench http ${impl} #${rep + 1}: ${Number(m[1]).toFixed(0)} req/s${problems > 0 ? `, ${problems} warnings/errors` : ''}`);
    }
  }
  return out;
}

async function measureMulti(http: HttpCase[], ours: Server, go: Server, upstreamAddr: string): Promise<void> {
  const ids = Array.from({ length: MULTI_ENDPOINTS }, (_, i) => `bench-ep-${i}`);
  const ourMulti = await startMultiAgent('ours', ours, ids, upstreamAddr, SCRATCH);
  const goMulti = await startMultiAgent('go', go, ids, upstreamAddr, SCRATCH);
  for (const s of [ours, go]) {
    await checkTarget({ name: s.impl, url: s.proxyUrl, headers: { 'x-piko-endpoint': 'bench-ep-42' } }, '/1k', 1024);
  }
  http.push(
    ...(await measureHttp(
      '100x100-c50',
      [
        { name: 'ours', url: ours.proxyUrl, headers: {}, pids: [ours.child.pid, ourMulti.pid] },
        { name: 'go', url: go.proxyUrl, headers: {}, pids: [go.child.pid, goMulti.pid] },
      ],
      '/1k',
      50,
      { endpoints: { prefix: 'bench-ep-', count: MULTI_ENDPOINTS } },
    )),
  );
  await Promise.all([ourMulti.stop(5_000), goMulti.stop(5_000)]);
}

function machine(): BenchResults['machine'] {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  const goVersion = process.env.GO_VERSION ?? 'unknown';
  return {
    nproc: os.availableParallelism(),
    cpuModel: model.trim(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    go: goVersion,
    goPiko: process.env.GO_PIKO_VERSION ?? path.basename(path.dirname(goBinary())),
    wrk: process.env.WRK_VERSION ?? 'unknown',
    kernel: os.release(),
  };
}

async function main(): Promise<void> {
  installExitHooks();
  const watchdog = setTimeout(() => {
    log(`run exceeded ${CFG.maxRunMs / 1000} s: killing everything`);
    killAllChildren();
    process.exit(2);
  }, CFG.maxRunMs);
  watchdog.unref();
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const startedAt = new Date();
  const loadStart = os.loadavg();
  log(
    `${QUICK ? 'QUICK ' : ''}run: ${CFG.reps} rep(s) of ${CFG.durationS} s; load average at start ${loadStart.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const upstream = startChild(
    'upstream',
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'lib', 'upstream-server.ts')],
    { cwd: ROOT },
  );
  let upstreamPort = 0;
  await pollUntil(
    'upstream listening',
    async () => {
      const m = /listening (\d+)/.exec(upstream.logs());
      if (m) upstreamPort = Number(m[1]);
      return m !== null;
    },
    30_000,
    50,
    upstream,
  );
  const upstreamAddr = `127.0.0.1:${upstreamPort}`;
  upstreamStatsUrl = `http://${upstreamAddr}/_stats`;

  const ours = await startServer('ours');
  const go = await startServer('go');
  const ourAgent = await startHttpAgent('ours', ours, ENDPOINT, upstreamAddr);
  const goAgent = await startHttpAgent('go', go, ENDPOINT, upstreamAddr);
  const goAgentOnOurs = await startHttpAgent('go', ours, MIXED_ENDPOINT, upstreamAddr);
  const ourAgentOnGo = await startHttpAgent('ours', go, MIXED_ENDPOINT, upstreamAddr);
  const hdr = { 'x-piko-endpoint': ENDPOINT };
  const direct: Target = { name: 'direct', url: `http://${upstreamAddr}`, headers: {} };
  const oursT: Target = { name: 'ours', url: ours.proxyUrl, headers: hdr, pids: [ours.child.pid, ourAgent.pid] };
  const goT: Target = { name: 'go', url: go.proxyUrl, headers: hdr, pids: [go.child.pid, goAgent.pid] };
  const mixedA: Target = {
    name: 'go agent → our server',
    url: ours.proxyUrl,
    headers: { 'x-piko-endpoint': MIXED_ENDPOINT },
    pids: [ours.child.pid, goAgentOnOurs.pid],
  };
  const mixedB: Target = {
    name: 'our agent → go server',
    url: go.proxyUrl,
    headers: { 'x-piko-endpoint': MIXED_ENDPOINT },
    pids: [go.child.pid, ourAgentOnGo.pid],
  };
  for (const t of [direct, oursT, goT, mixedA, mixedB]) await checkTarget(t, '/1k', 1024);
  for (const t of [direct, oursT, goT]) await checkTarget(t, '/1m', 1024 * 1024);

  const http: HttpCase[] = [];
  if (want('http')) {
    http.push(...(await measureHttp('100B-c50', [direct, oursT], '/100', 50)));
    http.push(...(await measureHttp('1KiB-c50', [direct, oursT, goT, mixedA, mixedB], '/1k', 50)));
    http.push(...(await measureHttp('1KiB-c500', [direct, oursT, goT], '/1k', 500)));
    http.push(...(await measureHttp('1MiB-c10', [direct, oursT, goT], '/1m', 10)));
  }
  const bodies = want('bodies') ? await measureBodies([direct, oursT, goT]) : [];
  const distance = want('distance') ? await measureDistance({ ours, go }, upstreamAddr) : [];
  const footprint = want('footprint') ? await measureFootprint(upstreamAddr) : [];

  // 100 endpoints × 100 upstreams: one agent process per server with a listener (session) per endpoint.
  if (want('multi')) await measureMulti(http, ours, go, upstreamAddr);
  const pikoBench = want('pikobench') ? await measurePikoBench({ ours, go }) : [];

  const serverRss = { ours: rssKiB(ours.child.pid), go: rssKiB(go.child.pid) };
  await Promise.all([ourAgent, goAgent, goAgentOnOurs, ourAgentOnGo].map((c) => c.stop(5_000)));
  await Promise.all([ours.child.stop(5_000), go.child.stop(5_000)]);

  const idle = want('idle') ? await measureIdle() : [];
  await upstream.stop(2_000);

  const results: BenchResults = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    quick: QUICK,
    config: {
      reps: CFG.reps,
      durationS: CFG.durationS,
      warmupS: CFG.warmupS,
      threads: CFG.threads,
      idleSmall: CFG.idleSmall,
      idleLarge: CFG.idleLarge,
      holders: CFG.holders,
      holderWindow: CFG.holderWindow,
      settleMaxS: CFG.settleMaxMs / 1000,
      pikoBenchRequests: CFG.pikoBenchRequests,
    },
    loadavgStart: loadStart,
    loadavgEnd: os.loadavg(),
    machine: machine(),
    code: { commit: process.env.BENCH_COMMIT ?? 'unknown', dirtyFiles: Number(process.env.BENCH_DIRTY ?? 0) || 0 },
    serverRssAfterLoadKiB: serverRss,
    http,
    bodies,
    distance,
    footprint,
    idle,
    pikoBench,
  };
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const file = path.join(RESULTS_DIR, `bench-${stamp}${QUICK ? '-quick' : ''}.json`);
  fs.writeFileSync(file, JSON.stringify(results, null, 2));
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), JSON.stringify(results, null, 2));
  log(`raw results: ${path.relative(ROOT, file)}`);
  const summaryFile = process.env.BENCH_PROFILE_SUMMARY;
  const profileSummary = summaryFile && fs.existsSync(summaryFile) ? fs.readFileSync(summaryFile, 'utf8') : undefined;
  const table = writeReports(results, path.join(ROOT, 'docs', 'benchmarks'), {
    // A run of some suites only would leave the page with rows missing.
    writeDocs: (!QUICK && process.env.BENCH_SUITES === undefined) || process.env.BENCH_WRITE_DOCS === '1',
    ...(profileSummary === undefined ? {} : { profileSummary }),
  });
  process.stdout.write(table);
}

main()
  .catch((err: unknown) => {
    log(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  })
  .finally(() => {
    killAllChildren();
    fs.rmSync(SCRATCH, { recursive: true, force: true });
    // Agents' keep-alive sockets and the holders' IPC would keep the loop alive.
    setImmediate(() => process.exit());
  });
