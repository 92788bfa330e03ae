import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { openWebSocket } from '../../../dataplane/client/websocket-connect';
import { makeTlsFixtures, type TlsFixtures } from '../../helpers/tls-fixtures';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_HANDSHAKE_BYTES = 16 * 1024;

/**
 * A WebSocket server written out by hand, so the test sees the client's
 * bytes as they are on the wire: it answers the upgrade and resolves with
 * the masking key of the first frame the client sends.
 */
function firstMaskingKey(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > MAX_HANDSHAKE_BYTES) reject(new Error('handshake too long'));
          return;
        }
        const key = /sec-websocket-key: *(\S+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? '';
        const accept = createHash('sha1')
          .update(key + WS_GUID)
          .digest('base64');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      // A short client frame: 2 header bytes, then the 4-byte key when the mask bit is set.
      if (buf.length >= 6) {
        if ((buf[1]! & 0x80) === 0) reject(new Error('client frame not masked'));
        else resolve(Buffer.from(buf.subarray(2, 6)));
        socket.destroy();
      }
    });
  });
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Opens a WebSocket with our client, sends one frame and returns the key the server saw. */
async function keyOf(
  url: string,
  server: net.Server,
  key: Promise<Buffer>,
  options: { proxyUrl?: string; tls?: tls.ConnectionOptions } = {},
): Promise<Buffer> {
  const ws = await openWebSocket(url, { headers: {}, handshakeTimeoutMs: 5_000, ...options }, (w) => w);
  ws.on('error', () => undefined);
  ws.send(Buffer.from('hello'));
  try {
    return await key;
  } finally {
    ws.terminate();
    server.close();
  }
}

function rawServer(make: (onSocket: (s: net.Socket) => void) => net.Server): { server: net.Server; key: Promise<Buffer> } {
  let resolveKey: (k: Promise<Buffer>) => void = () => undefined;
  const key = new Promise<Buffer>((resolve) => (resolveKey = resolve));
  const server = make((s) => resolveKey(firstMaskingKey(s)));
  return { server, key };
}

describe('client frame masking (RFC 6455 section 10.3)', () => {
  let dir: string;
  let pki: TlsFixtures;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'piko-mask-'));
    pki = makeTlsFixtures(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sends a zero key on loopback with no proxy on the path (127.0.0.1 and localhost)', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const { server, key } = rawServer((on) => net.createServer(on));
      const port = await listen(server);
      expect((await keyOf(`ws://${host}:${port}/`, server, key)).equals(Buffer.alloc(4))).toBe(true);
    }
  });

  it('inside TLS sends a zero key', async () => {
    const { server, key } = rawServer((on) =>
      tls.createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, on),
    );
    const port = await listen(server);
    const got = await keyOf(`wss://localhost:${port}/`, server, key, { tls: { ca: readFileSync(pki.caCert) } });
    expect(got.equals(Buffer.alloc(4))).toBe(true);
  });

  it('masks with a random key when a plain-text proxy is on the path', async () => {
    const { server, key } = rawServer((on) => net.createServer(on));
    const port = await listen(server);
    // A CONNECT proxy on loopback: from the client's side, an intermediary that could read the frames.
    const proxy = net.createServer((client) => {
      client.once('data', (head: Buffer) => {
        const target = /^CONNECT ([^ ]+)/.exec(head.toString('latin1'))?.[1] ?? '';
        const [h, p] = target.split(':');
        const up = net.connect(Number(p), h, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          client.pipe(up).pipe(client);
        });
        up.on('error', () => client.destroy());
        client.on('error', () => up.destroy());
      });
    });
    const proxyPort = await listen(proxy);
    try {
      const got = await keyOf(`ws://127.0.0.1:${port}/`, server, key, { proxyUrl: `http://127.0.0.1:${proxyPort}` });
      // A random key is all zero once in 2^32.
      expect(got.equals(Buffer.alloc(4))).toBe(false);
    } finally {
      proxy.close();
    }
  });
});
