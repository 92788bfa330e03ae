import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MemoryKiB } from './procs';
import type { WrkResult } from './wrk';

/** Medians, the results table (terminal and Markdown), docs/benchmarks/README.md and results.svg. */

export interface HttpCase {
  suite: string;
  target: string;
  path: string;
  connections: number;
  samples: {
    rep: number;
    wrk: WrkResult;
    loadavg: number;
    /** TCP connections the local service accepted during the run. */
    upstreamConns?: number;
    cpuS?: { server: number; agent: number };
    /** read/write system calls during the run (/proc/<pid>/io syscr, syscw). */
    syscalls?: { server: { reads: number; writes: number }; agent: { reads: number; writes: number } };
  }[];
}

export interface BodySample {
  target: string;
  rep: number;
  bytes: number;
  seconds: number;
  mbps: number;
}

/** One rep across a delayed agent↔server link (the "distance" suite). */
export interface DistanceSample {
  target: string;
  rttMs: number;
  rep: number;
  bytes: number;
  seconds: number;
  /** One stream: a single large response. */
  mbps: number;
  /** Median of sequential 1 KiB requests, each on a new client connection. */
  requestMs: number;
}

/** Settled RSS of one fresh process at rest (the "footprint" suite). */
export interface FootprintSample {
  process: 'server' | 'agent' | 'bare node';
  impl: 'ours' | 'go';
  rep: number;
  rssKiB: number;
  /** RssAnon: what this process alone holds; RssFile pages of the binary are shared by every process of the same image on a node. */
  anonKiB: number;
}

export interface IdleSample {
  impl: 'ours' | 'go';
  count: number;
  rep: number;
  connectMs: number;
  failed: number;
  firstError?: string;
  lost?: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  rssAfterGcKiB?: number;
  memBeforeKiB: MemoryKiB;
  memAfterKiB: MemoryKiB;
  memAfterGcKiB?: MemoryKiB;
  kibPerTunnel: number;
  kibPerTunnelGc?: number;
  settled: boolean;
}

