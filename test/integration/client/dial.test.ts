import { once } from 'node:events';
import type WebSocket from 'ws';
import { dial } from '../../../dataplane/client';
import { FakeUpstreamServer } from './fake-upstream-server';

describe('dial (against a fake proxy port)', () => {
  let fake: FakeUpstreamServer;
  const sockets = new Set<WebSocket>();

  beforeEach(async () => {
    fake = await FakeUpstreamServer.start();
    fake.onTcp = (ws) => {
      sockets.add(ws);
      ws.on('message', (data, isBinary) => {
        if (data.toString() === 'send text') ws.send('text!', { binary: false });
        else ws.send(data, { binary: isBinary });
      });
    };
  });

  afterEach(async () => {
    for (const ws of sockets) ws.terminate();
    sockets.clear();
    await fake.stop();
  });

  it('opens /_piko/v1/tcp/<id> with the token, no Origin and no compression, and echoes binary', async () => {
    const conn = await dial('db', { url: fake.url, token: 'tok' });
    const req = fake.upgrades[0]!;
    expect(req.url).toBe('/_piko/v1/tcp/db');
    expect(req.headers.authorization).toBe('Bearer tok');
    expect(req.headers.origin).toBeUndefined();
    expect(req.headers['sec-websocket-extensions']).toBeUndefined();
    conn.write('abc');
    const [chunk] = (await once(conn, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('abc');
    const closed = once(conn, 'close');
    conn.end();
    await closed;
  });

  it('breaks the connection on a text message, as Piko does', async () => {
    const conn = await dial('db', { url: fake.url });
    const failed = once(conn, 'error');
    conn.write('send text');
    const [err] = await failed;
    expect(err).toMatchObject({ code: 'ERR_CLIENT_PROTOCOL' });
  });

  it('does not retry: a 503 rejects at once with the status', async () => {
    fake.rejections.push({ status: 503, error: 'shutting down' });
    await expect(dial('db', { url: fake.url })).rejects.toMatchObject({ status: 503, serverError: 'shutting down', retryable: true });
    expect(fake.upgrades).toHaveLength(1);
  });

  it('rejects ERR_CLIENT_CONNECT when nothing listens, and ERR_CLIENT_ABORTED on abort', async () => {
    const port = fake.port;
    await fake.stop();
    await expect(dial('db', { url: `http://127.0.0.1:${port}` })).rejects.toMatchObject({ code: 'ERR_CLIENT_CONNECT' });
    await expect(dial('db', { url: `http://127.0.0.1:${port}`, signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_CLIENT_ABORTED',
    });
  });
});
