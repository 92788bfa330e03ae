import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startNode } from './node';

/**
 * `make k8s-up`: starts the test cluster (node.ts: the control plane of control-plane.ts and a
 * real node, with CoreDNS) in a background process that outlives this one, and returns once the
 * node is Ready. Needs root (network namespaces, cgroups, mounts).
 *
 *   .k8s/kubeconfig    admin kubeconfig (credentials embedded)
 *   .k8s/bin           a symlink to the binaries: kubectl, helm, etcd, kube-apiserver, ...
 *   .k8s/containerd.sock  the node's containerd, for `ctr --address ... -n k8s.io images import`
 *   .k8s/k8s-up.pid    the background process; SIGTERM stops the control plane and removes these
 *   .k8s/k8s-up.log    its output
 *
 * `make k8s-down` sends that SIGTERM. Run as `ts-node --transpile-only test/k8s/k8s-up.ts`; the
 * background process is the same file with --serve.
 */

const STATE_DIR = path.resolve(__dirname, '..', '..', '.k8s');
const KUBECONFIG = path.join(STATE_DIR, 'kubeconfig');
const PID_FILE = path.join(STATE_DIR, 'k8s-up.pid');
const BIN_LINK = path.join(STATE_DIR, 'bin');
const LOG_FILE = path.join(STATE_DIR, 'k8s-up.log');
const CONTAINERD_LINK = path.join(STATE_DIR, 'containerd.sock');
// The binaries and images are built before this runs (the Makefile runs the builds in the
// foreground), so this only covers the start: certificates, etcd, apiserver, controller manager,
// the node's components and CoreDNS.
const START_TIMEOUT_MS = 3 * 60 * 1000;

function runningPid(): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(PID_FILE, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) {
    return undefined;
  }
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function up(): Promise<number> {
  const existing = runningPid();
  if (existing !== undefined) {
    process.stdout.write(`k8s-up: already running (pid ${existing}); kubeconfig: ${KUBECONFIG}\n`);
    return 0;
  }
  fs.mkdirSync(STATE_DIR, { recursive: true });
  fs.rmSync(PID_FILE, { force: true });
  const log = fs.openSync(LOG_FILE, 'w');
  // detached: its own process group, so it survives make and the terminal; the IPC channel only
  // carries the "ready" message and is closed right after.
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--serve'], {
    cwd: path.resolve(__dirname, '..', '..'),
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
  });
  fs.closeSync(log);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), START_TIMEOUT_MS);
  // Either listener ends as 'timeout' when aborted, so the loser of the race never rejects.
  const outcome = await Promise.race([
    once(child, 'message', { signal: ac.signal }).then(
      () => 'ready' as const,
      () => 'timeout' as const,
    ),
    once(child, 'exit', { signal: ac.signal }).then(
      () => 'exited' as const,
      () => 'timeout' as const,
    ),
  ]);
  clearTimeout(timer);
  ac.abort();
  if (outcome === 'exited') {
    process.stderr.write(`k8s-up: the control plane did not start; see ${LOG_FILE}:\n${fs.readFileSync(LOG_FILE, 'utf8')}`);
    return 1;
  }
  if (outcome === 'timeout') {
    child.kill('SIGTERM');
    process.stderr.write(`k8s-up: not ready within ${START_TIMEOUT_MS / 1000} s; see ${LOG_FILE}\n`);
    return 1;
  }
  child.disconnect();
  child.unref();
  process.stdout.write(
    `k8s-up: control plane running (pid ${child.pid ?? '?'}); stop it with \`make k8s-down\`\n` +
      `  export KUBECONFIG=${KUBECONFIG} PATH=${BIN_LINK}:$PATH\n`,
  );
  return 0;
}

async function serve(): Promise<void> {
  const node = await startNode();
  const cp = node.cp;
  fs.copyFileSync(cp.kubeconfigPath, KUBECONFIG);
  fs.rmSync(BIN_LINK, { force: true });
  fs.symlinkSync(cp.binDir, BIN_LINK);
  fs.rmSync(CONTAINERD_LINK, { force: true });
  fs.symlinkSync(path.join(node.dir, 'containerd.sock'), CONTAINERD_LINK);
  fs.writeFileSync(PID_FILE, `${process.pid}\n`);
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    process.stdout.write(`k8s-up: ${signal}: stopping\n`);
    void node.stop().finally(() => {
      fs.rmSync(KUBECONFIG, { force: true });
      fs.rmSync(BIN_LINK, { force: true });
      fs.rmSync(CONTAINERD_LINK, { force: true });
      fs.rmSync(PID_FILE, { force: true });
      process.exit(0);
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('SIGHUP', shutdown);
  process.stdout.write(`k8s-up: ready at ${cp.server}; logs in ${path.dirname(cp.kubeconfigPath)}/logs\n`);
  process.send?.('ready');
}

if (process.argv.includes('--serve')) {
  serve().catch((err: unknown) => {
    process.stderr.write(`k8s-up: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
} else {
  up().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`k8s-up: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
