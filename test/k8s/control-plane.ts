import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { freeLoopbackPorts } from '../helpers/go-piko';

/**
 * A real Kubernetes control plane for tests and scripts: etcd, kube-apiserver and optionally
 * kube-controller-manager, built from source by build-control-plane.sh and run as plain
 * processes on 127.0.0.1 with their own PKI. There is no kubelet, scheduler or cloud provider:
 * objects are stored, watched, authorised by RBAC and garbage-collected as in a real cluster, but
 * pods never run.
 *
 * With PIKO_TEST_KUBECONFIG set, startControlPlane() instead returns a handle on that existing
 * cluster, whose processes are not ours: canRestart is false there and the restart methods throw
 * a ControlPlaneError with code CONTROL_PLANE_RESTART_UNSUPPORTED, so outage tests branch on
 * canRestart and assert what they can.
 */

const BUILD_SCRIPT = path.resolve(__dirname, 'build-control-plane.sh');
// A cold build compiles Kubernetes, etcd and Helm: 10-15 min on two cores, more when other work
// shares them. A warm one only runs each binary's --version.
const BUILD_TIMEOUT_MS = 60 * 60 * 1000;
const READY_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 100;
const STOP_GRACE_MS = 5_000;
const REQUEST_TIMEOUT_MS = 5_000;
const TOOL_TIMEOUT_MS = 30_000;
const CERT_DAYS = 365;
const SA_TOKEN_SECONDS = 3600;
// Without a node, allocation only: the apiserver hands out ClusterIPs from it, and nothing here
// ever sends a packet to one (no kube-proxy, and the kubernetes Service has no endpoints, see
// below). The node (node.ts) passes a range of RFC 2544's 198.18.0.0/15 instead.
const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';
const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/**
 * The controllers run by default (canonical names from kube-controller-manager --help): what the
 * operator's objects need without a kubelet, and no node, volume or cloud controllers.
 */
export const DEFAULT_CONTROLLERS: readonly string[] = [
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'deployment-controller',
  'replicaset-controller',
  'statefulset-controller',
  'disruption-controller',
  'endpointslice-controller',
];

export type ControlPlaneComponent = 'etcd' | 'kube-apiserver' | 'kube-controller-manager';

export type ControlPlaneErrorCode =
  | 'CONTROL_PLANE_BUILD_FAILED'
  | 'CONTROL_PLANE_PKI_FAILED'
  | 'CONTROL_PLANE_EXITED'
  | 'CONTROL_PLANE_NOT_READY'
  | 'CONTROL_PLANE_RESTART_UNSUPPORTED'
  | 'CONTROL_PLANE_BAD_KUBECONFIG'
  | 'CONTROL_PLANE_TOKEN_FAILED'
  | 'CONTROL_PLANE_STOPPED';

export class ControlPlaneError extends Error {
  readonly code: ControlPlaneErrorCode;

  constructor(code: ControlPlaneErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ControlPlaneError';
    this.code = code;
  }
}

export interface ControlPlaneOptions {
  /**
   * Where the PKI, etcd data, kubeconfigs and logs live. Default: a new temp dir, removed by
   * stop(). A given directory is kept, and its PKI and etcd data are reused on the next start.
   */
  dataDir?: string;
  /** Also run kube-controller-manager (garbage collection, namespace deletion, service accounts). */
  withControllerManager?: boolean;
  /** The controllers kube-controller-manager runs; default DEFAULT_CONTROLLERS. */
  controllers?: readonly string[];
  /**
   * Where the apiserver listens and what it advertises as the kubernetes Service's endpoint;
   * default 127.0.0.1. The node passes an address its pods can reach.
   */
  apiserverAddress?: string;
  /** ClusterIP range, a /16 or /24 ending in .0; default 10.0.0.0/24. */
  serviceClusterIpRange?: string;
}

