import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'piko');

// bin/piko runs the compiled CLI, so this builds it first (tsc emits even
// when another module has a type error; only the emitted CLI matters here).
beforeAll(async () => {
  await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: root,
    timeout: 120_000,
  }).catch((err: unknown) => err);
  expect(existsSync(join(root, 'dist', 'dataplane', 'cli', 'main.js'))).toBe(true);
}, 150_000);

async function piko(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(bin, args, { cwd: root, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('bin/piko', () => {
  it('prints the help and exits 0', async () => {
    const r = await piko(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: piko');
    expect(r.stdout).toMatch(/server[\s\S]*agent[\s\S]*forward/);
  });

  it('prints the package version', async () => {
    const r = await piko(['--version']);
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a JSON file, read as the CLI reads it
    expect(r).toMatchObject({ code: 0, stdout: `${(require(join(root, 'package.json')) as { version: string }).version}\n` });
  });

  it('prints a config error without a stack trace and exits 1', async () => {
    const r = await piko(['server', '--proxy.timeout', '5x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: --proxy.timeout must be a duration: unknown unit "x" in duration "5x"\n');
  });
});
