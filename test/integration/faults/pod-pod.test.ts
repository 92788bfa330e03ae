/**
 * Faults between two pods of one cluster, injected by toxiproxy: pod 0
 * holds the upstream and advertises, in its registry Lease, a toxiproxy
 * listener in front of its proxy port; clients send to pod 1, which
 * forwards through it. Each case asserts what clients of pod 1 see. Measured
 * outcomes are printed with PIKO_FAULT_REPORT=1.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { listen, serve, type Listener } from '../../../dataplane/client';
import { freeLoopbackPorts } from '../../helpers/go-piko';
import { request } from '../../helpers/http-client';
import { recordedGet, type Fetched } from '../../helpers/recorded-get';
import { startServerProcess, stopAllPikoProcesses, type ServerProcess } from '../../helpers/piko-process';
import { startToxiproxy, type ToxiProxy, type ToxiproxyServer } from '../../helpers/toxiproxy';
import { startControlPlane, type ControlPlane } from '../../k8s/control-plane';
import * as k8s from '@kubernetes/client-node';

const START_TIMEOUT_MS = 60 * 60 * 1000;
const SECRET = randomBytes(24).toString('hex');
const MiB = 1024 * 1024;
const BIG = Buffer.from(Array.from({ length: 2 * MiB }, (_, i) => (i * 13) & 0xff));
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');
const TIMEOUT_MS = 2_000;

let cp: ControlPlane;
let toxiproxy: ToxiproxyServer;
let link: ToxiProxy;
let holder: ServerProcess;
let front: ServerProcess;
let upstream: Listener;

function report(line: string): void {
  if (process.env['PIKO_FAULT_REPORT']) process.stdout.write(`fault: ${line}\n`);
}

/** GET through pod 1, recording how it ended; `onFirstByte` once the body starts. */
function get(path: string, onFirstByte?: () => void): Promise<Fetched> {
  return recordedGet(`${front.proxyUrl}${path}`, { 'x-piko-endpoint': 'svc' }, onFirstByte);
}

async function inFlight(pod: ServerProcess): Promise<number> {
  const body = (await request(`${pod.adminUrl}/metrics`)).body;
  return Number(/^piko_proxy_requests_in_flight (\d+)/m.exec(body)?.[1] ?? NaN);
}

beforeAll(async () => {
  cp = await startControlPlane();
  toxiproxy = await startToxiproxy();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const namespace = `faults-${randomBytes(3).toString('hex')}`;
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  const env = { KUBECONFIG: cp.kubeconfigPath, POD_NAMESPACE: namespace };
  const common = [
    '--cluster.registry',
    'kubernetes',
    '--cluster.secret',
    SECRET,
    '--cluster.kubernetes.lease-duration',
    '2s',
    '--cluster.kubernetes.renew-interval',
    '500ms',
    '--proxy.timeout',
    `${TIMEOUT_MS}ms`,
    '--proxy.access-log.disable',
  ];
  const [holderPort] = (await freeLoopbackPorts(1)) as [number];
  link = await toxiproxy.createProxy('pod-0', `127.0.0.1:${holderPort}`);
  holder = await startServerProcess(
    [...common, '--cluster.node-id', 'pod-0', '--proxy.bind-addr', `127.0.0.1:${holderPort}`, '--proxy.advertise-addr', link.listen],
    { env },
  );
  front = await startServerProcess([...common, '--cluster.node-id', 'pod-1'], { host: '127.0.0.2', env });
  upstream = await listen('svc', { url: holder.upstreamUrl });
  serve(
    upstream,
    http.createServer((req, res) => {
      if (req.url === '/big') res.end(BIG);
      else res.end('ok');
    }),
  );
  // Pod 1 routes to pod 0 once the registry says pod 0 holds the endpoint.
  const deadline = Date.now() + 15_000;
  while ((await get('/')).status !== 200) {
    if (Date.now() > deadline) throw new Error('pod 1 never routed to pod 0');
    await new Promise((r) => setTimeout(r, 100));
  }
}, START_TIMEOUT_MS);

