import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most
 * self time, and the files they live in.
 *
 *   ts-node --transpile-only bench/cpuprofile-summary.ts <file.cpuprofile> [top]
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTimeEntry {
  name: string;
  location: string;
  selfMs: number;
  share: number;
  /** The caller through which most of this self time came, when there is one. */
  topCaller?: string;
  /** The nearest of our own frames (dist/, dataplane/) above it, by most self time. */
  ourCaller?: string;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  functions: SelfTimeEntry[];
  files: SelfTimeEntry[];
}

const ROOT = path.resolve(__dirname, '..');

function shortUrl(url: string): string {
  if (url === '') return '';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(ROOT + '/')) u = u.slice(ROOT.length + 1);
  return u.replace(/^node_modules\//, 'nm/');
}

export function summariseProfile(profile: CpuProfile, top: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const frameKey = (f: CallFrame): { name: string; location: string } => {
    const file = shortUrl(f.url);
    return { name: f.functionName || '(anonymous)', location: file === '' ? '' : `${file}:${f.lineNumber + 1}` };
  };
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time from sample i-1 to sample i; the interval after
  // sample i (timeDeltas[i+1]) is the time spent where sample i was taken.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const fnTotals = new Map<
    string,
    { name: string; location: string; us: number; callers: Map<string, number>; ours: Map<string, number> }
  >();
  const isOurs = (f: CallFrame): boolean => /^(dist|dataplane)\//.test(shortUrl(f.url));
  const nearestOurs = (id: number): string | undefined => {
    for (let cur = parentOf.get(id); cur !== undefined; cur = parentOf.get(cur)) {
      const f = (byId.get(cur) as ProfileNode).callFrame;
      if (isOurs(f)) {
        const k = frameKey(f);
        return `${k.name} (${k.location})`;
      }
    }
    return undefined;
  };
  const fileTotals = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const name = frame.functionName || '(anonymous)';
    totalUs += us;
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    const file = shortUrl(frame.url);
    const { location } = frameKey(frame);
    const key = `${name}@${location}`;
    const entry = fnTotals.get(key) ?? { name, location, us: 0, callers: new Map<string, number>(), ours: new Map<string, number>() };
    entry.us += us;
    const parentId = parentOf.get(id);
    const parent = parentId === undefined ? undefined : byId.get(parentId);
    if (parent && parent.callFrame.functionName !== '(root)') {
      const p = frameKey(parent.callFrame);
      const callerKey = p.location ? `${p.name} (${p.location})` : p.name;
      entry.callers.set(callerKey, (entry.callers.get(callerKey) ?? 0) + us);
    }
    if (!isOurs(frame)) {
      const o = nearestOurs(id);
      if (o !== undefined) entry.ours.set(o, (entry.ours.get(o) ?? 0) + us);
    }
    fnTotals.set(key, entry);
    const fileKey = file === '' ? name : file;
    fileTotals.set(fileKey, (fileTotals.get(fileKey) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const share = (us: number): number => (busyUs > 0 ? us / busyUs : 0);
  const functions = [...fnTotals.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => {
      const out: SelfTimeEntry = { name: e.name, location: e.location, selfMs: e.us / 1000, share: share(e.us) };
      const top = [...e.callers.entries()].sort((a, b) => b[1] - a[1])[0];
      if (top) out.topCaller = `${top[0]} ${Math.round((top[1] / e.us) * 100)}%`;
      const ours = [...e.ours.entries()].sort((a, b) => b[1] - a[1])[0];
      if (ours && ours[0] !== top?.[0]) out.ourCaller = `${ours[0]} ${Math.round((ours[1] / e.us) * 100)}%`;
      return out;
    });
  const files = [...fileTotals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([f, us]) => ({ name: f, location: '', selfMs: us / 1000, share: share(us) }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, functions, files };
}

export function formatSummary(title: string, s: ProfileSummary): string {
  const lines = [
    `${title}: ${(s.totalMs / 1000).toFixed(1)} s profiled, ${((s.totalMs - s.idleMs) / 1000).toFixed(1)} s busy on the main thread; shares are of busy time`,
    '',
    '  #   self ms   share  function  (location)',
  ];
  s.functions.forEach((f, i) => {
    lines.push(
      `${String(i + 1).padStart(3)} ${f.selfMs.toFixed(0).padStart(9)} ${(f.share * 100).toFixed(1).padStart(6)}%  ${f.name}${f.location ? `  (${f.location})` : ''}`,
    );
    if (f.topCaller) lines.push(`${' '.repeat(22)}← ${f.topCaller}`);
    if (f.ourCaller) lines.push(`${' '.repeat(22)}⇐ ${f.ourCaller} (nearest frame of ours)`);
  });
  lines.push('', '  by file:');
  s.files.slice(0, 10).forEach((f) => {
    lines.push(`    ${f.selfMs.toFixed(0).padStart(9)} ms ${(f.share * 100).toFixed(1).padStart(6)}%  ${f.name}`);
  });
  return lines.join('\n') + '\n';
}

if (require.main === module) {
  const [file, topArg] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: cpuprofile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const top = topArg === undefined ? 15 : Number(topArg);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(formatSummary(path.basename(file), summariseProfile(profile, top)));
}