export interface PikoBenchSample {
  impl: 'ours' | 'go';
  rep: number;
  rps: number;
  problems: number;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  config: {
    reps: number;
    durationS: number;
    warmupS: number;
    threads: number;
    idleSmall: number;
    idleLarge: number;
    holders: number;
    holderWindow: number;
    settleMaxS: number;
    pikoBenchRequests: number;
  };
  loadavgStart: number[];
  loadavgEnd: number[];
  machine: { nproc: number; cpuModel: string; memoryGiB: number; node: string; go: string; goPiko: string; wrk: string; kernel: string };
  /** The commit measured and the number of files under dataplane/ and bin/ that differed from it. */
  code: { commit: string; dirtyFiles: number };
  serverRssAfterLoadKiB: { ours: number; go: number };
  http: HttpCase[];
  bodies: BodySample[];
  /** Absent in results from before the suite existed. */
  distance?: DistanceSample[];
  footprint?: FootprintSample[];
  idle: IdleSample[];
  pikoBench: PikoBenchSample[];
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

type Better = 'higher' | 'lower';

interface Row {
  workload: string;
  metric: string;
  better: Better;
  digits: number;
  direct?: number | undefined;
  ours?: number | undefined;
  go?: number | undefined;
  /** Leave out of the chart (ratios of near-zero counts say nothing). */
  chart?: boolean;
  /** A second figure shown after a slash in the same cells (e.g. reads after writes); not charted. */
  pair?: { ours?: number | undefined; go?: number | undefined };
  /** A goal from the issues: checked against `ours` (absolute) or a ratio. */
  goal?: { text: string; met: (r: Row) => boolean | undefined };
}

const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

function httpRows(res: BenchResults): { rows: Row[]; mixed: Row[] } {
  const find = (suite: string, target: string): HttpCase | undefined => res.http.find((c) => c.suite === suite && c.target === target);
  const m = (suite: string, target: string, f: (s: HttpCase['samples'][number]) => number | undefined): number | undefined => {
    const c = find(suite, target);
    if (!c) return undefined;
    return median(c.samples.map(f).filter((v): v is number => v !== undefined));
  };
  const rps = (s: HttpCase['samples'][number]): number => s.wrk.rps;
  const ms =
    (k: keyof WrkResult['latencyUs']) =>
    (s: HttpCase['samples'][number]): number =>
      s.wrk.latencyUs[k] / 1000;
  const mbps = (s: HttpCase['samples'][number]): number => s.wrk.mbps;
  const cpuPerReqUs =
    (which: 'server' | 'agent' | 'total') =>
    (s: HttpCase['samples'][number]): number | undefined => {
      if (!s.cpuS || s.wrk.requests === 0) return undefined;
      const cpu = which === 'total' ? s.cpuS.server + s.cpuS.agent : s.cpuS[which];
      return (cpu / s.wrk.requests) * 1e6;
    };
  const cpuPer100k =
    (which: 'server' | 'agent' | 'total') =>
    (s: HttpCase['samples'][number]): number | undefined => {
      const us = cpuPerReqUs(which)(s);
      return us === undefined ? undefined : us / 10;
    };
  const rows: Row[] = [];
  const perReq =
    (proc: 'server' | 'agent', kind: 'reads' | 'writes') =>
    (s: HttpCase['samples'][number]): number | undefined =>
      s.syscalls && s.wrk.requests > 0 ? s.syscalls[proc][kind] / s.wrk.requests : undefined;
  const connsPer1k = (s: HttpCase['samples'][number]): number | undefined =>
    s.upstreamConns === undefined || s.wrk.requests === 0 ? undefined : (s.upstreamConns / s.wrk.requests) * 1000;
  const syscallRows = (suite: string, workload: string): void => {
    rows.push({
      workload,
      metric: 'new connections to the local service per 1,000 requests',
      better: 'lower',
      digits: 1,
      chart: false,
      direct: m(suite, 'direct', connsPer1k),
      ours: m(suite, 'ours', connsPer1k),
      go: m(suite, 'go', connsPer1k),
    });
    for (const proc of ['server', 'agent'] as const) {
      rows.push({
        workload,
        metric: `${proc} system calls per request, write / read`,
        better: 'lower',
        digits: 1,
        ours: m(suite, 'ours', perReq(proc, 'writes')),
        go: m(suite, 'go', perReq(proc, 'writes')),
        pair: { ours: m(suite, 'ours', perReq(proc, 'reads')), go: m(suite, 'go', perReq(proc, 'reads')) },
      });
    }
  };
  const trio = (suite: string, f: (s: HttpCase['samples'][number]) => number | undefined): Pick<Row, 'direct' | 'ours' | 'go'> => ({
    direct: m(suite, 'direct', f),
    ours: m(suite, 'ours', f),
    go: m(suite, 'go', f),
  });
  // The targets of the performance issue, as ratios to the original in the same run.
  const atLeast = (k: number): Row['goal'] => ({
    text: `≥ ${k}× original`,
    met: (r) => (r.ours !== undefined && r.go !== undefined ? r.ours >= k * r.go : undefined),
  });
  const atMost = (k: number): Row['goal'] => ({
    text: `≤ ${k}× original`,
    met: (r) => (r.ours !== undefined && r.go !== undefined ? r.ours <= k * r.go : undefined),
  });

  const w100 = '100 B responses, 50 conns';
  rows.push({
    workload: w100,
    metric: 'requests/s',
    better: 'higher',
    digits: 0,
    ...trio('100B-c50', rps),
    goal: { text: '≥ 0.25× direct', met: (r) => (r.ours !== undefined && r.direct !== undefined ? r.ours >= 0.25 * r.direct : undefined) },
  });
  rows.push({ workload: w100, metric: 'p50 latency (ms)', better: 'lower', digits: 2, ...trio('100B-c50', ms('p50')) });
  rows.push({ workload: w100, metric: 'p99 latency (ms)', better: 'lower', digits: 2, ...trio('100B-c50', ms('p99')) });
  rows.push({ workload: w100, metric: 'MB/s', better: 'higher', digits: 1, ...trio('100B-c50', mbps) });
  rows.push({
    workload: w100,
    metric: 'CPU µs/request, server',
    better: 'lower',
    digits: 0,
    ours: m('100B-c50', 'ours', cpuPerReqUs('server')),
  });
  rows.push({
    workload: w100,
    metric: 'CPU µs/request, agent',
    better: 'lower',
    digits: 0,
    ours: m('100B-c50', 'ours', cpuPerReqUs('agent')),
  });
  rows.push({
    workload: w100,
    metric: 'CPU µs/request, server + agent',
    better: 'lower',
    digits: 0,
    ours: m('100B-c50', 'ours', cpuPerReqUs('total')),
    goal: { text: '< 120 µs', met: (r) => (r.ours === undefined ? undefined : r.ours < 120) },
  });
  syscallRows('100B-c50', w100);

  for (const c of [50, 500]) {
    const suite = `1KiB-c${c}`;
    const w = `1 KiB responses, ${c} conns`;
    rows.push({ workload: w, metric: 'requests/s', better: 'higher', digits: 0, ...trio(suite, rps), goal: atLeast(1.5) });
    rows.push({ workload: w, metric: 'p50 latency (ms)', better: 'lower', digits: 2, ...trio(suite, ms('p50')) });
    rows.push({ workload: w, metric: 'p99 latency (ms)', better: 'lower', digits: 2, ...trio(suite, ms('p99')), goal: atMost(0.8) });
    rows.push({ workload: w, metric: 'p99.9 latency (ms)', better: 'lower', digits: 2, ...trio(suite, ms('p999')) });
    if (c === 50) {
      for (const which of ['server', 'agent', 'total'] as const) {
        rows.push({
          workload: w,
          metric: `CPU s per 100,000 requests, ${which === 'total' ? 'server + agent' : which}`,
          better: 'lower',
          digits: 2,
          ours: m(suite, 'ours', cpuPer100k(which)),
          go: m(suite, 'go', cpuPer100k(which)),
        });
      }
    }
    syscallRows(suite, w);
  }
  const wm = '1 MiB responses, 10 conns';
  rows.push({
    workload: wm,
    metric: 'MB/s',
    better: 'higher',
    digits: 0,
    ...trio('1MiB-c10', mbps),
    goal: atLeast(1.3),
  });
  rows.push({ workload: wm, metric: 'requests/s', better: 'higher', digits: 0, ...trio('1MiB-c10', rps) });
  const body = (t: string): number | undefined => median(res.bodies.filter((b) => b.target === t).map((b) => b.mbps));
  rows.push({
    workload: '100 MiB body, one Node client',
    metric: 'MB/s',
    better: 'higher',
    digits: 0,
    direct: body('direct'),
    ours: body('ours'),
    go: body('go'),
    goal: atLeast(1.5),
  });

  const rtts = [...new Set((res.distance ?? []).map((d) => d.rttMs))].sort((a, b) => a - b);
  for (const rtt of rtts) {
    const samples = (res.distance ?? []).filter((d) => d.rttMs === rtt);
    const dm = (t: string, f: (d: DistanceSample) => number): number | undefined => median(samples.filter((d) => d.target === t).map(f));
    const mib = Math.round((samples[0]?.bytes ?? 0) / 1024 / 1024);
    const w = `agent ${rtt} ms RTT from the server (toxiproxy latency), client and service on loopback`;
    rows.push({
      workload: w,
      metric: `MB/s, one ${mib} MiB response`,
      better: 'higher',
      digits: 1,
      ours: dm('ours', (d) => d.mbps),
      go: dm('go', (d) => d.mbps),
      ...(rtt === 50
        ? { goal: { text: '≥ 4x Go', met: (r: Row) => (r.ours === undefined || r.go === undefined ? undefined : r.ours >= 4 * r.go) } }
        : {}),
    });
    rows.push({
      workload: w,
      metric: `MB/s, one ${mib} MiB response, Go agent → our server`,
      better: 'higher',
      digits: 1,
      ours: dm('go agent → our server', (d) => d.mbps),
      go: dm('go', (d) => d.mbps),
    });
    rows.push({
      workload: w,
      metric: '1 KiB request, median ms (new client connection each)',
      better: 'lower',
      digits: 0,
      ours: dm('ours', (d) => d.requestMs),
      go: dm('go', (d) => d.requestMs),
    });
  }

  const fp = res.footprint ?? [];
  if (fp.length > 0) {
    const f = (p: FootprintSample['process'], impl: 'ours' | 'go', field: 'rssKiB' | 'anonKiB' = 'rssKiB'): number | undefined =>
      median(fp.filter((s) => s.process === p && s.impl === impl).map((s) => s[field] / 1024));
    const bare = f('bare node', 'ours');
    const bareAnon = f('bare node', 'ours', 'anonKiB');
    const mib = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(1));
    const wf = `at rest, fresh process (a bare Node process: ${mib(bare)} MiB, ${mib(bareAnon)} anonymous)`;
    const rss45 = { text: '≤ 45 MiB', met: (r: { ours?: number }) => (r.ours === undefined ? undefined : r.ours <= 45) };
    for (const [p, what] of [
      ['server', 'server, nothing connected'],
      ['agent', 'agent, one HTTP listener'],
    ] as const) {
      rows.push({
        workload: wf,
        metric: `${what}: RSS (MiB)`,
        better: 'lower',
        digits: 1,
        ours: f(p, 'ours'),
        go: f(p, 'go'),
        goal: rss45,
      });
      // The part a pod pays alone: the runtime's file-backed pages are shared
      // by every process of the same image on a node.
      rows.push({
        workload: wf,
        metric: `${what}: anonymous memory (MiB)`,
        better: 'lower',
        digits: 1,
        ours: f(p, 'ours', 'anonKiB'),
        go: f(p, 'go', 'anonKiB'),
      });
    }
  }