afterAll(async () => {
  await upstream?.close({ timeoutMs: 1_000 }).catch(() => undefined);
  await stopAllPikoProcesses();
  await toxiproxy?.stop();
  await cp?.stop();
});

describe('faults between pods', () => {
  it('forwards every request intact over 50 ms of latency each way', async () => {
    await link.addToxic('lag-down', { type: 'latency', attributes: { latency: 50 } }, 'downstream');
    await link.addToxic('lag-up', { type: 'latency', attributes: { latency: 50 } }, 'upstream');
    try {
      const small = await Promise.all(Array.from({ length: 20 }, () => get('/')));
      const big = await get('/big');
      report(
        `pods, latency 50 ms each way: small p50 ${small
          .map((r) => r.ms)
          .sort((a, b) => a - b)[10]
          ?.toFixed(0)} ms, 2 MiB in ${big.ms.toFixed(0)} ms`,
      );
      for (const r of small) expect(r).toMatchObject({ status: 200, complete: true });
      expect(big).toMatchObject({ status: 200, complete: true, sha: BIG_SHA });
    } finally {
      await link.removeToxic('lag-down');
      await link.removeToxic('lag-up');
    }
  });

  it('cuts only the response in flight when the connection between pods is reset, and serves the next at once', async () => {
    await link.addToxic('slow', { type: 'bandwidth', attributes: { rate: 500 } }, 'downstream');
    let firstByte!: () => void;
    const started = new Promise<void>((resolve) => (firstByte = resolve));
    const cut = get('/big', firstByte);
    await started;
    await link.addToxic('reset', { type: 'reset_peer', attributes: { timeout: 0 } }, 'downstream');
    const result = await cut;
    await link.removeToxic('reset');
    await link.removeToxic('slow');
    report(`pods, reset mid-stream: in-flight ${result.complete ? 'completed' : `cut after ${result.bytes} bytes`}`);
    expect(result).toMatchObject({ status: 200, complete: false });
    expect(result.bytes).toBeLessThan(BIG.length);
    const after = await Promise.all(Array.from({ length: 10 }, () => get('/big')));
    for (const r of after) expect(r).toMatchObject({ status: 200, complete: true, sha: BIG_SHA });
    expect(await inFlight(front)).toBe(0);
  });

  it('answers 504 within proxy.timeout while the link between pods is frozen half-open, and recovers', async () => {
    await link.addToxic('freeze-down', { type: 'timeout', attributes: { timeout: 0 } }, 'downstream');
    await link.addToxic('freeze-up', { type: 'timeout', attributes: { timeout: 0 } }, 'upstream');
    const frozen = await Promise.all(Array.from({ length: 5 }, () => get('/')));
    await link.removeToxic('freeze-down');
    await link.removeToxic('freeze-up');
    report(
      `pods, half-open: statuses ${frozen.map((r) => r.status).join(',')} after ${Math.max(...frozen.map((r) => r.ms)).toFixed(0)} ms`,
    );
    for (const r of frozen) {
      expect(r.status).toBe(504);
      expect(r.ms).toBeLessThan(TIMEOUT_MS + 1_500);
    }
    expect(await get('/big')).toMatchObject({ status: 200, complete: true, sha: BIG_SHA });
    expect(await inFlight(front)).toBe(0);
  });

  it('answers 502 at once while the other pod refuses connections, and recovers when it takes them again', async () => {
    await link.setEnabled(false);
    const refused = await get('/');
    await link.setEnabled(true);
    report(`pods, refused: ${refused.status} after ${refused.ms.toFixed(0)} ms`);
    expect(refused.status).toBe(502);
    expect(refused.ms).toBeLessThan(TIMEOUT_MS);
    expect(await get('/')).toMatchObject({ status: 200, complete: true });
  });
});