export interface ControlPlane {
  /** An admin (system:masters) kubeconfig with the credentials embedded. */
  readonly kubeconfigPath: string;
  /** The apiserver URL, https://127.0.0.1:<port> for a started control plane. */
  readonly server: string;
  /** The PEM file of the CA the apiserver's serving certificate chains to. */
  readonly caPath: string;
  /** Where etcd, kube-apiserver, kube-controller-manager, kubectl and helm are. */
  readonly binDir: string;
  /** False for an existing cluster (PIKO_TEST_KUBECONFIG): stopApiServer/startApiServer throw. */
  readonly canRestart: boolean;
  /** Stops the apiserver (SIGTERM, SIGKILL after 5 s); etcd and the data stay. */
  stopApiServer(): Promise<void>;
  /** Starts the apiserver again on the same port and data; resolves once /readyz is ok. */
  startApiServer(): Promise<void>;
  /**
   * Writes a kubeconfig that authenticates as that ServiceAccount (which must exist) with a
   * token from the TokenRequest API, valid for an hour, so tests exercise real RBAC. With
   * `pod`, the token is bound to that Pod as the kubelet's projected tokens are, and the
   * apiserver names the pod in each request's user info.
   */
  kubeconfigForServiceAccount(namespace: string, name: string, pod?: BoundPod): Promise<string>;
  /**
   * A kubeconfig with a client certificate from the cluster CA for `user` in `groups`, as
   * kubeadm gives the kubelet (system:node:<name>, system:nodes) and kube-proxy. Local only.
   */
  kubeconfigForUser?(user: string, groups: readonly string[]): Promise<string>;
  /** Stops every process (SIGTERM, SIGKILL after 5 s) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** The output of one component so far (empty for an existing cluster). */
  logs(name: ControlPlaneComponent): string;
}

/** The Pod a ServiceAccount token is bound to. */
export interface BoundPod {
  name: string;
  uid: string;
}

let binDirPromise: Promise<string> | undefined;

/**
 * Builds (or finds in the cache) the control-plane binaries once per process and resolves to
 * their directory. Asynchronous so a cold build does not freeze a jest worker's event loop.
 */