  const wx = '100 endpoints × 100 upstreams, 1 KiB, 50 conns (wrk + Lua)';
  rows.push({
    workload: wx,
    metric: 'requests/s',
    better: 'higher',
    digits: 0,
    ours: m('100x100-c50', 'ours', rps),
    go: m('100x100-c50', 'go', rps),
    goal: atLeast(1.3),
  });
  rows.push({
    workload: wx,
    metric: 'p99 latency (ms)',
    better: 'lower',
    digits: 2,
    ours: m('100x100-c50', 'ours', ms('p99')),
    go: m('100x100-c50', 'go', ms('p99')),
  });
  rows.push({
    workload: wx,
    metric: 'CPU s per 100,000 requests, server + agent',
    better: 'lower',
    digits: 2,
    ours: m('100x100-c50', 'ours', cpuPer100k('total')),
    go: m('100x100-c50', 'go', cpuPer100k('total')),
  });
  syscallRows('100x100-c50', wx);
  const pb = (impl: 'ours' | 'go'): number | undefined => median(res.pikoBench.filter((s) => s.impl === impl).map((s) => s.rps));
  rows.push({
    workload: `\`piko bench http\` (Go tool: 100 upstreams, 100 endpoints, 100 clients, ${res.config.pikoBenchRequests.toLocaleString('en')} requests)`,
    metric: 'requests/s',
    better: 'higher',
    digits: 0,
    ours: pb('ours'),
    go: pb('go'),
    goal: atLeast(1.2),
  });

