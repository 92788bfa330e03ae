/**
 * A client pod of our image inside the cluster under test, through which the real-node
 * end-to-end test sends its traffic: to Service names resolved by the cluster's DNS and ClusterIPs
 * routed by its kube-proxy, as any in-cluster client would, and the same way on the local node and
 * on kind, k3d or a cloud cluster. Each call is a `kubectl exec` of in-cluster-script.js.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imageString, type ClusterUnderTest } from './cluster-under-test';

const SCRIPT = fs.readFileSync(path.join(__dirname, 'in-cluster-script.js'), 'utf8');
const POD = 'piko-e2e-client';
const STOP_TIMEOUT_MS = 60_000;

export interface HttpResult {
  status?: number;
  body?: string;
  error?: string;
}

export interface LoadResult {
  /** Milliseconds the load ran, on the client's clock; every time below is on the same clock. */
  elapsedMs: number;
  /** When each mark() reached the client. */
  marks: number[];
  /** When each successful request completed. */
  ok: number[];
  failed: { at: number; detail: string }[];
}

export interface LoadRun {
  /** Resolves once the first request succeeded; rejects if the load ends before. */
  readonly flowing: Promise<void>;
  /** Records "now" on the client's clock, to measure outcomes from (for example, a kill). */
  mark(): void;
  /** Ends the load; resolves once every in-flight request has finished. */
  stop(): Promise<LoadResult>;
}

export class InClusterClient {
  private constructor(
    private readonly cluster: ClusterUnderTest,
    readonly namespace: string,
  ) {}

  /** Creates the client pod (idle until exec'd into) and waits for it to be Ready. */
  static async start(cluster: ClusterUnderTest, namespace: string): Promise<InClusterClient> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: POD, namespace, labels: { 'app.kubernetes.io/name': POD } },
      spec: {
        terminationGracePeriodSeconds: 1,
        securityContext: { runAsNonRoot: true, runAsUser: 65532 },
        containers: [
          {
            name: 'client',
            image: imageString(cluster.image),
            imagePullPolicy: cluster.image.pullPolicy,
            // PID 1 gets no default signal handling: exit on SIGTERM, or deletion waits the grace.
            command: ['node', '-e', "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1 << 30);"],
            securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    };
    await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(pod));
    await cluster.kubectl(['-n', namespace, 'wait', '--for=condition=Ready', `pod/${POD}`, '--timeout=120s']);
    return new InClusterClient(cluster, namespace);
  }

  private execArgs(mode: string, args: readonly string[], stdin: boolean): string[] {
    return ['-n', this.namespace, 'exec', ...(stdin ? ['-i'] : []), POD, '--', 'node', '-e', SCRIPT, mode, ...args];
  }

  private async run<T>(mode: string, args: readonly string[]): Promise<T> {
    const out = await this.cluster.kubectl(this.execArgs(mode, args, false));
    return JSON.parse(out.trim().split('\n').pop() as string) as T;
  }

  get(url: string, endpoint: string): Promise<HttpResult> {
    return this.run('get', [url, endpoint]);
  }

  websocket(url: string, endpoint: string, message: string): Promise<{ echo?: string; error?: string }> {
    return this.run('websocket', [url, endpoint, message]);
  }

  /** `piko forward tcp` in the client pod to `proxyUrl`, and one HTTP request through its port. */
  forward(proxyUrl: string, endpoint: string, requestPath: string): Promise<HttpResult> {
    return this.run('forward', [proxyUrl, endpoint, requestPath]);
  }

  /** `workers` clients sending to `url` on a new connection per request, as through any load balancer. */
  load(url: string, endpoint: string, workers: number): LoadRun {
    const child: ChildProcess = this.cluster.spawnKubectl(this.execArgs('load', [url, endpoint, String(workers)], true));
    let stdout = '';
    let stderr = '';
    let onFlowing: (() => void) | undefined;
    const flowing = new Promise<void>((resolve) => (onFlowing = resolve));
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      if (stdout.startsWith('flowing\n')) onFlowing?.();
    });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
    const exited = new Promise<number | null>((resolve) => {
      child.once('close', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    const ended = exited.then((code) =>
      Promise.reject(new Error(`the in-cluster load ended (${String(code)}) before a request succeeded: ${stderr || stdout}`)),
    );
    ended.catch(() => undefined);
    return {
      flowing: Promise.race([flowing, ended]),
      mark: () => child.stdin!.write('mark\n'),
      stop: async () => {
        child.stdin!.end();
        let timer: NodeJS.Timeout | undefined;
        const code = await Promise.race([
          exited,
          new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
        if (code === 'timeout') child.kill('SIGKILL');
        const line = stdout.trim().split('\n').pop() ?? '';
        if (code !== 0 || line === '') throw new Error(`the in-cluster load ended with ${String(code)}: ${stderr || stdout}`);
        return JSON.parse(line) as LoadResult;
      },
    };
  }

  async delete(): Promise<void> {
    await this.cluster.kubectl(['-n', this.namespace, 'delete', 'pod', POD, '--ignore-not-found', '--wait=true']);
  }
}
