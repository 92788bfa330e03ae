/**
 * A real single-node Kubernetes cluster on this machine, assembled the way kind and k3s assemble
 * one, from parts the project's scripts build: the control plane of control-plane.ts, plus
 * kube-scheduler, and in a network namespace of the node's own, containerd with the runc shim,
 * the CNI bridge, kubelet and kube-proxy. Pods and Services live in RFC 2544's 198.18.0.0/15,
 * meant for exactly this; nothing routes out of the machine.
 *
 *   host netns                       node netns (piko-node-<id>)
 *   apiserver 198.18.255.1  ──veth──  198.18.255.2  kubelet, kube-proxy, containerd
 *   routes 198.18.0.0/24, 198.19/16                 bridge pikobr0 198.18.0.1/24 ── pods
 *
 * The node netns holds every iptables rule, bridge and pod network: deleting it removes them.
 * Only `nsenter --net` is used to enter it, never `ip netns exec`, which would remount /sys and
 * hide the cgroup hierarchies from kubelet and runc. stop() kills every process the node made
 * (pods included, through their cgroups), unmounts what containerd and kubelet mounted, removes
 * the cgroups, the netns and the temp dir, and restores the kernel settings kubelet changes, so
 * a second start on the same machine works.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freeLoopbackPorts } from '../helpers/go-piko';
import { controlPlaneBinDir, DEFAULT_CONTROLLERS, startControlPlane, terminate, type ControlPlane } from './control-plane';

const execFileAsync = promisify(execFile);
const NODE_BUILD_SCRIPT = path.resolve(__dirname, 'build-node.sh');
const IMAGE_BUILD_SCRIPT = path.resolve(__dirname, 'build-images.sh');

export const NODE_NAME = 'piko-node';
export const HOST_IP = '198.18.255.1';
export const NODE_IP = '198.18.255.2';
export const POD_CIDR = '198.18.0.0/24';
export const SERVICE_RANGE = '198.19.0.0/16';
export const CLUSTER_DNS = '198.19.0.10';
const BRIDGE = 'pikobr0';
const COREDNS_IMAGE = 'piko-k8s.test/coredns:v1.14.7';
const READY_TIMEOUT_MS = 120_000;
const BUILD_TIMEOUT_MS = 20 * 60 * 1000;

// What kubelet sets at start (its protectKernelDefaults list); put back at stop.
const KERNEL_SETTINGS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
];

export type NodeComponent = 'kube-scheduler' | 'containerd' | 'kubelet' | 'kube-proxy';

export interface TestNode {
  readonly cp: ControlPlane;
  readonly dir: string;
  /** kubectl with the admin kubeconfig; rejects with its stderr on a non-zero exit. */
  kubectl(args: readonly string[], input?: string): Promise<string>;
  /** helm with the admin kubeconfig and a home of the node's own; rejects as kubectl does. */
  helm(args: readonly string[]): Promise<string>;
  /** kubectl as a child process with piped stdio, for a command that runs until its stdin ends. */
  spawnKubectl(args: readonly string[]): ChildProcess;
  /** Imports an OCI archive into containerd's k8s.io namespace as `<baseName>:<tag>`. */
  importImage(archive: string, baseName: string): Promise<void>;
  /**
   * Lets containerd pull images named `<name>/...` over plain HTTP from `endpoint` (host:port as
   * the node's network namespace reaches it), read at each pull.
   */
  trustRegistry(name: string, endpoint: string): void;
  logs(component: NodeComponent): string;
  stop(): Promise<void>;
}

let nodeBinDir: Promise<string> | undefined;
let imageDir: Promise<string> | undefined;

function buildOnce(script: string): Promise<string> {
  return execFileAsync('bash', [script], { timeout: BUILD_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }).then(
    ({ stdout }) => stdout.trim().split('\n').pop() as string,
  );
}

/** The node's images as OCI archives (build-images.sh): `pause.tar`, `coredns.tar`. */
export function nodeImageDir(): Promise<string> {
  imageDir ??= buildOnce(IMAGE_BUILD_SCRIPT);
  return imageDir;
}