  for (const n of [res.config.idleSmall, res.config.idleLarge]) {
    const w = `${n.toLocaleString('en')} idle upstream tunnels`;
    const im = (impl: 'ours' | 'go', f: (s: IdleSample) => number | undefined): number | undefined =>
      median(
        res.idle
          .filter((s) => s.impl === impl && s.count === n)
          .map(f)
          .filter((v): v is number => v !== undefined),
      );
    rows.push({
      workload: w,
      metric: 'server RSS before the tunnels (MiB)',
      better: 'lower',
      digits: 1,
      ours: im('ours', (s) => s.rssBeforeKiB / 1024),
      go: im('go', (s) => s.rssBeforeKiB / 1024),
    });
    rows.push({
      workload: w,
      metric: 'server RSS delta (MiB)',
      better: 'lower',
      digits: 1,
      ours: im('ours', (s) => (s.rssAfterKiB - s.rssBeforeKiB) / 1024),
      go: im('go', (s) => (s.rssAfterKiB - s.rssBeforeKiB) / 1024),
    });
    rows.push({
      workload: w,
      metric: 'KiB per tunnel (settled RSS)',
      better: 'lower',
      digits: 1,
      ours: im('ours', (s) => s.kibPerTunnel),
      go: im('go', (s) => s.kibPerTunnel),
      goal: atMost(0.5),
    });
    rows.push({
      workload: w,
      metric: 'KiB per tunnel, anonymous memory only (RssAnon)',
      better: 'lower',
      digits: 1,
      ours: im('ours', (s) => (s.memAfterKiB.anon - s.memBeforeKiB.anon) / n),
      go: im('go', (s) => (s.memAfterKiB.anon - s.memBeforeKiB.anon) / n),
    });
    rows.push({
      workload: w,
      metric: 'KiB per tunnel after a forced GC (ours only)',
      better: 'lower',
      digits: 1,
      ours: im('ours', (s) => s.kibPerTunnelGc),
    });
    rows.push({
      workload: w,
      metric: 'time to connect all, first dial → all registered (s)',
      better: 'lower',
      digits: 2,
      ours: im('ours', (s) => s.connectMs / 1000),
      go: im('go', (s) => s.connectMs / 1000),
      ...(n === res.config.idleLarge ? { goal: atMost(0.8) } : {}),
    });
  }

