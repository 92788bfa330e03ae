import * as fs from 'node:fs';
import * as path from 'node:path';
import { BenchError, startChild } from './procs';

/**
 * Runs wrk with a generated Lua script whose done() prints one JSON line,
 * so nothing depends on wrk's human-readable output. wrk's --latency table
 * stops at p99; the script reads p99.9 from the same histogram.
 */

export interface WrkOptions {
  url: string;
  connections: number;
  threads: number;
  durationS: number;
  /** Sent on every request, e.g. x-piko-endpoint. */
  headers?: Record<string, string>;
  /** Spread requests over `${prefix}${0..count-1}` via x-piko-endpoint, round robin per thread. */
  endpoints?: { prefix: string; count: number };
  /** Scratch directory for the Lua script. */
  dir: string;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  bytes: number;
  rps: number;
  /** Response bytes (headers included, as wrk counts them) per second, in 10^6 bytes. */
  mbps: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { p50: number; p90: number; p99: number; p999: number; mean: number; max: number };
}

const DONE_LUA = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f,"mean":%.1f,"max":%.0f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
`;

function endpointsLua(prefix: string, count: number): string {
  // Requests are built once per thread; each thread starts at its own offset so
  // the endpoints are hit evenly across threads from the first request.
  return `
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  reqs = {}
  for k = 0, ${count - 1} do
    reqs[k + 1] = wrk.format(nil, nil, { ["x-piko-endpoint"] = "${prefix}" .. k, ["Host"] = wrk.headers["Host"] })
  end
  n = (tid or 0) * 37
end
function request()
  n = n + 1
  return reqs[(n % ${count}) + 1]
end
`;
}

let scriptSeq = 0;

export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const lua = (opts.endpoints ? endpointsLua(opts.endpoints.prefix, opts.endpoints.count) : '') + DONE_LUA;
  const script = path.join(opts.dir, `wrk-${process.pid}-${scriptSeq++}.lua`);
  fs.writeFileSync(script, lua);
  const args = ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.durationS}s`, '--timeout', '10s', '-s', script];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(opts.url);
  const child = startChild('wrk', 'wrk', args, { longRunning: false });
  // wrk ends on its own after -d; this bounds a wrk that hangs on connection close.
  const guard = setTimeout(() => void child.kill(), (opts.durationS + 30) * 1000);
  const exit = await child.exited;
  clearTimeout(guard);
  fs.rmSync(script, { force: true });
  const line = child
    .logs()
    .split('\n')
    .find((l) => l.startsWith('BENCHJSON '));
  if (!line) {
    throw new BenchError(
      'ERR_BENCH_WRK',
      `wrk ${args.join(' ')} exited (${exit.code}, ${exit.signal}) without a result:\n${child.logs().slice(-2000)}`,
    );
  }
  const raw = JSON.parse(line.slice('BENCHJSON '.length)) as {
    requests: number;
    duration_us: number;
    bytes: number;
    errors: WrkResult['errors'];
    latency_us: WrkResult['latencyUs'];
  };
  const durationS = raw.duration_us / 1e6;
  return {
    requests: raw.requests,
    durationS,
    bytes: raw.bytes,
    rps: raw.requests / durationS,
    mbps: raw.bytes / durationS / 1e6,
    errors: raw.errors,
    latencyUs: raw.latency_us,
  };
}
