/**
 * An OCI registry on loopback (CNCF distribution's `registry`, build-registry.sh), for the release
 * path: `.ci/release` pushes the image and the chart to it, `helm install oci://127.0.0.1:<port>/...`
 * installs from it, and the node's containerd pulls the image from it. containerd runs in the
 * node's network namespace, where 127.0.0.1 is its own: it reaches the registry through the
 * host's end of the node's veth (`relayFrom`), a plain TCP relay owned by this object.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freeLoopbackPorts } from '../helpers/go-piko';
import { terminate } from './control-plane';

const execFileAsync = promisify(execFile);
const BUILD_SCRIPT = path.join(__dirname, 'build-registry.sh');
const READY_TIMEOUT_MS = 30_000;
/** A relayed connection idle this long is closed: a pull never pauses that long. */
const RELAY_IDLE_MS = 120_000;

export interface OciRegistry {
  /** `127.0.0.1:<port>`, the registry's name in image references and oci:// URLs. */
  readonly host: string;
  /** `<relay address>:<port>`, where the node reaches it; undefined without a relay. */
  readonly relayHost: string | undefined;
  /** Requests the registry served (its access log), for asserting what was pulled. */
  log(): string;
  stop(): Promise<void>;
}

/** Starts a registry storing into `dir`; with `relayFrom`, also reachable at that address (same port). */
export async function startOciRegistry(dir: string, options: { relayFrom?: string } = {}): Promise<OciRegistry> {
  const { stdout } = await execFileAsync('bash', [BUILD_SCRIPT], { timeout: 15 * 60_000 });
  const bin = stdout.trim().split('\n').pop() as string;
  const [port] = (await freeLoopbackPorts(1)) as [number];
  fs.mkdirSync(path.join(dir, 'storage'), { recursive: true });
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log: {level: info, accesslog: {disabled: false}}',
      `storage: {filesystem: {rootdirectory: ${path.join(dir, 'storage')}}, delete: {enabled: true}}`,
      `http: {addr: "127.0.0.1:${port}"}`,
      '',
    ].join('\n'),
  );
  const logFile = path.join(dir, 'registry.log');
  const fd = fs.openSync(logFile, 'a');
  // No tracing: it would export to an OTLP collector on localhost:4318 that is not there.
  const child: ChildProcess = spawn(bin, ['serve', config], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' },
  });
  fs.closeSync(fd);
  child.on('error', () => undefined);
  const stopProcess = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', stopProcess);

  let relay: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  try {
    await waitForPort(port, child, logFile);
    if (options.relayFrom !== undefined) {
      relay = net.createServer((inbound) => {
        const outbound = net.connect(port, '127.0.0.1');
        for (const s of [inbound, outbound]) {
          sockets.add(s);
          s.setTimeout(RELAY_IDLE_MS, () => s.destroy());
          s.on('close', () => sockets.delete(s));
          s.on('error', () => undefined);
        }
        inbound.pipe(outbound).pipe(inbound);
        inbound.on('close', () => outbound.destroy());
        outbound.on('close', () => inbound.destroy());
      });
      await new Promise<void>((resolve, reject) => {
        relay!.once('error', reject);
        relay!.listen(port, options.relayFrom, () => resolve());
      });
    }
  } catch (err) {
    relay?.close();
    await terminate(child);
    process.removeListener('exit', stopProcess);
    throw err;
  }
  return {
    host: `127.0.0.1:${port}`,
    relayHost: options.relayFrom === undefined ? undefined : `${options.relayFrom}:${port}`,
    log: () => fs.readFileSync(logFile, 'utf8'),
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => (relay === undefined ? resolve() : relay.close(() => resolve())));
      await terminate(child);
      process.removeListener('exit', stopProcess);
    },
  };
}

/** Resolves once the registry answers its API root (`GET /v2/` is 200 without auth). */
async function waitForPort(port: number, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`registry exited with ${child.exitCode}: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline)
      throw new Error(`registry not ready after ${READY_TIMEOUT_MS} ms: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