export function controlPlaneBinDir(): Promise<string> {
  binDirPromise ??= new Promise<string>((resolve, reject) => {
    // stderr is inherited so a cold build's progress is visible in the test output.
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGTERM'), BUILD_TIMEOUT_MS);
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new ControlPlaneError('CONTROL_PLANE_BUILD_FAILED', `cannot run ${BUILD_SCRIPT}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = stdout.trim().split('\n');
      const dir = lines[lines.length - 1] ?? '';
      if (code === 0 && dir !== '' && fs.existsSync(path.join(dir, 'kube-apiserver'))) {
        resolve(dir);
        return;
      }
      reject(new ControlPlaneError('CONTROL_PLANE_BUILD_FAILED', `${BUILD_SCRIPT} failed (exit ${code ?? signal}); its log is above`));
    });
  });
  // A failed build is not cached, so a later call can try again.
  binDirPromise.catch(() => {
    binDirPromise = undefined;
  });
  return binDirPromise;
}

/** Starts a control plane on 127.0.0.1, or wraps the cluster named by PIKO_TEST_KUBECONFIG. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = await controlPlaneBinDir();
  const external = process.env['PIKO_TEST_KUBECONFIG'];
  if (external !== undefined && external !== '') {
    return openExistingCluster(external, binDir);
  }
  return LocalControlPlane.start(binDir, opts);
}

// Every process started here, so the 'exit' hook can kill what a test forgot to stop (or what a
// failing beforeAll never handed back). Only SIGKILL is possible there: 'exit' handlers are sync.
const liveProcesses = new Set<ChildProcess>();
let exitHookInstalled = false;

/** util-linux's setpriv, on every Debian; without it the exit hook below is the only guard. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const p of liveProcesses) {
        p.kill('SIGKILL');
      }
    });
  }
  liveProcesses.add(child);
  child.once('exit', () => liveProcesses.delete(child));
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL after the grace; resolves once the process has exited. */
export async function terminate(child: ChildProcess | undefined): Promise<void> {
  // No pid: spawn itself failed (the binary is missing), so there is nothing to stop.
  if (child === undefined || child.pid === undefined || hasExited(child)) {
    return;
  }
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

const execFileAsync = promisify(execFile);

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd, timeout: TOOL_TIMEOUT_MS });
  } catch (err) {
    throw new ControlPlaneError('CONTROL_PLANE_PKI_FAILED', `openssl ${args[0] ?? ''} failed`, { cause: err });
  }
}

interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  kcmCert: string;
  kcmKey: string;
  frontProxyCaCert: string;
  frontProxyClientCert: string;
  frontProxyClientKey: string;
  saKey: string;
  saPub: string;
}

function pkiPaths(dir: string): Pki {
  const p = (name: string): string => path.join(dir, name);
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    servingCert: p('apiserver.crt'),
    servingKey: p('apiserver.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    kcmCert: p('controller-manager.crt'),
    kcmKey: p('controller-manager.key'),
    frontProxyCaCert: p('front-proxy-ca.crt'),
    frontProxyClientCert: p('front-proxy-client.crt'),
    frontProxyClientKey: p('front-proxy-client.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
  };
}

/**
 * A CA, the apiserver's serving certificate, client certificates for the admin and the
 * controller manager (authenticated by the apiserver's --client-ca-file, as on kubeadm
 * clusters), the front-proxy CA and client certificate, and the service-account signing key
 * pair. P-256 keys: quick to make, and accepted by every component and by Node's TLS.
 */
async function createPki(dir: string, extraIps: readonly string[] = []): Promise<Pki> {
  const pki = pkiPaths(dir);
  if (fs.existsSync(pki.saPub)) {
    return pki;
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const createCa = (name: string, subject: string): Promise<void> =>
    openssl(dir, [
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      path.join(dir, `${name}.key`),
      '-out',
      path.join(dir, `${name}.crt`),
      '-days',
      String(CERT_DAYS),
      '-subj',
      subject,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  await createCa('ca', '/CN=piko-test-ca');
  // A CA of its own, as kubeadm does: a certificate from it lets its holder assert any user in
  // X-Remote-User headers, so the cluster CA's client certificates must not be able to.
  await createCa('front-proxy-ca', '/CN=piko-test-front-proxy-ca');
  const issue = async (name: string, subject: string, extensions: string, ca = 'ca'): Promise<void> => {
    const csr = path.join(dir, `${name}.csr`);
    const ext = path.join(dir, `${name}.ext`);
    fs.writeFileSync(ext, extensions);
    await openssl(dir, ['req', ...ecKey, '-keyout', path.join(dir, `${name}.key`), '-out', csr, '-subj', subject]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      path.join(dir, `${ca}.crt`),
      '-CAkey',
      path.join(dir, `${ca}.key`),
      '-CAcreateserial',
      '-days',
      String(CERT_DAYS),
      '-extfile',
      ext,
      '-out',
      path.join(dir, `${name}.crt`),
    ]);
  };
  const clientExt = 'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
  await issue(
    'apiserver',
    '/CN=kube-apiserver',
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' +
      `subjectAltName=IP:127.0.0.1,${extraIps.map((ip) => `IP:${ip},`).join('')}DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,` +
      'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n',
  );
  await issue('admin', '/O=system:masters/CN=admin', clientExt);
  // The user name the bootstrap RBAC policy binds to system:kube-controller-manager.
  await issue('controller-manager', '/CN=system:kube-controller-manager', clientExt);
  await issue('front-proxy-client', '/CN=front-proxy-client', clientExt, 'front-proxy-ca');
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', pki.saKey]);
  // Written last: its presence marks a complete PKI for a reused dataDir.
  await openssl(dir, ['pkey', '-in', pki.saKey, '-pubout', '-out', pki.saPub]);
  return pki;
}

function b64(file: string): string {
  return fs.readFileSync(file).toString('base64');
}

type KubeUser = { 'client-certificate-data': string; 'client-key-data': string } | { token: string };

function writeKubeconfig(file: string, server: string, caCert: string, userName: string, user: KubeUser): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'piko-test', cluster: { server, 'certificate-authority-data': b64(caCert) } }],
    users: [{ name: userName, user }],
    contexts: [{ name: userName, context: { cluster: 'piko-test', user: userName } }],
    'current-context': userName,
  };
  fs.writeFileSync(file, stringifyYaml(config), { mode: 0o600 });
}

interface HttpResult {
  status: number;
  body: string;
}

function request(url: string, tls: https.RequestOptions): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { ...tls, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

function logTail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

class LocalControlPlane implements ControlPlane {
  readonly canRestart = true;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly caPath: string;
  private readonly processes = new Map<ControlPlaneComponent, ChildProcess>();
  private readonly logDir: string;
  private readonly adminTls: https.RequestOptions;
  private stopped = false;
  private saCount = 0;

  private constructor(
    readonly binDir: string,
    private readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly pki: Pki,
    private readonly ports: { etcdClient: number; etcdPeer: number; apiserver: number; kcm: number },
    private readonly network: { address: string; serviceRange: string },
  ) {
    this.server = `https://${network.address}:${ports.apiserver}`;
    this.caPath = pki.caCert;
    this.kubeconfigPath = path.join(dir, 'admin.kubeconfig');
    this.logDir = path.join(dir, 'logs');
    this.adminTls = {
      ca: fs.readFileSync(pki.caCert),
      cert: fs.readFileSync(pki.adminCert),
      key: fs.readFileSync(pki.adminKey),
    };
  }

  static async start(binDir: string, opts: ControlPlaneOptions): Promise<LocalControlPlane> {
    const ownsDir = opts.dataDir === undefined;
    const dir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'piko-k8s-cp-'));
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    let cp: LocalControlPlane | undefined;
    try {
      const network = {
        address: opts.apiserverAddress ?? '127.0.0.1',
        serviceRange: opts.serviceClusterIpRange ?? SERVICE_CLUSTER_IP_RANGE,
      };
      // In-cluster clients reach the apiserver at the kubernetes Service's ClusterIP, the range's first.
      const serviceIp = network.serviceRange.replace(/\.0\/\d+$/, '.1');
      const pki = await createPki(
        path.join(dir, 'pki'),
        [...new Set([network.address, serviceIp])].filter((ip) => ip !== '127.0.0.1'),
      );
      const [etcdClient, etcdPeer, apiserver, kcm] = (await freeLoopbackPorts(4)) as [number, number, number, number];
      cp = new LocalControlPlane(binDir, dir, ownsDir, pki, { etcdClient, etcdPeer, apiserver, kcm }, network);
      writeKubeconfig(cp.kubeconfigPath, cp.server, pki.caCert, 'admin', {
        'client-certificate-data': b64(pki.adminCert),
        'client-key-data': b64(pki.adminKey),
      });
      await cp.startEtcd();
      await cp.startApiServer();
      if (opts.withControllerManager === true) {
        await cp.startControllerManager(opts.controllers ?? DEFAULT_CONTROLLERS);
      }
      return cp;
    } catch (err) {
      if (cp !== undefined) {
        await cp.stop();
      } else if (ownsDir) {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      throw err;
    }
  }

  logs(name: ControlPlaneComponent): string {
    try {
      return fs.readFileSync(this.logPath(name), 'utf8');
    } catch {
      return '';
    }
  }

  async stopApiServer(): Promise<void> {
    const child = this.processes.get('kube-apiserver');
    this.processes.delete('kube-apiserver');
    await terminate(child);
  }

  async startApiServer(): Promise<void> {
    this.assertRunning();
    if (this.processes.has('kube-apiserver')) {
      return;
    }
    const child = this.spawn('kube-apiserver', [
      `--bind-address=${this.network.address}`,
      `--advertise-address=${this.network.address}`,
      `--secure-port=${this.ports.apiserver}`,
      `--etcd-servers=http://127.0.0.1:${this.ports.etcdClient}`,
      `--cert-dir=${path.join(this.dir, 'apiserver-certs')}`,
      `--tls-cert-file=${this.pki.servingCert}`,
      `--tls-private-key-file=${this.pki.servingKey}`,
      `--client-ca-file=${this.pki.caCert}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${this.pki.saPub}`,
      `--service-account-signing-key-file=${this.pki.saKey}`,
      `--service-cluster-ip-range=${this.network.serviceRange}`,
      // On loopback the reconciler would publish 127.0.0.1 as the kubernetes Service's endpoint,
      // which Endpoints validation rejects, so it would fail and log on every pass; nothing
      // reaches the apiserver through that Service without a node.
      ...(this.network.address === '127.0.0.1' ? ['--endpoint-reconciler-type=none'] : []),
      // Logs, exec and port-forward go to a node's address, never its name: no lookup leaves the machine.
      '--kubelet-preferred-address-types=InternalIP',
      // What the apiserver shows a kubelet (whose x509 authenticator trusts this CA) for logs and exec.
      `--kubelet-client-certificate=${this.pki.adminCert}`,
      `--kubelet-client-key=${this.pki.adminKey}`,
      // The front proxy (aggregation layer) set-up of kubeadm clusters. The apiserver publishes
      // it in kube-system/extension-apiserver-authentication, where the controller manager's
      // delegated authentication looks for it (and logs an error a second while it is missing).
      `--requestheader-client-ca-file=${this.pki.frontProxyCaCert}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${this.pki.frontProxyClientCert}`,
      `--proxy-client-key-file=${this.pki.frontProxyClientKey}`,
      // On SIGTERM the HTTP server otherwise waits up to --request-timeout (60 s) for the
      // controller manager's open watches, and stop() would SIGKILL it after 5 s; with this it
      // answers 429 while draining and closes within 2 s.
      '--shutdown-send-retry-after=true',
      '--v=1',
    ]);
    const probe = async (): Promise<boolean> => {
      const ready = await request(`${this.server}/readyz`, this.adminTls);
      if (ready.status !== 200) {
        return false;
      }
      // /readyz covers the RBAC bootstrap; the default namespace comes from a controller that
      // runs after it.
      const ns = await request(`${this.server}/api/v1/namespaces/default`, this.adminTls);
      return ns.status === 200;
    };
    await this.waitFor('kube-apiserver', child, probe);
  }

  async kubeconfigForUser(user: string, groups: readonly string[]): Promise<string> {
    this.assertRunning();
    const name = `user-${++this.saCount}`;
    const dir = this.pki.dir;
    const subject = [...groups.map((g) => `/O=${g}`), `/CN=${user}`].join('');
    const key = path.join(dir, `${name}.key`);
    const cert = path.join(dir, `${name}.crt`);
    const ext = path.join(dir, `${name}.ext`);
    fs.writeFileSync(ext, 'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    await openssl(dir, [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      `${cert}.csr`,
      '-subj',
      subject,
    ]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${cert}.csr`,
      '-CA',
      this.pki.caCert,
      '-CAkey',
      this.pki.caKey,
      '-CAcreateserial',
      '-days',
      String(CERT_DAYS),
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
    const file = path.join(this.dir, `${name}.kubeconfig`);
    writeKubeconfig(file, this.server, this.pki.caCert, user, { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) });
    return file;
  }

  async kubeconfigForServiceAccount(namespace: string, name: string, pod?: BoundPod): Promise<string> {
    this.assertRunning();
    const token = await requestToken(this.binDir, this.kubeconfigPath, namespace, name, pod);
    const file = path.join(this.dir, `sa-${++this.saCount}-${namespace}-${name}.kubeconfig`);
    writeKubeconfig(file, this.server, this.pki.caCert, `system:serviceaccount:${namespace}:${name}`, { token });
    return file;
  }

  async stop(): Promise<void> {
    if (this.stopped) {
      return;
    }
    this.stopped = true;
    // Clients before servers: the controller manager first, so it does not spend the apiserver's
    // shutdown retrying; etcd last, so the apiserver can finish its in-flight writes.
    for (const name of ['kube-controller-manager', 'kube-apiserver', 'etcd'] as const) {
      const child = this.processes.get(name);
      this.processes.delete(name);
      await terminate(child);
    }
    if (this.ownsDir) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private async startEtcd(): Promise<void> {
    const peer = `http://127.0.0.1:${this.ports.etcdPeer}`;
    const client = `http://127.0.0.1:${this.ports.etcdClient}`;
    const child = this.spawn('etcd', [
      '--name=piko-test',
      `--data-dir=${path.join(this.dir, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=piko-test=${peer}`,
      // Test data is thrown away: skipping fsync keeps a shared disk from slowing every write.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await this.waitFor('etcd', child, async () => {
      const res = await request(`${client}/health`, {});
      return res.status === 200 && res.body.includes('"health":"true"');
    });
  }

  private async startControllerManager(controllers: readonly string[]): Promise<void> {
    const kubeconfig = path.join(this.dir, 'controller-manager.kubeconfig');
    writeKubeconfig(kubeconfig, this.server, this.pki.caCert, 'system:kube-controller-manager', {
      'client-certificate-data': b64(this.pki.kcmCert),
      'client-key-data': b64(this.pki.kcmKey),
    });
    const child = this.spawn('kube-controller-manager', [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${this.ports.kcm}`,
      `--cert-dir=${path.join(this.dir, 'controller-manager-certs')}`,
      `--controllers=${controllers.join(',')}`,
      `--service-account-private-key-file=${this.pki.saKey}`,
      `--root-ca-file=${this.pki.caCert}`,
      '--use-service-account-credentials=true',
      // One instance: waiting to acquire a lease would only slow the start.
      '--leader-elect=false',
      '--v=1',
    ]);
    // Healthy, and the serviceaccount controller has made the default namespace's account: the
    // controllers are running against this apiserver.
    const waitForAccount = controllers.includes('serviceaccount-controller');
    await this.waitFor('kube-controller-manager', child, async () => {
      const health = await request(`https://127.0.0.1:${this.ports.kcm}/healthz`, { rejectUnauthorized: false });
      if (health.status !== 200) {
        return false;
      }
      if (!waitForAccount) {
        return true;
      }
      const sa = await request(`${this.server}/api/v1/namespaces/default/serviceaccounts/default`, this.adminTls);
      return sa.status === 200;
    });
  }

  private logPath(name: ControlPlaneComponent): string {
    return path.join(this.logDir, `${name}.log`);
  }

  private spawn(name: ControlPlaneComponent, args: string[]): ChildProcess {
    const fd = fs.openSync(this.logPath(name), 'a');
    try {
      fs.writeSync(fd, `--- ${new Date().toISOString()} ${name} ${args.join(' ')}\n`);
      const bin = path.join(this.binDir, name);
      // Dies with this process even when it cannot run its exit hook (a V8 abort on OOM, a SIGKILL
      // of the jest worker): setpriv sets the parent-death signal, then execs the binary in place.
      const child =
        SETPRIV === undefined
          ? spawn(bin, args, { stdio: ['ignore', fd, fd] })
          : spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args], { stdio: ['ignore', fd, fd] });
      track(child);
      this.processes.set(name, child);
      // A spawn failure (binary missing) leaves child.pid undefined, which waitFor reports with
      // the log; without a listener the 'error' event would crash the process instead.
      child.on('error', () => undefined);
      return child;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Polls `probe` every 100 ms for up to 60 s: these are other processes, whose readiness is
   * only visible through their HTTP endpoints. Fails at once if the process exits.
   */
  private async waitFor(name: ControlPlaneComponent, child: ChildProcess, probe: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError: unknown;
    for (;;) {
      if (hasExited(child) || child.pid === undefined) {
        this.processes.delete(name);
        throw new ControlPlaneError(
          'CONTROL_PLANE_EXITED',
          `${name} exited (${child.exitCode ?? child.signalCode ?? 'not started'}) before it was ready; ` +
            `last lines of ${this.logPath(name)}:\n${logTail(this.logPath(name))}`,
        );
      }
      try {
        if (await probe()) {
          return;
        }
      } catch (err) {
        lastError = err;
      }
      if (Date.now() >= deadline) {
        throw new ControlPlaneError(
          'CONTROL_PLANE_NOT_READY',
          `${name} not ready within ${READY_TIMEOUT_MS} ms; last lines of ${this.logPath(name)}:\n` + logTail(this.logPath(name)),
          { cause: lastError },
        );
      }
      await delay(POLL_INTERVAL_MS);
    }
  }

  private assertRunning(): void {
    if (this.stopped) {
      throw new ControlPlaneError('CONTROL_PLANE_STOPPED', 'the control plane has been stopped');
    }
  }
}

/**
 * `kubectl create token` calls the TokenRequest API with whatever credentials the kubeconfig
 * holds, so the same code serves our control plane and an existing cluster's exec plugins or
 * OIDC users.
 */
async function requestToken(binDir: string, kubeconfig: string, namespace: string, name: string, pod?: BoundPod): Promise<string> {
  const bound = pod ? ['--bound-object-kind=Pod', `--bound-object-name=${pod.name}`, `--bound-object-uid=${pod.uid}`] : [];
  try {
    const { stdout } = await execFileAsync(
      path.join(binDir, 'kubectl'),
      [`--kubeconfig=${kubeconfig}`, 'create', 'token', name, `--namespace=${namespace}`, `--duration=${SA_TOKEN_SECONDS}s`, ...bound],
      { timeout: TOOL_TIMEOUT_MS },
    );
    const token = stdout.trim();
    if (token === '') {
      throw new Error('kubectl printed no token');
    }
    return token;
  } catch (err) {
    throw new ControlPlaneError('CONTROL_PLANE_TOKEN_FAILED', `cannot get a token for service account ${namespace}/${name}`, {
      cause: err,
    });
  }
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string } }[];
  clusters?: {
    name: string;
    cluster: { server: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string };
  }[];
}

