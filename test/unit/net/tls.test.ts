import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsConfig } from '../../../dataplane/config/tls-config';
import { TlsConfigError, clientTlsOptions, createHttpServer, serverTlsOptions } from '../../../dataplane/net/tls';
import { makeTlsFixtures, type TlsFixtures } from '../../helpers/tls-fixtures';

const NO_CLIENT = { insecureSkipVerify: false };

let dir: string;
let fx: TlsFixtures;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'piko-tls-'));
  fx = makeTlsFixtures(dir);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function thrown(fn: () => unknown): TlsConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TlsConfigError);
    return err as TlsConfigError;
  }
  throw new Error('expected a TlsConfigError');
}

describe('serverTlsOptions', () => {
  it('returns undefined when neither cert nor key is set', () => {
    expect(serverTlsOptions({ client: NO_CLIENT })).toBeUndefined();
  });

  it('loads the key pair without asking for client certificates', () => {
    const opts = serverTlsOptions({ cert: fx.serverCert, key: fx.serverKey, client: NO_CLIENT });
    expect(opts?.cert).toBeInstanceOf(Buffer);
    expect(opts?.key).toBeInstanceOf(Buffer);
    expect(opts?.requestCert).toBe(false);
    expect(opts?.ca).toBeUndefined();
  });

  it('requires and verifies client certificates when client CAs are set', () => {
    const opts = serverTlsOptions({
      cert: fx.serverCert,
      key: fx.serverKey,
      clientCas: fx.caCert,
      client: NO_CLIENT,
    });
    expect(opts?.requestCert).toBe(true);
    expect(opts?.rejectUnauthorized).toBe(true);
    expect(opts?.ca).toBeInstanceOf(Buffer);
  });

  it('rejects a key without a cert, naming the field', () => {
    const err = thrown(() => serverTlsOptions({ key: fx.serverKey, client: NO_CLIENT }, 'proxy.tls'));
    expect(err.code).toBe('ERR_TLS_MISSING_CERT');
    expect(err.field).toBe('proxy.tls.cert');
  });

  it('names the file and the field when a file cannot be read', () => {
    const missing = join(dir, 'missing.pem');
    const err = thrown(() => serverTlsOptions({ cert: missing, key: fx.serverKey, client: NO_CLIENT }, 'admin.tls'));
    expect(err.code).toBe('ERR_TLS_FILE_UNREADABLE');
    expect(err.field).toBe('admin.tls.cert');
    expect(err.message).toContain('admin.tls.cert');
    expect(err.message).toContain(missing);
    expect(err.cause).toBeDefined();
  });

  it('rejects a key that does not match the certificate', () => {
    const err = thrown(() => serverTlsOptions({ cert: fx.serverCert, key: fx.clientKey, client: NO_CLIENT }));
    expect(err.code).toBe('ERR_TLS_INVALID_KEY_PAIR');
  });

  it('rejects a client CA file holding no certificate', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const err = thrown(() =>
      serverTlsOptions({ cert: fx.serverCert, key: fx.serverKey, clientCas: junk, client: NO_CLIENT }, 'upstream.tls'),
    );
    expect(err.code).toBe('ERR_TLS_INVALID_PEM');
    expect(err.field).toBe('upstream.tls.client_cas');
    expect(err.message).toContain(junk);
  });
});

describe('clientTlsOptions', () => {
  it('verifies the server by default and skips verification only when asked', () => {
    expect(clientTlsOptions({ insecureSkipVerify: false }).rejectUnauthorized).toBe(true);
    expect(clientTlsOptions({ insecureSkipVerify: true }).rejectUnauthorized).toBe(false);
  });

  it('loads root CAs, the client pair and the server name', () => {
    const opts = clientTlsOptions({
      cert: fx.clientCert,
      key: fx.clientKey,
      rootCas: fx.caCert,
      insecureSkipVerify: false,
      serverName: 'localhost',
    });
    expect(opts.ca).toBeInstanceOf(Buffer);
    expect(opts.cert).toBeInstanceOf(Buffer);
    expect(opts.servername).toBe('localhost');
  });

  it('rejects a cert without a key, naming the field', () => {
    const err = thrown(() => clientTlsOptions({ cert: fx.clientCert, insecureSkipVerify: false }, 'proxy.tls.client'));
    expect(err.code).toBe('ERR_TLS_MISSING_KEY');
    expect(err.field).toBe('proxy.tls.client.key');
  });
});

