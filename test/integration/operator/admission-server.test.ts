/**
 * The webhook's HTTPS server on loopback, with what an apiserver sends and what it never should:
 * every request gets an answer, bad ones a clear error, and the certificate can change under it.
 */
import * as fs from 'node:fs';
import https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../dataplane/log/logger';
import { AdmissionServer, MUTATE_PODS_PATH } from '../../../operator/webhook/admission-server';
import { issueCa, issueServing, type KeyPairPem } from '../../../operator/webhook/webhook-certificates';
import { SidecarInjector } from '../../../operator/webhook/sidecar-injector';
import type { KubeClient } from '../../../dataplane/kube/client';
import { makeCluster } from '../../unit/operator/fixtures';

let server: AdmissionServer;
let port: number;
let ca: KeyPairPem;

beforeAll(async () => {
  ca = issueCa(Date.now());
  server = new AdmissionServer({
    lookup: (ns, name) => (ns === 'edge' && name === 'piko' ? makeCluster() : undefined),
    defaultImage: 'ghcr.io/piko-k8s/piko:0.0.0-test',
    logger: silentLogger(),
    metricsRegistry: new Registry(),
  });
  server.setCertificate(issueServing(ca, ['localhost'], Date.now()));
  port = ((await server.start('127.0.0.1:0', 'test')) as AddressInfo).port;
});

afterAll(() => server.close());

function send(
  body: string | Buffer,
  options: { method?: string; path?: string; ca?: string; port?: number } = {},
): Promise<{ status: number; body: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        agent: false,
        host: '127.0.0.1',
        port: options.port ?? port,
        servername: 'localhost',
        path: options.path ?? MUTATE_PODS_PATH,
        method: options.method ?? 'POST',
        ca: options.ca ?? ca.cert,
      },
      (res) => {
        // Read now: by 'end' the socket may already be gone.
        const issuer = String((res.socket as import('node:tls').TLSSocket).getPeerCertificate().issuer?.CN ?? '');
        let text = '';
        res.on('data', (c: Buffer) => (text += String(c)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, issuer }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const review = (object: unknown, uid: unknown = 'u-1'): string =>
  JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, namespace: 'shop', operation: 'CREATE', kind: { kind: 'Pod' }, object },
  });

describe('the admission server', () => {
  it('answers a pod without the annotations as allowed, unchanged', async () => {
    const res = await send(review({ metadata: { name: 'p' }, spec: { containers: [] } }));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u-1', allowed: true },
    });
  });

  it('answers an injection as a base64 JSON patch, and a refusal as a 403 status with its message', async () => {
    const annotations = { 'piko.dev/cluster': 'edge/piko', 'piko.dev/listeners': 'web=8080' };
    const injected = JSON.parse((await send(review({ metadata: { annotations }, spec: { containers: [] } }))).body) as {
      response: { allowed: boolean; patchType: string; patch: string };
    };
    expect(injected.response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    const patch = JSON.parse(Buffer.from(injected.response.patch, 'base64').toString()) as { path: string }[];
    expect(patch.map((p) => p.path)).toEqual(['/spec/initContainers']);
    const refused = JSON.parse(
      (await send(review({ metadata: { annotations: { ...annotations, 'piko.dev/listeners': 'web=0' } }, spec: { containers: [] } }))).body,
    ) as {
      response: unknown;
    };
    expect(refused.response).toEqual({
      uid: 'u-1',
      allowed: false,
      status: { code: 403, reason: 'Forbidden', message: 'piko.dev/listeners: "web=0": port 0 is out of range (1-65535)' },
    });
  });

  it('refuses what is not a review with a 400 naming the problem, and never crashes', async () => {
    for (const [body, error] of [
      ['not json', 'body is not JSON'],
      ['null', 'no request.uid'],
      [JSON.stringify({ request: { kind: { kind: 'Pod' }, object: {} } }), 'no request.uid'],
      [review({ metadata: {} }, 7), 'no request.uid'],
      [JSON.stringify({ request: { uid: 'x', kind: { kind: 'Secret' }, object: {} } }), 'request.object is not a Pod'],
      [review('a string'), 'request.object is not a Pod'],
    ] as const) {
      const res = await send(body);
      expect([res.status, JSON.parse(res.body)]).toEqual([400, { error }]);
    }
    // A pod whose fields have the wrong types: refused, not admitted without its agent.
    const odd = JSON.parse(
      (
        await send(
          review({
            metadata: { annotations: { 'piko.dev/cluster': 'edge/piko', 'piko.dev/listeners': 'web=8080' } },
            spec: { initContainers: 'x' },
          }),
        )
      ).body,
    ) as {
      response: { allowed: boolean };
    };
    expect(odd.response.allowed).toBe(false);
  });

  it('cuts a review over 8 MiB with 413, and answers only POST on its one path', async () => {
    const huge = await send(Buffer.alloc(9 * 1024 * 1024, 0x20)).catch((err: NodeJS.ErrnoException) => ({
      status: err.code,
      body: '',
      issuer: '',
    }));
    // The server answers 413 and closes; a client still writing may see the reset instead.
    expect([413, 'ECONNRESET', 'EPIPE']).toContain(huge.status);
    expect((await send('', { path: '/other' })).status).toBe(404);
    expect((await send('', { method: 'GET' })).status).toBe(405);
    // Still serving.
    expect((await send(review({ metadata: {}, spec: { containers: [] } }))).status).toBe(200);
  });

  it('serves a new certificate from the next connection on', async () => {
    const other = issueCa(Date.now(), undefined, 'other-ca');
    server.setCertificate(issueServing(other, ['localhost'], Date.now()));
    const res = await send(review({ metadata: {}, spec: { containers: [] } }), { ca: other.cert });
    expect(res.status).toBe(200);
    expect(res.issuer).toMatch(/^other-ca-/);
    await expect(send(review({}), { ca: ca.cert })).rejects.toThrow();
  });

  it('with --webhook.cert-dir, serves the files cert-manager keeps and follows their renewal', async () => {
    const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-webhook-certs-'));
    const write = (pair: KeyPairPem): void => {
      fs.writeFileSync(path.join(certDir, 'tls.crt'), pair.cert);
      fs.writeFileSync(path.join(certDir, 'tls.key'), pair.key);
    };
    const first = issueCa(Date.now(), undefined, 'first-ca');
    write(issueServing(first, ['localhost'], Date.now()));
    const injector = new SidecarInjector({
      config: { bindAddr: '127.0.0.1:0', configuration: 'unused', service: 'unused', secret: 'unused', certDir },
      namespace: 'piko-system',
      // With a certificate directory the injector never asks the apiserver for anything.
      client: undefined as unknown as KubeClient,
      lookup: () => undefined,
      defaultImage: 'ghcr.io/piko-k8s/piko:0.0.0-test',
      logger: silentLogger(),
      metricsRegistry: new Registry(),
      syncIntervalMs: 3_600_000,
    });
    try {
      const at = ((await injector.start()) as AddressInfo).port;
      const ask = (caPem: string) => send(review({ metadata: {}, spec: { containers: [] } }), { ca: caPem, port: at });
      expect((await ask(first.cert)).issuer).toMatch(/^first-ca-/);
      const renewed = issueCa(Date.now(), undefined, 'renewed-ca');
      write(issueServing(renewed, ['localhost'], Date.now()));
      await injector.sync();
      expect((await ask(renewed.cert)).issuer).toMatch(/^renewed-ca-/);
    } finally {
      await injector.close();
      fs.rmSync(certDir, { recursive: true, force: true });
    }
  });
});
