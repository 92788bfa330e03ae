import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatSummary, summariseProfile } from './cpuprofile-summary';
import { installExitHooks, killAllChildren, pollUntil, startChild, type Child } from './lib/procs';
import { ROOT, startHttpAgent, startServer } from './lib/servers';
import { runWrk } from './lib/wrk';

/**
 * Profiles our server and agent (node --cpu-prof) under the 1 KiB /
 * 50-connection wrk load and prints the top self-time functions of each.
 * Writes the profiles and bench/results/profile-summary.md.
 *
 *   ts-node --transpile-only bench/profile.ts   (bench/run.sh runs it unless BENCH_PROFILE=0)
 */

const QUICK = process.env.BENCH_QUICK === '1';
const DURATION_S = QUICK ? 3 : 10;
const TOP = 15;
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

async function main(): Promise<void> {
  installExitHooks();
  const watchdog = setTimeout(() => {
    process.stderr.write('profile: took over 3 minutes, killing everything\n');
    killAllChildren();
    process.exit(2);
  }, 180_000);
  watchdog.unref();
  const profDir = path.join(RESULTS_DIR, 'profiles');
  fs.mkdirSync(profDir, { recursive: true });
  for (const f of ['server.cpuprofile', 'agent.cpuprofile']) fs.rmSync(path.join(profDir, f), { force: true });
  const scratch = fs.mkdtempSync(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'piko-profile-'));

  const upstream: Child = startChild(
    'upstream',
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'lib', 'upstream-server.ts')],
    { cwd: ROOT },
  );
  let port = 0;
  await pollUntil(
    'upstream listening',
    async () => {
      const m = /listening (\d+)/.exec(upstream.logs());
      if (m) port = Number(m[1]);
      return m !== null;
    },
    30_000,
    50,
    upstream,
  );
  const prof = (name: string): string => `--cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-name=${name}.cpuprofile`;
  const server = await startServer('ours', { nodeOptions: prof('server') });
  const agent = await startHttpAgent('ours', server, 'bench', `127.0.0.1:${port}`, { nodeOptions: prof('agent') });
  const load = { url: `${server.proxyUrl}/1k`, connections: 50, threads: 2, headers: { 'x-piko-endpoint': 'bench' }, dir: scratch };
  await runWrk({ ...load, durationS: 2 });
  const wrk = await runWrk({ ...load, durationS: DURATION_S });
  process.stderr.write(`profile: ${wrk.rps.toFixed(0)} req/s under the profiler (load average ${os.loadavg()[0]?.toFixed(2)})\n`);
  // The profiles are written when the processes exit normally (SIGTERM → graceful shutdown).
  await agent.stop(20_000);
  await server.child.stop(20_000);
  await upstream.stop(2_000);
  fs.rmSync(scratch, { recursive: true, force: true });

  const parts: string[] = [
    `Load: wrk -t2 -c50 -d${DURATION_S}s, 1 KiB responses, ${wrk.rps.toFixed(0)} requests/s under the profiler. Self time per function (V8 sampling profiler, main thread).`,
  ];
  for (const name of ['server', 'agent']) {
    const file = path.join(profDir, `${name}.cpuprofile`);
    if (!fs.existsSync(file)) throw new Error(`${file} was not written (did the ${name} exit cleanly?)`);
    const summary = formatSummary(`our ${name}`, summariseProfile(JSON.parse(fs.readFileSync(file, 'utf8')), TOP));
    process.stdout.write(`\n${summary}`);
    parts.push('```\n' + summary + '```');
  }
  parts.push(`Profiles: \`bench/results/profiles/{server,agent}.cpuprofile\` (open in Chrome DevTools → Performance).`);
  fs.writeFileSync(path.join(RESULTS_DIR, 'profile-summary.md'), parts.join('\n\n') + '\n');
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`profile: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    killAllChildren();
    setImmediate(() => process.exit());
  });
