/**
 * Certificates renewed on disk are served without a restart, on every TLS port and toward
 * other nodes, and a node forwarding over TLS checks the name of the node it means to reach.
 * Real TLS on loopback, certificates from the openssl CLI.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type tls from 'node:tls';
import { ForwardingTls } from '../../../dataplane/proxy/remote/forwarding-tls';
import { createRemoteDialer } from '../../../dataplane/proxy/remote/remote-dialer';
import { ForwardAuth } from '../../../dataplane/proxy/remote/forward-auth';
import type { NodeRecord } from '../../../dataplane/registry/cluster-registry';
import { capturingLogger } from '../../helpers/capturing-logger';
import { startTestServer, stopAllTestServers } from '../../helpers/piko-server';
import { makeTlsFixtures, makeTlsFixturesWithSans, type TlsFixtures } from '../../helpers/tls-fixtures';

let dir: string;
/** Two unrelated PKIs: a renewal to the second is visible as a change of CA. */
let first: TlsFixtures;
let second: TlsFixtures;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'piko-tls-reload-'));
  for (const d of ['first', 'second', 'live', 'peer']) mkdirSync(join(dir, d));
  first = makeTlsFixtures(join(dir, 'first'));
  second = makeTlsFixtures(join(dir, 'second'));
});

afterAll(async () => {
  await stopAllTestServers();
  rmSync(dir, { recursive: true, force: true });
});

/** Replaces a file in one step, as the kubelet's symlink swap does. */
function replace(from: string, to: string): void {
  copyFileSync(from, `${to}.new`);
  renameSync(`${to}.new`, to);
}

/** The status of a GET to `url` trusting only `ca`, or the TLS error's code. */
function getWith(url: string, ca: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca: [readFileSync(ca)], agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('TLS certificates renewed on disk', () => {
  it('are served from the next handshake on each port, and a half-written renewal keeps the previous pair', async () => {
    const live = { cert: join(dir, 'live', 'tls.crt'), key: join(dir, 'live', 'tls.key') };
    replace(first.serverCert, live.cert);
    replace(first.serverKey, live.key);
    const { logger, waitFor, records } = capturingLogger();
    const tlsFlags = (port: string) => ({ [`${port}.tls.cert`]: live.cert, [`${port}.tls.key`]: live.key });
    const srv = await startTestServer(
      { ...tlsFlags('proxy'), ...tlsFlags('upstream'), ...tlsFlags('admin') },
      { logger, tlsReloadIntervalMs: 50 },
    );
    const health = `${srv.adminUrl.replace('127.0.0.1', 'localhost')}/health`;
    const upstream = `${srv.upstreamUrl.replace('127.0.0.1', 'localhost')}/`;
    expect(await getWith(health, first.caCert)).toBe(200);

    // The certificate first: it does not match the key, so nothing changes yet.
    replace(second.serverCert, live.cert);
    await waitFor((r) => r['message'] === 'changed TLS files do not load; still serving the previous ones' && r['tls'] === 'admin.tls');
    expect(await getWith(health, first.caCert)).toBe(200);

    replace(second.serverKey, live.key);
    for (const port of ['proxy', 'upstream', 'admin']) {
      await waitFor((r) => r['message'] === 'reloaded TLS certificates' && r['tls'] === `${port}.tls`);
    }
    expect(await getWith(health, second.caCert)).toBe(200);
    expect(await getWith(health, first.caCert)).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    // The upstream port answers 4xx to a plain GET, over the new certificate.
    expect(await getWith(upstream, second.caCert)).toEqual(expect.any(Number));
    // One warning for the run of failed polls, not one per poll.
    expect(
      records().filter(
        (r) => r['message'] === 'changed TLS files do not load; still serving the previous ones' && r['tls'] === 'admin.tls',
      ),
    ).toHaveLength(1);
    await srv.stop();
  });
});

describe('forwarding over TLS', () => {
  let peer: https.Server;
  let addr: string;
  let pki: TlsFixtures;

  beforeAll(async () => {
    // The peer's certificate names the pods of its cluster, not its address.
    pki = makeTlsFixturesWithSans(join(dir, 'peer'), 'DNS:*.piko-nodes.edge.svc');
    peer = https.createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, (_req, res) => res.end('peer'));
    peer.listen(0, '127.0.0.1');
    await once(peer, 'listening');
    addr = `127.0.0.1:${(peer.address() as AddressInfo).port}`;
  });

  afterAll(() => {
    peer.closeAllConnections();
    peer.close();
  });

  const dialAs = async (nodeId: string, serverName: string): Promise<string | undefined> => {
    const tlsClient = new ForwardingTls({ rootCas: pki.caCert, serverName, insecureSkipVerify: false });
    const node: NodeRecord = { id: nodeId, proxyAddr: addr, adminAddr: addr, status: 'active', endpoints: { web: 1 } };
    const dialer = createRemoteDialer({
      registry: { lookup: () => [{ node, upstreams: 1 }] },
      nodeId: 'self',
      auth: new ForwardAuth('secret'),
      tls: tlsClient,
      connectTimeoutMs: 2_000,
    });
    try {
      const route = await dialer.dial('web', true);
      if (route === undefined) return undefined;
      const conn = route.conn as tls.TLSSocket | undefined;
      const name = conn?.servername;
      conn?.destroy();
      return typeof name === 'string' ? name : 'connected';
    } finally {
      dialer.close();
    }
  };

  it("verifies the name of the node the registry names: {node} in server_name stands for the peer's node ID", async () => {
    expect(await dialAs('piko-1', '{node}.piko-nodes.edge.svc')).toBe('piko-1.piko-nodes.edge.svc');
    // Another cluster's name at this address is refused: the certificate does not name it.
    expect(await dialAs('piko-1', '{node}.piko-nodes.other.svc')).toBeUndefined();
    // By address alone, as before, the certificate names no IP.
    expect(await dialAs('piko-1', '')).toBeUndefined();
  });
});
