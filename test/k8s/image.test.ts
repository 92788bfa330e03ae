/**
 * The image `make image` builds (test/k8s/images/piko/build.sh), unpacked with umoci and run
 * with runc: the entrypoint, user and layout the Dockerfile gives users, nothing writable by
 * the user it runs as, no development dependencies, and it starts on a read-only root.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
const BUILD = path.join(REPO, 'test', 'k8s', 'images', 'piko', 'build.sh');

interface RuntimeConfig {
  process: { user: { uid: number; gid: number }; args: string[]; cwd: string; env: string[]; terminal: boolean };
  root: { path: string; readonly: boolean };
}

let dir: string;
let bundle: string;

beforeAll(
  async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-image-'));
    const { stdout } = await execFileAsync('bash', [BUILD, 'piko.local/piko:image-test', dir], {
      timeout: 10 * 60 * 1000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const archive = stdout.trim().split('\n').pop() as string;
    fs.mkdirSync(path.join(dir, 'layout'));
    execFileSync('tar', ['-xf', archive, '-C', path.join(dir, 'layout')]);
    bundle = path.join(dir, 'bundle');
    execFileSync('umoci', ['unpack', '--image', `${path.join(dir, 'layout')}:image-test`, bundle], { stdio: 'ignore' });
  },
  10 * 60 * 1000,
);

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const config = (): RuntimeConfig => JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
const rootfs = (...p: string[]): string => path.join(bundle, 'rootfs', ...p);

it('runs as the Dockerfile says: user 65532, node /app/dist/dataplane/cli/main.js server, NODE_ENV=production', () => {
  const { process: proc } = config();
  expect(proc.user).toMatchObject({ uid: 65532, gid: 65532 });
  expect(proc.args).toEqual(['node', '/app/dist/dataplane/cli/main.js', 'server']);
  expect(proc.cwd).toBe('/app');
  expect(proc.env).toContain('NODE_ENV=production');
  const dockerfile = fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
  expect(dockerfile).toContain('USER 65532:65532');
  expect(dockerfile).toContain('ENTRYPOINT ["node", "/app/dist/dataplane/cli/main.js"]');
  expect(dockerfile).toContain('CMD ["server"]');
  expect(dockerfile).toContain('WORKDIR /app');
});

it('holds the application owned by root and read-only to its user, with production dependencies only', () => {
  for (const p of ['app/dist/dataplane/cli/main.js', 'app/package.json', 'app/node_modules/ws/package.json']) {
    const st = fs.statSync(rootfs(p));
    expect([p, st.uid, st.mode & 0o222 & ~0o200]).toEqual([p, 0, 0]);
  }
  expect(fs.statSync(rootfs('usr/local/bin/node')).mode & 0o111).toBe(0o111);
  for (const dev of ['jest', 'typescript', 'ts-node', 'ts-jest', '@types', 'node']) {
    expect([dev, fs.existsSync(rootfs('app/node_modules', dev))]).toEqual([dev, false]);
  }
  expect(fs.readFileSync(rootfs('etc/passwd'), 'utf8')).toContain('nonroot:x:65532:65532:');
  expect(fs.existsSync(rootfs('etc/ssl/certs/ca-certificates.crt'))).toBe(true);
});

it('starts on a read-only root filesystem as its user', () => {
  const c = config();
  c.process.terminal = false;
  c.process.args = ['node', '/app/dist/dataplane/cli/main.js', '--version'];
  c.root.readonly = true;
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(c));
  const id = `piko-image-${process.pid}`;
  try {
    const out = execFileSync('runc', ['run', id], { cwd: bundle, timeout: 30_000 }).toString();
    const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    expect(out).toContain(version);
  } finally {
    execFileSync('runc', ['delete', '-f', id], { stdio: 'ignore' });
  }
});