async function openExistingCluster(kubeconfigPath: string, binDir: string): Promise<ControlPlane> {
  let config: KubeconfigFile;
  try {
    config = parseYaml(fs.readFileSync(kubeconfigPath, 'utf8')) as KubeconfigFile;
  } catch (err) {
    throw new ControlPlaneError('CONTROL_PLANE_BAD_KUBECONFIG', `cannot read PIKO_TEST_KUBECONFIG=${kubeconfigPath}`, {
      cause: err,
    });
  }
  const contextName = config['current-context'];
  const clusterName = config.contexts?.find((c) => c.name === contextName)?.context.cluster;
  const cluster = config.clusters?.find((c) => c.name === clusterName)?.cluster;
  if (cluster === undefined) {
    throw new ControlPlaneError(
      'CONTROL_PLANE_BAD_KUBECONFIG',
      `PIKO_TEST_KUBECONFIG=${kubeconfigPath} has no cluster for its current context ${contextName ?? '(none)'}`,
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-k8s-ext-'));
  let caPath = path.join(dir, 'ca.crt');
  if (cluster['certificate-authority-data'] !== undefined) {
    fs.writeFileSync(caPath, Buffer.from(cluster['certificate-authority-data'], 'base64'));
  } else if (cluster['certificate-authority'] !== undefined) {
    caPath = path.resolve(path.dirname(kubeconfigPath), cluster['certificate-authority']);
  } else {
    // A cluster trusted through the system roots: an empty bundle here means "use the defaults".
    fs.writeFileSync(caPath, '');
  }
  const unsupported = (): Promise<void> =>
    Promise.reject(
      new ControlPlaneError(
        'CONTROL_PLANE_RESTART_UNSUPPORTED',
        'the apiserver of an existing cluster (PIKO_TEST_KUBECONFIG) cannot be stopped or restarted by tests; check canRestart',
      ),
    );
  let saCount = 0;
  let stopped = false;
  try {
    await execFileAsync(path.join(binDir, 'kubectl'), [`--kubeconfig=${kubeconfigPath}`, 'get', '--raw=/readyz'], {
      timeout: READY_TIMEOUT_MS,
    });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new ControlPlaneError('CONTROL_PLANE_NOT_READY', `the cluster of PIKO_TEST_KUBECONFIG=${kubeconfigPath} is not ready`, {
      cause: err,
    });
  }
  return {
    kubeconfigPath,
    server: cluster.server,
    caPath,
    binDir,
    canRestart: false,
    stopApiServer: unsupported,
    startApiServer: unsupported,
    async kubeconfigForServiceAccount(namespace: string, name: string, pod?: BoundPod): Promise<string> {
      if (stopped) {
        throw new ControlPlaneError('CONTROL_PLANE_STOPPED', 'the control plane handle has been stopped');
      }
      const token = await requestToken(binDir, kubeconfigPath, namespace, name, pod);
      const file = path.join(dir, `sa-${++saCount}-${namespace}-${name}.kubeconfig`);
      const sa = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'cluster', cluster }],
        users: [{ name: 'sa', user: { token } }],
        contexts: [{ name: 'sa', context: { cluster: 'cluster', user: 'sa' } }],
        'current-context': 'sa',
      };
      if (cluster['certificate-authority'] !== undefined) {
        sa.clusters[0] = { name: 'cluster', cluster: { ...cluster, 'certificate-authority': caPath } };
      }
      fs.writeFileSync(file, stringifyYaml(sa), { mode: 0o600 });
      return file;
    },
    stop(): Promise<void> {
      stopped = true;
      fs.rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
    logs(): string {
      return '';
    },
  };
}