  const mixed: Row[] = [];
  for (const [name, metric, f, better, digits] of [
    ['requests/s', 'requests/s', rps, 'higher', 0],
    ['p99', 'p99 latency (ms)', ms('p99'), 'lower', 2],
    ['cpu', 'CPU s per 100,000 requests, server + agent', cpuPer100k('total'), 'lower', 2],
  ] as const) {
    void name;
    // "ours" column: the mixed pair; "go" column: the all-Go pair it replaces one half of.
    mixed.push({
      workload: 'Go agent → our server',
      metric,
      better,
      digits,
      ours: m('1KiB-c50', 'go agent → our server', f),
      go: m('1KiB-c50', 'go', f),
      direct: m('1KiB-c50', 'ours', f),
    });
    mixed.push({
      workload: 'our agent → Go server',
      metric,
      better,
      digits,
      ours: m('1KiB-c50', 'our agent → go server', f),
      go: m('1KiB-c50', 'go', f),
      direct: m('1KiB-c50', 'ours', f),
    });
  }
  return { rows, mixed };
}

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtRatio(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(2)}×`;
}

function markdownTable(rows: Row[]): string {
  const out = [
    '| Workload | Metric | Direct | Ours | Original (Go) | Ours / original | Ours / direct | Goal |',
    '|---|---|--:|--:|--:|--:|--:|---|',
  ];
  for (const r of rows) {
    const met = r.goal?.met(r);
    const goal = r.goal ? `${r.goal.text} ${met === undefined ? '' : met ? '✓' : '✗'}`.trim() : '';
    const arrow = r.better === 'higher' ? '↑' : '↓';
    const cell = (v: number | undefined, second: number | undefined): string =>
      r.pair ? `${fmt(v, r.digits)} / ${fmt(second, r.digits)}` : fmt(v, r.digits);
    const ratioCell = r.pair
      ? `${fmtRatio(ratio(r.ours, r.go))} / ${fmtRatio(ratio(r.pair.ours, r.pair.go))}`
      : fmtRatio(ratio(r.ours, r.go));
    out.push(
      `| ${r.workload} | ${r.metric} ${arrow} | ${fmt(r.direct, r.digits)} | ${cell(r.ours, r.pair?.ours)} | ${cell(r.go, r.pair?.go)} | ${ratioCell} | ${fmtRatio(ratio(r.ours, r.direct))} | ${goal} |`,
    );
  }
  return out.join('\n') + '\n';
}

function mixedTable(rows: Row[]): string {
  const out = [
    '| Pair (1 KiB, 50 conns) | Metric | Mixed pair | All-Go pair | All-ours pair | Mixed / all-Go | Mixed / all-ours |',
    '|---|---|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.workload} | ${r.metric} ${r.better === 'higher' ? '↑' : '↓'} | ${fmt(r.ours, r.digits)} | ${fmt(r.go, r.digits)} | ${fmt(r.direct, r.digits)} | ${fmtRatio(ratio(r.ours, r.go))} | ${fmtRatio(ratio(r.ours, r.direct))} |`,
    );
  }
  return out.join('\n') + '\n';
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Horizontal bars on a log2 axis centred on 1×: ours/original (blue) and
 * ours/direct (grey) for every row that has them. Bars right of 1× mean
 * ours is larger; the ↑/↓ in each label says whether larger is better.
 */
