/**
 * The cluster the real-node end-to-end test runs on: by default the node of node.ts, started here
 * with our release (image and chart) in an OCI registry on loopback; or, with PIKO_TEST_KUBECONFIG and PIKO_TEST_IMAGE, an existing cluster
 * (kind, k3d, a cloud) that already has that image (`kind load docker-image`, `k3d image import`,
 * or a registry it pulls from). The test sends its traffic from a client pod inside the cluster
 * (in-cluster-client.ts), so it needs nothing routed from this machine to the cluster's Services.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { controlPlaneBinDir } from './control-plane';
import { HOST_IP, startNode, type TestNode } from './node';
import { startOciRegistry, type OciRegistry } from './oci-registry';

const REPO = path.resolve(__dirname, '..', '..');

export interface ImageRef {
  readonly repository: string;
  readonly tag: string;
  readonly pullPolicy: 'Never' | 'IfNotPresent' | 'Always';
}

export interface ClusterUnderTest {
  /** Our image, as the chart's `image.*` values and a PikoCluster's `spec.image` take it. */
  readonly image: ImageRef;
  /**
   * The chart to `helm install`: the release in the local registry (whose default image is
   * `image`), or the clone's chart on an existing cluster (with `image` set through values).
   */
  readonly chart: { ref: string; version?: string; plainHttp: boolean };
  /** The registry the local node pulls our image from; undefined on an existing cluster. */
  readonly registry: OciRegistry | undefined;
  /** kubectl with the cluster's admin kubeconfig; rejects with its stderr on a non-zero exit. */
  kubectl(args: readonly string[], input?: string): Promise<string>;
  /** helm with the same kubeconfig and a home of its own. */
  helm(args: readonly string[]): Promise<string>;
  /** kubectl as a child process with piped stdio, for a command that runs until its stdin ends. */
  spawnKubectl(args: readonly string[]): ChildProcess;
  /**
   * The node this machine runs, whose processes and logs the test can reach (a SIGKILL to a
   * container's process as a crash delivers it; containerd's log); undefined on an existing
   * cluster, whose nodes are elsewhere.
   */
  readonly local: TestNode | undefined;
  stop(): Promise<void>;
}

export function imageString(image: ImageRef): string {
  return `${image.repository}:${image.tag}`;
}

/** Starts (or opens) the cluster; the caller stops it. */
export async function clusterUnderTest(): Promise<ClusterUnderTest> {
  const kubeconfig = process.env['PIKO_TEST_KUBECONFIG'];
  if (kubeconfig !== undefined && kubeconfig !== '') return existingCluster(kubeconfig, process.env['PIKO_TEST_IMAGE']);
  return localCluster();
}

/**
 * The local node, with our release in a registry on loopback: `.ci/release` builds the image and
 * the chart and pushes both there, as the release workflow does to ghcr.io, and the chart's
 * default image (that registry's, IfNotPresent) is what the node pulls.
 */
async function localCluster(): Promise<ClusterUnderTest> {
  const node = await startNode();
  let registry: OciRegistry | undefined;
  try {
    registry = await startOciRegistry(path.join(node.dir, 'registry'), { relayFrom: HOST_IP });
    node.trustRegistry(registry.host, registry.relayHost as string);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    const version = `${pkg.version}-e2e`;
    const home = path.join(node.dir, 'release-home');
    await tool(path.join(REPO, '.ci', 'release'), [version, registry.host], {
      env: {
        ...process.env,
        HOME: home,
        HELM: path.join(await controlPlaneBinDir(), 'helm'),
        HELM_CACHE_HOME: path.join(home, 'helm-cache'),
        HELM_CONFIG_HOME: path.join(home, 'helm-config'),
        HELM_DATA_HOME: path.join(home, 'helm-data'),
        RELEASE_PLAIN_HTTP: '1',
        RELEASE_PREBUILT: '1',
        RELEASE_OUT: path.join(node.dir, 'release'),
      },
      timeoutMs: 10 * 60 * 1000,
    });
    const pushed = registry;
    return {
      image: { repository: `${pushed.host}/piko`, tag: version, pullPolicy: 'IfNotPresent' },
      chart: { ref: `oci://${pushed.host}/charts/piko`, version, plainHttp: true },
      registry: pushed,
      kubectl: (args, input) => node.kubectl(args, input),
      helm: (args) => node.helm(args),
      spawnKubectl: (args) => node.spawnKubectl(args),
      local: node,
      stop: async () => {
        await node.stop();
        await pushed.stop();
      },
    };
  } catch (err) {
    await node.stop();
    await registry?.stop();
    throw err;
  }
}

async function existingCluster(kubeconfig: string, image: string | undefined): Promise<ClusterUnderTest> {
  const match = image === undefined ? null : /^(.+):([\w][\w.-]{0,127})$/.exec(image);
  if (match === null) {
    throw new Error(
      `PIKO_TEST_KUBECONFIG needs PIKO_TEST_IMAGE=<repository>:<tag>, an image of this tree the cluster can run (got ${JSON.stringify(image ?? '')})`,
    );
  }
  const bin = await clientBinDir();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-e2e-home-'));
  const env = {
    PATH: process.env['PATH'] ?? '',
    HOME: home,
    KUBECONFIG: path.resolve(kubeconfig),
    HELM_CACHE_HOME: path.join(home, 'helm'),
  };
  const pullPolicy = process.env['PIKO_TEST_IMAGE_PULL_POLICY'] ?? 'IfNotPresent';
  if (pullPolicy !== 'Never' && pullPolicy !== 'IfNotPresent' && pullPolicy !== 'Always') {
    throw new Error(`PIKO_TEST_IMAGE_PULL_POLICY must be Never, IfNotPresent or Always, not ${pullPolicy}`);
  }
  return {
    image: { repository: match[1] as string, tag: match[2] as string, pullPolicy },
    chart: { ref: path.join(REPO, 'helm', 'piko'), plainHttp: false },
    registry: undefined,
    kubectl: (args, input) => tool(path.join(bin, 'kubectl'), args, { env, input }),
    helm: (args) => tool(path.join(bin, 'helm'), args, { env }),
    spawnKubectl: (args) => spawn(path.join(bin, 'kubectl'), [...args], { env, stdio: 'pipe' }),
    local: undefined,
    stop: () => Promise.resolve(fs.rmSync(home, { recursive: true, force: true })),
  };
}

/** kubectl and helm from PATH when both are there, else the ones the control-plane build makes. */
async function clientBinDir(): Promise<string> {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && ['kubectl', 'helm'].every((b) => fs.existsSync(path.join(dir, b)))) return dir;
  }
  return controlPlaneBinDir();
}

function tool(
  file: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv | undefined; input?: string | undefined; timeoutMs?: number },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      { timeout: opts.timeoutMs ?? 180_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${path.basename(file)} ${args.join(' ')}: ${stderr || err.message}`, { cause: err })) : resolve(stdout),
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