describe('createHttpServer', () => {
  const servers: http.Server[] = [];

  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map(async (s) => {
        s.closeAllConnections();
        s.close();
        await once(s, 'close');
      }),
    );
  });

  let served = 0;

  async function listen(cfg: TlsConfig | undefined): Promise<number> {
    served = 0;
    const server = createHttpServer(cfg, (_req, res) => {
      served += 1;
      res.end('ok');
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }

  function get(port: number, opts: https.RequestOptions): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000, ...opts }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
    });
  }

  it('serves plain HTTP when TLS is not configured', () => {
    const server = createHttpServer(undefined);
    expect(server).not.toBeInstanceOf(https.Server);
    const tlsOff = createHttpServer({ client: NO_CLIENT });
    expect(tlsOff).not.toBeInstanceOf(https.Server);
  });

  it('serves HTTPS that a client trusting the CA accepts', async () => {
    const port = await listen({ cert: fx.serverCert, key: fx.serverKey, client: NO_CLIENT });
    const res = await get(port, clientTlsOptions({ rootCas: fx.caCert, insecureSkipVerify: false }));
    expect(res).toEqual({ status: 200, body: 'ok' });
  });

  it('fails the handshake for a client without the CA', async () => {
    const port = await listen({ cert: fx.serverCert, key: fx.serverKey, client: NO_CLIENT });
    await expect(get(port, clientTlsOptions({ insecureSkipVerify: false }))).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  it('checks the certificate against serverName when given', async () => {
    const port = await listen({ cert: fx.serverCert, key: fx.serverKey, client: NO_CLIENT });
    await expect(
      get(port, clientTlsOptions({ rootCas: fx.caCert, insecureSkipVerify: false, serverName: 'other.example' })),
    ).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    const ok = await get(port, clientTlsOptions({ rootCas: fx.caCert, insecureSkipVerify: false, serverName: 'localhost' }));
    expect(ok.status).toBe(200);
  });

  describe('with client CAs', () => {
    const mtls = (): TlsConfig => ({
      cert: fx.serverCert,
      key: fx.serverKey,
      clientCas: fx.caCert,
      client: NO_CLIENT,
    });

    it('accepts a client presenting a certificate signed by the CA', async () => {
      const port = await listen(mtls());
      const res = await get(
        port,
        clientTlsOptions({ cert: fx.clientCert, key: fx.clientKey, rootCas: fx.caCert, insecureSkipVerify: false }),
      );
      expect(res).toEqual({ status: 200, body: 'ok' });
    });

    it('rejects a client without a certificate', async () => {
      const port = await listen(mtls());
      const rejected = once(servers[0]!, 'tlsClientError');
      await expect(get(port, clientTlsOptions({ rootCas: fx.caCert, insecureSkipVerify: false }))).rejects.toMatchObject({
        code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      });
      const [serverErr] = (await rejected) as [NodeJS.ErrnoException];
      expect(serverErr.code).toBe('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    });

    it('rejects a client certificate from another CA', async () => {
      const port = await listen(mtls());
      const otherDir = mkdtempSync(join(tmpdir(), 'piko-tls-other-'));
      try {
        const other = makeTlsFixtures(otherDir);
        // The client has finished its side of a TLS 1.3 handshake before the
        // server checks the certificate; Node then drops the socket without
        // an alert, so the client only sees the connection go.
        await expect(
          get(port, clientTlsOptions({ cert: other.clientCert, key: other.clientKey, rootCas: fx.caCert, insecureSkipVerify: false })),
        ).rejects.toMatchObject({ code: expect.stringMatching(/^(ECONNRESET|ERR_SSL_)/) });
        expect(served).toBe(0);
      } finally {
        rmSync(otherDir, { recursive: true, force: true });
      }
    });
  });
});