export function chartSvg(rows: Row[], title: string): string {
  const items = rows
    .filter((r) => r.pair === undefined && r.chart !== false)
    .map((r) => ({
      label: `${r.workload}: ${r.metric} ${r.better === 'higher' ? '↑' : '↓'}`,
      better: r.better,
      vsGo: ratio(r.ours, r.go),
      vsDirect: ratio(r.ours, r.direct),
    }))
    .filter((i) => i.vsGo !== undefined || i.vsDirect !== undefined);
  const all = items.flatMap((i) => [i.vsGo, i.vsDirect]).filter((v): v is number => v !== undefined && v > 0);
  const lo = Math.min(-1, Math.floor(Math.log2(Math.min(...all, 1))));
  const hi = Math.max(1, Math.ceil(Math.log2(Math.max(...all, 1))));
  const labelW = 520;
  const plotW = 420;
  const bar = 9;
  const rowH = 26;
  const top = 62;
  const width = labelW + plotW + 70;
  const height = top + items.length * rowH + 40;
  const x = (r: number): number => labelW + ((Math.log2(r) - lo) / (hi - lo)) * plotW;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
  );
  parts.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  parts.push(`<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  parts.push(
    `<text x="10" y="38" fill="#444">Log scale. <tspan fill="#2b6cb0">■ ours / original Go Piko</tspan>   <tspan fill="#8a8a8a">■ ours / direct upstream</tspan>   ↑ higher is better, ↓ lower is better; bold value = ours better than original.</text>`,
  );
  // Row shading first, so the grid and bars are drawn over it.
  items.forEach((_, i) => {
    if (i % 2 === 0) parts.push(`<rect x="0" y="${top + i * rowH - 4}" width="${width}" height="${rowH}" fill="#f6f8fa"/>`);
  });
  for (let e = lo; e <= hi; e++) {
    const gx = x(2 ** e);
    parts.push(
      `<line x1="${gx.toFixed(1)}" y1="${top - 8}" x2="${gx.toFixed(1)}" y2="${height - 30}" stroke="${e === 0 ? '#222' : '#ddd'}" stroke-width="${e === 0 ? 1.5 : 1}"/>`,
    );
    const label = e >= 0 ? `${2 ** e}×` : `1/${2 ** -e}×`;
    parts.push(`<text x="${gx.toFixed(1)}" y="${height - 15}" text-anchor="middle" fill="#555">${label}</text>`);
  }
  items.forEach((it, i) => {
    const y = top + i * rowH;
    parts.push(
      `<text x="${labelW - 8}" y="${y + 12}" text-anchor="end">${escapeXml(it.label.length > 92 ? `${it.label.slice(0, 90)}…` : it.label)}</text>`,
    );
    const drawBar = (v: number | undefined, dy: number, colour: string, bold: boolean): void => {
      if (v === undefined || v <= 0) return;
      const x0 = x(1);
      const x1 = x(Math.min(Math.max(v, 2 ** lo), 2 ** hi));
      const left = Math.min(x0, x1);
      parts.push(
        `<rect x="${left.toFixed(1)}" y="${y + dy}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${bar}" fill="${colour}"/>`,
      );
      const tx = x1 >= x0 ? x1 + 4 : x1 - 4;
      parts.push(
        `<text x="${tx.toFixed(1)}" y="${y + dy + 8}" text-anchor="${x1 >= x0 ? 'start' : 'end'}" font-size="10"${bold ? ' font-weight="bold"' : ''}>${v.toFixed(2)}×</text>`,
      );
    };
    const oursBetter = it.vsGo !== undefined && (it.better === 'higher' ? it.vsGo >= 1 : it.vsGo <= 1);
    drawBar(it.vsGo, 0, '#2b6cb0', oursBetter);
    drawBar(it.vsDirect, bar + 1, '#8a8a8a', false);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function methodNotes(res: BenchResults): string {
  const c = res.config;
  return `## How it is measured

- Everything runs on 127.0.0.1 on the same ${res.machine.nproc} cores: load generator, server, agent and the upstream, which is a plain Node \`http\` server in its own process (\`bench/lib/upstream-server.ts\`). Our server and agents are \`bin/piko\` from \`dist/\`; the original is Go Piko ${res.machine.goPiko} built from the Go module proxy (\`test/interop/build-go-piko.sh\`). Both servers run with the access log off and \`--log.level warn\`; Go agents with \`--access-log=false\`, ours with \`--access-log.disable\`.
- Each measurement is repeated ${c.reps} time${c.reps === 1 ? '' : 's'}, alternating the targets (direct, ours, original, ...) so background load hits them alike; the table shows the median. One ${c.warmupS} s warm-up run per target precedes each workload.
- HTTP load: \`wrk -t${c.threads} -c<conns> -d${c.durationS}s --timeout 10s\` with keep-alive; a Lua \`done()\` prints requests, bytes and the p50/p99/p99.9 latency from wrk's histogram. MB/s counts response bytes including headers (10^6 bytes).
- "100 endpoints × 100 upstreams" is the shape of \`piko bench http\`: one agent process per server with 100 HTTP listeners (one session each) on endpoints \`bench-ep-0..99\`, and wrk with a Lua \`request()\` that sends consecutive requests to consecutive endpoints via \`x-piko-endpoint\`. The Go tool \`piko bench http\` itself (echoing 1 KiB request bodies, in-process Go SDK upstreams) is run against both servers as a second opinion.
- 100 MiB body: one GET of a 100 MiB streamed body by a Node \`http\` client, MB/s over the whole exchange.
- CPU: utime + stime of the server and the agent process from \`/proc/<pid>/stat\` before and after each wrk run, divided by the requests wrk completed (all threads, for Go and Node alike). System calls: \`syscw\` / \`syscr\` from \`/proc/<pid>/io\` over the same run (write/writev and read calls; both runtimes use these for TCP). New connections to the local service: connections the upstream server accepted during the run, per 1,000 requests. The original Go agent's HTTP transport sets \`MaxIdleConns: 100\` but not \`MaxIdleConnsPerHost\` (v0.7.0 \`agent/reverseproxy/reverseproxy.go\`), so Go's default of 2 idle connections per host applies: with 50 requests in flight through one listener it opens a new connection to the local service for most requests. That is the original's behaviour and is measured as such; with 100 listeners (one transport each) it no longer bites.
- Idle tunnels: a fresh server per measurement; ${c.holders} client processes (\`bench/lib/tunnel-holder.ts\`) open raw WebSocket + yamux sessions (what our SDK's \`listen\` opens, the same wire protocol for both servers), one endpoint ID per session, ${c.holderWindow} handshakes in flight per process. Time to connect runs from the first dial until the admin API's \`/status/upstream/endpoints\` counts them all. RSS (\`VmRSS\`; \`RssAnon\` alongside, since the resident share of the executable's file pages depends on the page cache and varies between otherwise equal runs) is read once it stops moving (three samples 0.5 s apart within 0.5%, at most ${c.settleMaxS} s) before and after; per tunnel = (after − before) / N. Our server also reports the figure after a full GC forced through the inspector (\`HeapProfiler.collectGarbage\`, the server started with \`--inspect=127.0.0.1:<port>\` for these runs only); Go offers no such hook, so the "settled RSS" row compares like with like.
- Mixed pairs: the original Go agent on our server, and our agent on the Go server, with the same 1 KiB / 50-connection load.
`;
}