async function run(cmd: string, args: readonly string[]): Promise<string> {
  try {
    return (await execFileAsync(cmd, [...args], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

// One node at a time on a machine: the addresses above are fixed, and jest runs test files in
// parallel processes. A directory is created atomically; it names its holder's pid, so the lock
// of a process that died is taken over.
const LOCK_DIR = path.join(os.tmpdir(), 'piko-node.lock');
const LOCK_WAIT_MS = 60 * 60 * 1000;

/** Waits for the machine's node slot; resolves with its release. */
async function lockNode(): Promise<() => void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      fs.writeFileSync(path.join(LOCK_DIR, 'pid'), String(process.pid));
      return () => fs.rmSync(LOCK_DIR, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(fs.readFileSync(path.join(LOCK_DIR, 'pid'), { encoding: 'utf8', flag: 'a+' }) || NaN);
    let alive = Number.isInteger(holder);
    try {
      if (alive) process.kill(holder, 0);
    } catch {
      alive = false;
    }
    if (!alive && Date.now() - fs.statSync(LOCK_DIR).mtimeMs > 2_000) fs.rmSync(LOCK_DIR, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`another test node held ${LOCK_DIR} for ${LOCK_WAIT_MS / 60_000} min`);
    await delay(500);
  }
}

export async function startNode(): Promise<TestNode> {
  if (process.env['PIKO_TEST_KUBECONFIG']) throw new Error('the test node runs only with the local control plane');
  const [kubeBin, nodeBin] = await Promise.all([controlPlaneBinDir(), (nodeBinDir ??= buildOnce(NODE_BUILD_SCRIPT))]);
  const unlock = await lockNode();
  const id = randomBytes(3).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-node-'));
  const node = new LocalNode(id, dir, kubeBin, nodeBin, unlock);
  try {
    await node.start();
    return node;
  } catch (err) {
    await node.stop();
    throw err;
  }
}

class LocalNode implements TestNode {
  cp!: ControlPlane;
  private readonly netns: string;
  private readonly vethHost: string;
  private readonly vethNode: string;
  private readonly cgroupRoot: string;
  private readonly processes = new Map<NodeComponent, ChildProcess>();
  private readonly kernelBefore = new Map<string, string>();
  private stopped = false;

  constructor(
    id: string,
    readonly dir: string,
    private readonly kubeBin: string,
    private readonly nodeBin: string,
    private readonly unlock: () => void,
  ) {
    this.netns = `piko-node-${id}`;
    this.vethHost = `pkh${id}`;
    this.vethNode = `pkn${id}`;
    this.cgroupRoot = `/piko-node-${id}`;
  }

  private path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  async start(): Promise<void> {
    for (const setting of KERNEL_SETTINGS) {
      this.kernelBefore.set(setting, fs.readFileSync(`/proc/sys/${setting}`, 'utf8').trim());
    }
    await this.network();
    this.cp = await startControlPlane({
      withControllerManager: true,
      // node-lifecycle removes the not-ready taint kubelet registers with, and taints a node that stops reporting.
      controllers: [...DEFAULT_CONTROLLERS, 'node-lifecycle-controller'],
      apiserverAddress: HOST_IP,
      serviceClusterIpRange: SERVICE_RANGE,
      dataDir: this.path('control-plane'),
    });
    await this.startScheduler();
    await this.startContainerd();
    const images = await nodeImageDir();
    await this.importImage(path.join(images, 'pause.tar'), 'registry.k8s.io/pause');
    await this.importImage(path.join(images, 'coredns.tar'), COREDNS_IMAGE.split(':')[0] as string);
    await this.startKubelet();
    await this.startKubeProxy();
    await this.kubectl(['wait', '--for=condition=Ready', `node/${NODE_NAME}`, `--timeout=${READY_TIMEOUT_MS / 1000}s`]);
    await this.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: coreDnsObjects() }));
    await this.kubectl(['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', `--timeout=${READY_TIMEOUT_MS / 1000}s`]);
  }

  private async network(): Promise<void> {
    await run('ip', ['netns', 'add', this.netns]);
    await run('ip', ['link', 'add', this.vethHost, 'type', 'veth', 'peer', 'name', this.vethNode]);
    await run('ip', ['link', 'set', this.vethNode, 'netns', this.netns]);
    await run('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', this.vethHost]);
    await run('ip', ['link', 'set', this.vethHost, 'up']);
    await this.inNetns('ip', ['addr', 'add', `${NODE_IP}/30`, 'dev', this.vethNode]);
    await this.inNetns('ip', ['link', 'set', this.vethNode, 'up']);
    await this.inNetns('ip', ['link', 'set', 'lo', 'up']);
    // Forwarding and bridge netfilter are per network namespace: set in the node's only.
    await this.inNetns('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.bridge.bridge-nf-call-iptables=1']);
    // Traffic the node itself sends to a ClusterIP needs a route before kube-proxy's OUTPUT
    // rules rewrite it; any route will do, and this one never carries a packet.
    await this.inNetns('ip', ['route', 'add', SERVICE_RANGE, 'via', HOST_IP, 'dev', this.vethNode]);
    // The host reaches pods and ClusterIPs through the node, as a cluster's clients would.
    await run('ip', ['route', 'add', POD_CIDR, 'via', NODE_IP, 'dev', this.vethHost]);
    await run('ip', ['route', 'add', SERVICE_RANGE, 'via', NODE_IP, 'dev', this.vethHost]);
  }

  private identity(user: string, groups: readonly string[]): Promise<string> {
    if (this.cp.kubeconfigForUser === undefined) throw new Error('the node needs a local control plane to issue its certificates');
    return this.cp.kubeconfigForUser(user, groups);
  }

  private inNetns(cmd: string, args: readonly string[]): Promise<string> {
    return run('nsenter', [`--net=/var/run/netns/${this.netns}`, cmd, ...args]);
  }

  kubectl(args: readonly string[], input?: string): Promise<string> {
    return this.tool('kubectl', args, input);
  }

  helm(args: readonly string[]): Promise<string> {
    return this.tool('helm', args);
  }

  spawnKubectl(args: readonly string[]): ChildProcess {
    return spawn(path.join(this.kubeBin, 'kubectl'), [...args], { env: this.toolEnv(), stdio: 'pipe' });
  }

  private toolEnv(): NodeJS.ProcessEnv {
    const home = this.path('home');
    fs.mkdirSync(home, { recursive: true });
    // A home of the node's own: no repository, plugin or cache of the user's comes in.
    return { PATH: process.env['PATH'] ?? '', HOME: home, KUBECONFIG: this.cp.kubeconfigPath, HELM_CACHE_HOME: path.join(home, 'helm') };
  }

  private tool(name: 'kubectl' | 'helm', args: readonly string[], input?: string): Promise<string> {
    const env = this.toolEnv();
    return new Promise((resolve, reject) => {
      const child = execFile(
        path.join(this.kubeBin, name),
        [...args],
        { timeout: 180_000, maxBuffer: 16 * 1024 * 1024, env },
        (err, stdout, stderr) => (err ? reject(new Error(`${name} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)),
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  async importImage(archive: string, baseName: string): Promise<void> {
    await run(path.join(this.nodeBin, 'ctr'), [
      `--address=${this.path('containerd.sock')}`,
      '--namespace=k8s.io',
      'images',
      'import',
      `--base-name=${baseName}`,
      archive,
    ]);
  }

  trustRegistry(name: string, endpoint: string): void {
    const dir = this.path('certs.d', name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'hosts.toml'),
      [`server = "http://${endpoint}"`, `[host."http://${endpoint}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
    );
  }

  logs(component: NodeComponent): string {
    try {
      return fs.readFileSync(this.path('logs', `${component}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  private spawn(
    component: NodeComponent,
    cmd: string,
    args: readonly string[],
    inNode: boolean,
    env: NodeJS.ProcessEnv = {},
  ): ChildProcess {
    fs.mkdirSync(this.path('logs'), { recursive: true });
    const fd = fs.openSync(this.path('logs', `${component}.log`), 'a');
    const argv = inNode ? [`--net=/var/run/netns/${this.netns}`, cmd, ...args] : [...args];
    const child = spawn(inNode ? 'nsenter' : cmd, argv, {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, PATH: `${this.nodeBin}:${process.env['PATH'] ?? ''}`, ...env },
    });
    fs.closeSync(fd);
    child.on('error', () => undefined);
    this.processes.set(component, child);
    return child;
  }

  /** Polls `probe` until it holds, failing early with the log if the process exits. */
  private async waitFor(component: NodeComponent, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const child = this.processes.get(component);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child?.exitCode !== null && child?.exitCode !== undefined) {
        throw new Error(`${component} exited with ${child.exitCode}:\n${this.logs(component).slice(-4000)}`);
      }
      if (await probe().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`${component} not ready after ${timeoutMs} ms:\n${this.logs(component).slice(-4000)}`);
      await delay(200);
    }
  }

  private async startScheduler(): Promise<void> {
    const [port] = (await freeLoopbackPorts(1)) as [number];
    // The user the bootstrap RBAC policy binds to system:kube-scheduler.
    const kubeconfig = await this.identity('system:kube-scheduler', []);
    this.spawn(
      'kube-scheduler',
      path.join(this.kubeBin, 'kube-scheduler'),
      [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        '--leader-elect=false',
        '--v=1',
      ],
      false,
    );
    await this.waitFor('kube-scheduler', async () => {
      const res = await fetch(`https://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return res !== undefined || this.logs('kube-scheduler').includes('Serving securely');
    });
  }

  private async startContainerd(): Promise<void> {
    const root = this.path('containerd', 'root');
    const state = this.path('containerd', 'state');
    fs.mkdirSync(this.path('cni', 'conf'), { recursive: true });
    fs.writeFileSync(
      this.path('cni', 'conf', '10-piko.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'piko',
        plugins: [
          {
            type: 'bridge',
            bridge: BRIDGE,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              dataDir: this.path('cni', 'ipam'),
              ranges: [[{ subnet: POD_CIDR, gateway: '198.18.0.1' }]],
              routes: [{ dst: '0.0.0.0/0' }],
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    const config = [
      'version = 3',
      `root = '${root}'`,
      `state = '${state}'`,
      "[plugins.'io.containerd.server.v1.grpc']",
      `  address = '${this.path('containerd.sock')}'`,
      "[plugins.'io.containerd.server.v1.ttrpc']",
      `  address = '${this.path('containerd.sock.ttrpc')}'`,
      "[plugins.'io.containerd.internal.v1.opt']",
      `  path = '${this.path('containerd', 'opt')}'`,
      "[plugins.'io.containerd.nri.v1.nri']",
      '  disable = true',
      "[plugins.'io.containerd.cri.v1.images']",
      "  snapshotter = 'overlayfs'",
      // Images are imported, or pulled from a registry the test runs and names (trustRegistry).
      "[plugins.'io.containerd.cri.v1.images'.registry]",
      `  config_path = '${this.path('certs.d')}'`,
      "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
      "  sandbox = 'registry.k8s.io/pause:3.10.2'",
      "[plugins.'io.containerd.cri.v1.runtime']",
      '  netns_mounts_under_state_dir = true',
      // This sandbox refuses to lower oom_score_adj below our own (kubelet asks -998 for
      // sandboxes): keep containers' scores at or above containerd's, as rootless set-ups do.
      '  restrict_oom_score_adj = true',
      "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]",
      `  BinaryName = '${process.env['PIKO_NODE_RUNC'] ?? path.join(this.nodeBin, 'runc')}'`,
      '  SystemdCgroup = false',
      "[plugins.'io.containerd.cri.v1.runtime'.cni]",
      `  bin_dirs = ['${this.nodeBin}']`,
      `  conf_dir = '${this.path('cni', 'conf')}'`,
      "[plugins.'io.containerd.grpc.v1.cri']",
      `  stream_server_address = '${NODE_IP}'`,
    ].join('\n');
    fs.writeFileSync(this.path('containerd.toml'), `${config}\n`);
    this.spawn('containerd', path.join(this.nodeBin, 'containerd'), [`--config=${this.path('containerd.toml')}`], true);
    await this.waitFor('containerd', async () => {
      await run(path.join(this.nodeBin, 'ctr'), [`--address=${this.path('containerd.sock')}`, 'version']);
      return true;
    });
  }

  private async startKubelet(): Promise<void> {
    fs.writeFileSync(this.path('resolv.conf'), '');
    // kubelet expects its cgroup root to exist in every hierarchy. A new v1 cpuset cgroup starts
    // with no CPUs and no memory nodes, and a process moved into one fails: copy the parent's.
    for (const hierarchy of cgroupHierarchies()) {
      const dir = path.join(hierarchy, this.cgroupRoot);
      fs.mkdirSync(dir, { recursive: true });
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if (fs.existsSync(path.join(dir, file))) fs.writeFileSync(path.join(dir, file), fs.readFileSync(path.join(hierarchy, file)));
      }
    }
    const config = {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // This machine mounts cgroup v1 only; kubelet 1.35+ refuses v1 unless told otherwise.
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      // Everything the node runs sits under one cgroup of its own, which stop() empties and removes.
      cgroupRoot: this.cgroupRoot,
      containerRuntimeEndpoint: `unix://${this.path('containerd.sock')}`,
      address: NODE_IP,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10248,
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: this.cp.caPath } },
      authorization: { mode: 'Webhook' },
      clusterDomain: 'cluster.local',
      clusterDNS: [CLUSTER_DNS],
      // Not the host's: no pod may learn of resolvers outside the machine.
      resolvConf: this.path('resolv.conf'),
      failSwapOn: false,
      serializeImagePulls: false,
      // A shared test disk is often fuller than kubelet's defaults allow.
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      localStorageCapacityIsolation: false,
      staticPodPath: '',
    };
    fs.writeFileSync(this.path('kubelet.yaml'), JSON.stringify(config));
    this.spawn(
      'kubelet',
      path.join(this.kubeBin, 'kubelet'),
      [
        `--config=${this.path('kubelet.yaml')}`,
        // A node's own identity, as kubeadm issues it: the Node authorizer and the NodeRestriction
        // admission plugin then limit it to its own node and the pods bound to it.
        `--kubeconfig=${await this.identity(`system:node:${NODE_NAME}`, ['system:nodes'])}`,
        `--root-dir=${this.path('kubelet')}`,
        `--cert-dir=${this.path('kubelet', 'pki')}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        '--v=1',
      ],
      true,
    );
    await this.waitFor(
      'kubelet',
      async () => {
        const out = await this.kubectl(['get', 'node', NODE_NAME, '-o', 'name']);
        return out.trim() === `node/${NODE_NAME}`;
      },
      READY_TIMEOUT_MS,
    );
  }

  private async startKubeProxy(): Promise<void> {
    const config = {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      // The user the bootstrap RBAC policy binds to system:node-proxier.
      clientConnection: { kubeconfig: await this.identity('system:kube-proxy', []) },
      mode: 'iptables',
      clusterCIDR: POD_CIDR,
      hostnameOverride: NODE_NAME,
      bindAddress: NODE_IP,
      healthzBindAddress: '127.0.0.1:10256',
      metricsBindAddress: '127.0.0.1:10249',
      // 0 leaves the host's conntrack settings as they are.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      // Pods share one bridge: without masquerading, a backend's reply to a pod on the same
      // bridge would skip the host and its DNAT.
      iptables: { masqueradeAll: true },
    };
    fs.writeFileSync(this.path('kube-proxy.yaml'), JSON.stringify(config));
    this.spawn('kube-proxy', path.join(this.kubeBin, 'kube-proxy'), [`--config=${this.path('kube-proxy.yaml')}`, '--v=1'], true);
    await this.waitFor('kube-proxy', async () => {
      await this.inNetns('bash', ['-c', 'exec 3<>/dev/tcp/127.0.0.1/10256']);
      return true;
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await terminate(this.processes.get('kubelet'));
    await this.killPods();
    for (const component of ['kube-proxy', 'containerd', 'kube-scheduler'] as const) await terminate(this.processes.get(component));
    await this.killShims();
    await this.unmountAll();
    this.removeCgroups();
    await run('ip', ['netns', 'del', this.netns]).catch(() => undefined);
    await run('ip', ['link', 'del', this.vethHost]).catch(() => undefined);
    for (const [setting, value] of this.kernelBefore) {
      try {
        fs.writeFileSync(`/proc/sys/${setting}`, value);
      } catch {
        // Read-only on this kernel: kubelet could not have changed it either.
      }
    }
    await this.cp?.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.unlock();
  }

  /** Every process in the node's cgroups (containers and sandboxes), killed. */
  private async killPods(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const pids = new Set<number>();
      for (const hierarchy of cgroupHierarchies()) {
        for (const procs of walk(path.join(hierarchy, this.cgroupRoot), 'cgroup.procs')) {
          for (const line of fs.readFileSync(procs, 'utf8').split('\n')) if (line) pids.add(Number(line));
        }
      }
      if (pids.size === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
      await delay(200);
    }
  }

  /** The runc shims: daemonised, so no longer children of containerd. */
  private async killShims(): Promise<void> {
    const address = this.path('containerd.sock');
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (cmdline.includes('containerd-shim') && cmdline.includes(address)) process.kill(Number(entry), 'SIGKILL');
      } catch {
        // Exited while we looked.
      }
    }
  }

  /** Whatever containerd, runc and kubelet mounted under the node's dir, deepest first. */
  private async unmountAll(): Promise<void> {
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4])
      .filter(
        (mountPoint): mountPoint is string =>
          mountPoint !== undefined && (mountPoint === this.dir || mountPoint.startsWith(`${this.dir}/`)),
      )
      .sort((a, b) => b.length - a.length);
    for (const mountPoint of mounts) await run('umount', ['-l', mountPoint]).catch(() => undefined);
  }

  private removeCgroups(): void {
    for (const hierarchy of cgroupHierarchies()) {
      const root = path.join(hierarchy, this.cgroupRoot);
      const dirs = [...walk(root, 'cgroup.procs')].map((p) => path.dirname(p)).sort((x, y) => y.length - x.length);
      for (const d of dirs) {
        try {
          fs.rmdirSync(d);
        } catch {
          // Not empty yet or gone: a process in it will be reported by the next start's check.
        }
      }
    }
  }
}

/** The cgroup v1 hierarchies (one per controller) mounted under /sys/fs/cgroup. */
function cgroupHierarchies(): string[] {
  const base = '/sys/fs/cgroup';
  return fs
    .readdirSync(base)
    .map((name) => path.join(base, name))
    .filter((p) => fs.existsSync(path.join(p, 'cgroup.procs')));
}

/** Paths of `file` in `dir` and every directory below it, deepest first. */
function* walk(dir: string, file: string): Generator<string> {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) yield* walk(path.join(dir, entry.name), file);
  }
  yield path.join(dir, file);
}

/**
 * CoreDNS for cluster.local, as kubeadm installs it, minus forwarding: nothing here may resolve
 * names outside the cluster. It listens on 1053 (its user may not bind 53); the Service maps 53.
 */
function coreDnsObjects(): object[] {
  const ns = 'kube-system';
  const labels = { 'k8s-app': 'kube-dns' };
  const corefile = [
    '.:1053 {',
    '    errors',
    '    health :8080',
    '    ready :8181',
    '    kubernetes cluster.local in-addr.arpa ip6.arpa {',
    '        pods insecure',
    '        fallthrough in-addr.arpa ip6.arpa',
    '    }',
    '    cache 30',
    '    loop',
    '}',
  ].join('\n');
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: ns }],
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'coredns', namespace: ns }, data: { Corefile: corefile } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'coredns', namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'coredns',
            dnsPolicy: 'Default',
            containers: [
              {
                name: 'coredns',
                image: COREDNS_IMAGE,
                imagePullPolicy: 'Never',
                args: ['-conf', '/etc/coredns/Corefile'],
                ports: [
                  { name: 'dns', containerPort: 1053, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: 1053, protocol: 'TCP' },
                ],
                readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 2 },
                livenessProbe: { httpGet: { path: '/health', port: 8080 }, periodSeconds: 10 },
                securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true },
                volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: ns, labels },
      spec: {
        selector: labels,
        clusterIP: CLUSTER_DNS,
        ports: [
          { name: 'dns', port: 53, targetPort: 1053, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: 1053, protocol: 'TCP' },
        ],
      },
    },
  ];
}
