/**
 * The SDK as users install it: dataplane/client/sdk-package.ts builds the package from dist/,
 * `npm pack` makes the tarball, and a scratch project outside the clone installs it (from npm's
 * cache only: nothing is fetched) and uses `listen` from a CommonJS file and `dial` from an ES
 * module against a running server, and type-checks against its declarations.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const TIMEOUT_MS = 120_000;

let dir: string;
let tarball: string;
let scratch: string;
let srv: TestServer;

/** Tarballs of every package `manifest` depends on, transitively, packed from the project's node_modules. */
async function packDependencies(manifest: string): Promise<string[]> {
  const seen = new Set<string>();
  const pending = Object.keys(
    (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {},
  );
  const tarballs: string[] = [];
  for (let name = pending.shift(); name !== undefined; name = pending.shift()) {
    if (seen.has(name)) continue;
    seen.add(name);
    const where = path.join(ROOT, 'node_modules', name);
    const pkg = JSON.parse(fs.readFileSync(path.join(where, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    pending.push(...Object.keys(pkg.dependencies ?? {}));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', dir, where], { timeout: TIMEOUT_MS });
    tarballs.push(path.join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename));
  }
  return tarballs;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-sdk-'));
  const out = path.join(dir, 'package');
  await run(process.execPath, [path.join(ROOT, 'dist', 'dataplane', 'client', 'sdk-package.js'), '--out', out], { timeout: TIMEOUT_MS });
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: out, timeout: TIMEOUT_MS });
  tarball = path.join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  scratch = path.join(dir, 'app');
  fs.mkdirSync(scratch);
  fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true }));
  // No registry: the package's dependencies (and theirs) are packed from the project's own
  // node_modules and installed beside it, so npm finds every range satisfied and fetches nothing.
  const deps = await packDependencies(path.join(out, 'package.json'));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball, ...deps], {
    cwd: scratch,
    timeout: TIMEOUT_MS,
  });
  srv = await startTestServer();
}, TIMEOUT_MS * 3);

afterAll(async () => {
  await stopAllTestServers();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the SDK package', () => {
  it('holds the SDK and its declarations only, and installs ws and nothing of the server', async () => {
    const { stdout } = await run('tar', ['tzf', tarball]);
    const files = stdout
      .split('\n')
      .filter((f) => f !== '' && !f.endsWith('/'))
      .map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'index.mjs',
        'index.d.mts',
        'dataplane/client/index.js',
        'dataplane/client/index.d.ts',
      ]),
    );
    expect(files.filter((f) => !/^(package\.json|README\.md|index\.mjs|index\.d\.mts|dataplane\/.+\.(js|d\.ts))$/.test(f))).toEqual([]);
    expect(files.filter((f) => /^dataplane\/(server|operator|registry|proxy|agent|config|log|kube|auth)\//.test(f))).toEqual([]);
    const installed = fs.readdirSync(path.join(scratch, 'node_modules'));
    expect(installed).toEqual(expect.arrayContaining(['piko-k8s', 'ws']));
    for (const absent of ['winston', '@kubernetes', 'prom-client', 'yaml', 'commander', 'jose']) expect(installed).not.toContain(absent);
    const pkg = JSON.parse(fs.readFileSync(path.join(scratch, 'node_modules', 'piko-k8s', 'package.json'), 'utf8')) as {
      version: string;
      private?: boolean;
    };
    expect(pkg.private).toBeUndefined();
    expect(pkg.version).toBe((JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it(
    'listens from a CommonJS file and dials from an ES module against a running server',
    async () => {
      fs.writeFileSync(
        path.join(scratch, 'listen.cjs'),
        [
          "const http = require('node:http');",
          "const { listen, serve } = require('piko-k8s');",
          '(async () => {',
          "  const listener = await listen('sdk-package', { url: process.argv[2] });",
          "  serve(listener, http.createServer((req, res) => res.end('cjs answered ' + req.url)));",
          "  process.stdout.write('ready\\n');",
          "  process.stdin.on('end', () => listener.close().then(() => process.exit(0)));",
          '  process.stdin.resume();',
          '})();',
        ].join('\n'),
      );
      fs.writeFileSync(
        path.join(scratch, 'dial.mjs'),
        [
          "import { dial } from 'piko-k8s';",
          "const socket = await dial('sdk-package', { url: process.argv[2] });",
          "socket.write('GET /from-esm HTTP/1.1\\r\\nHost: app\\r\\nConnection: close\\r\\n\\r\\n');",
          "let text = '';",
          'for await (const chunk of socket) text += chunk;',
          "process.stdout.write(JSON.stringify(text.split('\\r\\n\\r\\n')[1]));",
        ].join('\n'),
      );
      const listener = spawn(process.execPath, ['listen.cjs', srv.upstreamUrl], { cwd: scratch, stdio: ['pipe', 'pipe', 'inherit'] });
      try {
        const [first] = (await once(listener.stdout, 'data')) as [Buffer];
        expect(String(first)).toBe('ready\n');
        await waitForUpstreams(srv.server.upstreams, 'sdk-package', 1);
        const viaProxy = await request(`${srv.proxyUrl}/over-http`, { headers: { 'x-piko-endpoint': 'sdk-package' } });
        expect(viaProxy).toMatchObject({ status: 200, body: 'cjs answered /over-http' });
        const dialed = await run(process.execPath, ['dial.mjs', srv.proxyUrl], { cwd: scratch, timeout: 30_000 });
        expect(JSON.parse(dialed.stdout)).toBe('cjs answered /from-esm');
      } finally {
        listener.stdin.end();
        if (listener.exitCode === null) await once(listener, 'exit');
      }
    },
    TIMEOUT_MS,
  );

  it(
    'type-checks a TypeScript user of its declarations, ESM and CommonJS',
    async () => {
      const use = [
        "import { listen, dial, isClientError, type ListenOptions, type DialOptions } from 'piko-k8s';",
        "const options: ListenOptions = { url: 'http://localhost:8001', token: 'x' };",
        "const dialing: DialOptions = { url: 'http://localhost:8000' };",
        'export const go = async (): Promise<void> => {',
        "  const listener = await listen('e', options);",
        '  await listener.close();',
        "  (await dial('e', dialing)).end();",
        '};',
        'export const check = (err: unknown): boolean => isClientError(err);',
      ].join('\n');
      fs.writeFileSync(path.join(scratch, 'use.mts'), use);
      fs.writeFileSync(path.join(scratch, 'use.cts'), use);
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      await run(
        process.execPath,
        [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--types', 'node', 'use.mts', 'use.cts'],
        {
          cwd: scratch,
          timeout: TIMEOUT_MS,
        },
      );
      // And the compiler does refuse a misuse, so the check above checked something.
      fs.writeFileSync(path.join(scratch, 'misuse.mts'), "import { listen } from 'piko-k8s';\nvoid listen(42);\n");
      await expect(
        run(
          process.execPath,
          [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--types', 'node', 'misuse.mts'],
          {
            cwd: scratch,
            timeout: TIMEOUT_MS,
          },
        ),
      ).rejects.toMatchObject({ stdout: expect.stringContaining("Argument of type 'number' is not assignable") });
    },
    TIMEOUT_MS,
  );
});
