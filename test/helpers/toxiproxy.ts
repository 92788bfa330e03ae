import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import { freeLoopbackPorts } from './go-piko';

/**
 * Shopify's toxiproxy (built by test/faults/build-toxiproxy.sh) as a fault
 * layer between two of our parts on loopback: each proxy forwards one
 * listener to one upstream, and toxics added to it delay, throttle, reset
 * or freeze the connections passing through.
 */

const BUILD_SCRIPT = path.resolve(__dirname, '..', 'faults', 'build-toxiproxy.sh');
const BUILD_TIMEOUT_MS = 10 * 60 * 1000;
const READY_TIMEOUT_MS = 10_000;
const API_TIMEOUT_MS = 5_000;

export type ToxicStream = 'upstream' | 'downstream';

/** The toxics we use, with toxiproxy's attribute names. */
export type Toxic =
  | { type: 'latency'; attributes: { latency: number; jitter?: number } }
  | { type: 'bandwidth'; attributes: { rate: number } }
  | { type: 'reset_peer'; attributes: { timeout: number } }
  // Stops all data; with timeout 0 the connection stays open: half-open as the far side sees it.
  | { type: 'timeout'; attributes: { timeout: number } }
  | { type: 'slow_close'; attributes: { delay: number } }
  | { type: 'limit_data'; attributes: { bytes: number } };

export interface ToxiProxy {
  readonly name: string;
  /** host:port clients connect to instead of the upstream. */
  readonly listen: string;
  readonly url: (scheme?: string) => string;
  addToxic(name: string, toxic: Toxic, stream?: ToxicStream, toxicity?: number): Promise<void>;
  removeToxic(name: string): Promise<void>;
  /** Disabling drops every connection through it and refuses new ones, until enabled again. */
  setEnabled(enabled: boolean): Promise<void>;
}

export interface ToxiproxyServer {
  createProxy(name: string, upstream: string): Promise<ToxiProxy>;
  stop(): Promise<void>;
}

let binary: Promise<string> | undefined;

function toxiproxyBinary(): Promise<string> {
  binary ??= promisify(execFile)('bash', [BUILD_SCRIPT], { timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout }) => stdout.trim().split('\n').pop() as string,
  );
  return binary;
}

export async function startToxiproxy(): Promise<ToxiproxyServer> {
  const bin = await toxiproxyBinary();
  const [port] = (await freeLoopbackPorts(1)) as [number];
  const child: ChildProcess = spawn(bin, ['-host', '127.0.0.1', '-port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (c: Buffer): void => {
    output = (output + c.toString()).slice(-64 * 1024);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const api = `http://127.0.0.1:${port}`;

  const call = async (method: string, route: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${api}${route}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`toxiproxy ${method} ${route}: ${res.status} ${text}`);
    return res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as unknown) : text;
  };

  // Ready once its API answers; it prints nothing we could wait on reliably.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`toxiproxy exited: ${output}`);
    try {
      await call('GET', '/version');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`toxiproxy not ready after ${READY_TIMEOUT_MS} ms: ${output}`, { cause: err });
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  return {
    async createProxy(name, upstream) {
      // Port 0: toxiproxy binds a free port and reports it.
      const created = (await call('POST', '/proxies', { name, listen: '127.0.0.1:0', upstream, enabled: true })) as { listen: string };
      return {
        name,
        listen: created.listen,
        url: (scheme = 'http') => `${scheme}://${created.listen}`,
        addToxic: async (toxicName, toxic, stream = 'downstream', toxicity = 1) => {
          await call('POST', `/proxies/${name}/toxics`, {
            name: toxicName,
            type: toxic.type,
            stream,
            toxicity,
            attributes: toxic.attributes,
          });
        },
        removeToxic: async (toxicName) => {
          await call('DELETE', `/proxies/${name}/toxics/${toxicName}`);
        },
        setEnabled: async (enabled) => {
          await call('POST', `/proxies/${name}`, { enabled });
        },
      };
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