function minutes(res: BenchResults): string {
  return ((Date.parse(res.finishedAt) - Date.parse(res.startedAt)) / 60_000).toFixed(0);
}

export function writeReports(res: BenchResults, docsDir: string, opts: { writeDocs: boolean; profileSummary?: string }): string {
  const { rows, mixed } = httpRows(res);
  const la = (l: number[]): string => l.map((v) => v.toFixed(2)).join(', ');
  const header =
    `Piko benchmark ${res.startedAt}${res.quick ? ' (QUICK mode: short runs, not for publishing)' : ''}\n` +
    `machine: ${res.machine.nproc} cores, ${res.machine.cpuModel}, ${res.machine.memoryGiB} GiB; Node ${res.machine.node}; ${res.machine.go}; Go Piko ${res.machine.goPiko}; ${res.machine.wrk}\n` +
    `load average (1, 5, 15 min): ${la(res.loadavgStart)} at start, ${la(res.loadavgEnd)} at end; code: ${res.code.commit}${res.code.dirtyFiles > 0 ? ` + ${res.code.dirtyFiles} uncommitted file(s)` : ''}\n\n`;
  const terminal = `${header}${markdownTable(rows)}\n${mixedTable(mixed)}`;
  if (opts.writeDocs) {
    fs.mkdirSync(docsDir, { recursive: true });
    const title = `Piko (TypeScript) vs original Go Piko ${res.machine.goPiko} and a direct upstream — ${res.startedAt.slice(0, 10)}, ${res.machine.nproc} cores`;
    fs.writeFileSync(path.join(docsDir, 'results.svg'), chartSvg(rows, title));
    const problems = describeProblems(res);
    const md = `# Benchmarks

Reproduce with \`make bench\` (${minutes(res)} minutes of measurements in this run, plus about a minute to build and profile; \`BENCH_QUICK=1 make bench\` is a short smoke run that leaves this page alone). It installs wrk if missing, builds, runs \`bench/run.sh\` and writes raw JSON to \`bench/results/\`.

- Date: ${res.startedAt} (finished ${res.finishedAt})
- Machine: \`nproc\` = ${res.machine.nproc}, ${res.machine.cpuModel}, ${res.machine.memoryGiB} GiB RAM, Linux ${res.machine.kernel}
- Load average (1, 5, 15 min) at start: ${la(res.loadavgStart)}; at end: ${la(res.loadavgEnd)}. The cores are shared with other work, so compare the ratios measured within the run rather than absolute figures across runs.
- Code measured: commit ${res.code.commit}${res.code.dirtyFiles > 0 ? ` with ${res.code.dirtyFiles} uncommitted file(s) under \`dataplane/\` or \`bin/\`` : ', no uncommitted changes under `dataplane/` or `bin/`'}
- Versions: Node ${res.machine.node}; ${res.machine.go}; original Piko ${res.machine.goPiko} (the Go module proxy refuses v0.9.0); ${res.machine.wrk}

↑ higher is better, ↓ lower is better. Ratios are ours divided by the other column.

${markdownTable(rows)}
Mixed pairs (the two implementations on either side of the same tunnel):

${mixedTable(mixed)}
![ratios](results.svg)
${problems ? `\n## Problems seen during the run\n\n${problems}\n` : ''}
${methodNotes(res)}${opts.profileSummary ? `\n## CPU profile of our server and agent (1 KiB, 50 connections)\n\n${opts.profileSummary}\n` : ''}`;
    fs.writeFileSync(path.join(docsDir, 'README.md'), md);
  }
  return terminal;
}

/** Errors wrk or the holders counted: a result with errors is not a clean result. */
function describeProblems(res: BenchResults): string {
  const lines: string[] = [];
  for (const c of res.http) {
    for (const s of c.samples) {
      const e = s.wrk.errors;
      if (e.connect + e.read + e.write + e.status + e.timeout > 0) {
        lines.push(`- ${c.suite} ${c.target} run ${s.rep + 1}: wrk errors ${JSON.stringify(e)} of ${s.wrk.requests} requests`);
      }
    }
  }
  for (const s of res.idle) {
    if (s.failed > 0 || (s.lost ?? 0) > 0)
      lines.push(
        `- ${s.count} idle tunnels, ${s.impl}, run ${s.rep + 1}: ${s.failed} dials failed (${s.firstError ?? ''}), ${s.lost ?? 0} sessions lost while idle`,
      );
    if (!s.settled) lines.push(`- ${s.count} idle tunnels, ${s.impl}, run ${s.rep + 1}: RSS had not settled at the time limit`);
  }
  for (const s of res.pikoBench)
    if (s.problems > 0) lines.push(`- piko bench http → ${s.impl}, run ${s.rep + 1}: ${s.problems} warning/error lines`);
  return lines.join('\n');
}
