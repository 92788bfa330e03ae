import { once } from 'node:events';
import { Session } from '../../../dataplane/tunnel/session';
import type { TunnelStream } from '../../../dataplane/tunnel/stream';
import {
  encodeHeader,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  INITIAL_STREAM_WINDOW,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_WINDOW_UPDATE,
  decodeHeader,
} from '../../../dataplane/tunnel/frame';
import { PipeTransport } from '../../helpers/pipe-transport';

/** The frames in a run of transport bytes, by type and flags. */
function frames(bytes: Buffer): { type: number; flags: number }[] {
  const out: { type: number; flags: number }[] = [];
  for (let at = 0; at < bytes.length;) {
    const h = decodeHeader(bytes.subarray(at, at + 12));
    out.push({ type: h.type, flags: h.flags });
    at += 12 + (h.type === TYPE_DATA ? h.length : 0);
  }
  return out;
}

function pair(opts: { server?: object; client?: object } = {}): { server: Session; client: Session; st: PipeTransport; ct: PipeTransport } {
  const [st, ct] = PipeTransport.pair();
  const server = new Session(st, { role: 'server', keepaliveIntervalMs: 0, ...opts.server });
  const client = new Session(ct, { role: 'client', keepaliveIntervalMs: 0, ...opts.client });
  return { server, client, st, ct };
}

async function readAll(stream: TunnelStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('Session', () => {
  it('opens a stream from the server with even ids and echoes bytes both ways', async () => {
    const { server, client } = pair();
    client.on('stream', (s) => s.on('error', () => undefined).pipe(s));
    const a = await server.open();
    const b = await server.open();
    expect([a.id, b.id]).toEqual([2, 4]);
    a.end('hello');
    expect((await readAll(a)).toString()).toBe('hello');
    server.close();
  });

  it('sends SYN as a window update with zero delta, as Go yamux does', async () => {
    const { server, client, st } = pair();
    client.on('stream', (s) => s.on('error', () => undefined).resume());
    await server.open();
    const first = decodeHeader(st.sent[0] as Buffer);
    expect(first).toEqual({ type: TYPE_WINDOW_UPDATE, flags: FLAG_SYN, streamId: 2, length: 0 });
    server.close();
  });

  it('keeps half-close: the side that ended can still read', async () => {
    const { server, client } = pair();
    client.on('stream', (s) => {
      s.on('error', () => undefined);
      void readAll(s).then((body) => s.end(`got ${body.length} bytes`));
    });
    const s = await server.open();
    s.end(Buffer.alloc(1000, 1));
    expect((await readAll(s)).toString()).toBe('got 1000 bytes');
    if (!s.closed) await once(s, 'close');
    expect(server.streamCount).toBe(0);
    server.close();
  });

  it('moves 8 MiB through windows of 256 KiB with a slow reader, never buffering past two windows', async () => {
    // Windows that do not grow (window-tuning.test.ts has those).
    const { server, client } = pair({ client: { maxStreamWindow: INITIAL_STREAM_WINDOW } });
    let maxQueued = 0;
    const received = new Promise<number>((resolve) => {
      client.on('stream', (s) => {
        s.on('error', () => undefined);
        let total = 0;
        s.pause();
        const tick = setInterval(() => {
          maxQueued = Math.max(
            maxQueued,
            s.readableLength + (s as unknown as { recvQueue: Buffer[] }).recvQueue.reduce((n, b) => n + b.length, 0),
          );
          let chunk: Buffer | null;
          while ((chunk = s.read(32 * 1024) as Buffer | null) !== null) total += chunk.length;
          if (s.readableEnded || total === 8 * 1024 * 1024) {
            clearInterval(tick);
            resolve(total);
          }
        }, 1);
      });
    });
    const s = await server.open();
    const block = Buffer.alloc(1024 * 1024, 7);
    for (let i = 0; i < 8; i++) {
      if (!s.write(block)) await once(s, 'drain');
    }
    s.end();
    expect(await received).toBe(8 * 1024 * 1024);
    expect(maxQueued).toBeLessThanOrEqual(2 * INITIAL_STREAM_WINDOW);
    server.close();
  });

  it('refuses incoming streams with RST when nobody accepts them', async () => {
    const { server } = pair();
    await expect(server.open()).rejects.toMatchObject({ code: 'ERR_YAMUX_STREAM_REFUSED' });
    server.close();
  });

  describe('open({ early: true })', () => {
    it('hands the stream over before the ACK, and what is written follows the SYN', async () => {
      const { server, client, st } = pair();
      let sentBeforeAnswer: { type: number; flags: number }[] = [];
      const got = new Promise<string>((resolve) =>
        client.on('stream', (s) => {
          // The peer has just seen the SYN; it has not answered yet.
          sentBeforeAnswer = frames(Buffer.concat(st.sent));
          void readAll(s).then((b) => {
            resolve(b.toString());
            s.end('answer');
          });
        }),
      );
      const s = await server.open({ early: true });
      expect(s.accepted).toBe(false);
      s.end('request head');
      expect(await got).toBe('request head');
      expect(sentBeforeAnswer).toEqual([
        { type: TYPE_WINDOW_UPDATE, flags: FLAG_SYN },
        { type: TYPE_DATA, flags: 0 },
        { type: TYPE_WINDOW_UPDATE, flags: FLAG_FIN },
      ]);
      expect((await readAll(s)).toString()).toBe('answer');
      expect(s.accepted).toBe(true);
      server.close();
    });

    it('fails the stream with ERR_YAMUX_STREAM_REFUSED when the peer refuses it', async () => {
      const { server } = pair();
      const s = await server.open({ early: true });
      s.write('dropped unread');
      const [err] = (await once(s, 'error')) as [Error & { code: string }];
      expect(err.code).toBe('ERR_YAMUX_STREAM_REFUSED');
      expect(server.streamCount).toBe(0);
      server.close();
    });

    it('reads a reset after the ACK as a reset, not a refusal', async () => {
      const { server, client } = pair();
      client.on('stream', (s) => s.once('data', () => s.destroy()));
      const s = await server.open({ early: true });
      s.write('x');
      const [err] = (await once(s, 'error')) as [Error & { code: string }];
      expect(err.code).toBe('ERR_YAMUX_STREAM_RESET');
      server.close();
    });

    it('fails the stream with the open timeout when no ACK comes', async () => {
      // A peer that never answers: its transport drops everything.
      const [st, ct] = PipeTransport.pair();
      ct.attach({ onData: () => undefined, onDrain: () => undefined, onClose: () => undefined });
      const lonely = new Session(st, { role: 'server', keepaliveIntervalMs: 0, openTimeoutMs: 20 });
      const s = await lonely.open({ early: true });
      const [err] = (await once(s, 'error')) as [Error & { code: string }];
      expect(err.code).toBe('ERR_YAMUX_OPEN_TIMEOUT');
      expect(lonely.streamCount).toBe(0);
      lonely.close();
    });
  });

  it('resets a stream when the peer destroys it', async () => {
    const { server, client } = pair();
    client.on('stream', (s) => s.once('data', () => s.destroy()));
    const s = await server.open();
    const errored = once(s, 'error');
    s.write('x');
    const [err] = (await errored) as [Error & { code: string }];
    expect(err.code).toBe('ERR_YAMUX_STREAM_RESET');
    server.close();
  });

  it('answers pings and measures round trips', async () => {
    const { server, client } = pair();
    const rtt = await server.ping();
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    server.close();
  });

  it('rejects open after the peer sends go away, while open streams carry on', async () => {
    const { server, client } = pair();
    client.on('stream', (s) => s.on('error', () => undefined).pipe(s));
    const s = await server.open();
    const goaway = once(server, 'goaway');
    client.goAway();
    await goaway;
    expect(server.available).toBe(false);
    await expect(server.open()).rejects.toMatchObject({ code: 'ERR_YAMUX_GOAWAY' });
    s.end('still here');
    expect((await readAll(s)).toString()).toBe('still here');
    server.close();
  });

  it('closes the session when the peer overruns a stream window', async () => {
    const { client, ct } = pair();
    client.on('stream', (s) => s.on('error', () => undefined));
    const closed = once(client, 'close');
    ct.inject(encodeHeader(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0));
    await new Promise((r) => setImmediate(r));
    ct.inject(Buffer.concat([encodeHeader(TYPE_DATA, 0, 2, INITIAL_STREAM_WINDOW + 1)]));
    const [err] = (await closed) as [Error & { code: string }];
    expect(err.code).toMatch(/ERR_YAMUX_(WINDOW_EXCEEDED|PROTOCOL)/);
    // The peer is told why: GoAway with the protocol error code.
    await new Promise((r) => setImmediate(r));
    const goAway = ct.sent.map((b) => decodeHeader(b)).find((h) => h.type === TYPE_GO_AWAY);
    expect(goAway?.length).toBe(1);
  });

  it('closes the session on garbage bytes, failing its streams', async () => {
    const { server, client, st } = pair();
    client.on('stream', (s) => s.on('error', () => undefined));
    const s = await server.open();
    const errored = once(s, 'error');
    st.inject(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    const [err] = (await errored) as [Error & { code: string }];
    expect(err.code).toBe('ERR_YAMUX_SESSION_CLOSED');
    expect(server.closed).toBe(true);
    expect(server.closeReason?.code).toBe('ERR_YAMUX_PROTOCOL');
  });

  it('refuses a duplicate SYN as a protocol error', async () => {
    const { client, ct } = pair();
    client.on('stream', (s) => s.on('error', () => undefined));
    const closed = once(client, 'close');
    ct.inject(encodeHeader(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0));
    ct.inject(encodeHeader(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0));
    const [err] = (await closed) as [Error & { code: string }];
    expect(err.code).toBe('ERR_YAMUX_PROTOCOL');
  });

  it('refuses streams past maxStreams with RST and keeps the session', async () => {
    const { client, ct } = pair({ client: { maxStreams: 1 } });
    client.on('stream', (s) => s.on('error', () => undefined));
    ct.inject(encodeHeader(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0));
    ct.inject(encodeHeader(TYPE_WINDOW_UPDATE, FLAG_SYN, 4, 0));
    await new Promise((r) => setImmediate(r));
    const frames = ct.sent.flatMap((b) => {
      const out = [];
      for (let i = 0; i + 12 <= b.length; i += 12) out.push(decodeHeader(b, i));
      return out;
    });
    expect(frames).toContainEqual({ type: TYPE_WINDOW_UPDATE, flags: FLAG_ACK, streamId: 2, length: 0 });
    expect(frames).toContainEqual({ type: TYPE_WINDOW_UPDATE, flags: FLAG_RST, streamId: 4, length: 0 });
    expect(client.closed).toBe(false);
    client.close();
  });

  it('times out an open the peer never acknowledges', async () => {
    const [st] = PipeTransport.pair(); // the far side has no session: nobody ACKs
    const server = new Session(st, { role: 'server', keepaliveIntervalMs: 0, openTimeoutMs: 50 });
    await expect(server.open()).rejects.toMatchObject({ code: 'ERR_YAMUX_OPEN_TIMEOUT' });
    expect(server.streamCount).toBe(0);
    server.close();
  });

  it('closes the session when keepalive pings go unanswered', async () => {
    const [st] = PipeTransport.pair();
    const server = new Session(st, { role: 'server', keepaliveIntervalMs: 20, keepaliveTimeoutMs: 30 });
    const [err] = (await once(server, 'close')) as [Error & { code: string }];
    expect(err.code).toBe('ERR_YAMUX_KEEPALIVE_TIMEOUT');
  });

  it('replies to a ping SYN with a ping ACK carrying the same id', async () => {
    const { client, ct } = pair();
    ct.inject(encodeHeader(TYPE_PING, FLAG_SYN, 0, 42));
    await new Promise((r) => setImmediate(r));
    expect(decodeHeader(ct.sent[0] as Buffer)).toEqual({ type: TYPE_PING, flags: FLAG_ACK, streamId: 0, length: 42 });
    client.close();
  });

  it('drops a peer that floods pings while leaving our writes unread, without a close handshake', async () => {
    const { client, ct } = pair({ client: { maxPendingControlFrames: 100 } });
    const limits: string[] = [];
    client.on('limit', (l) => limits.push(l));
    // The peer's end is full: everything we send waits.
    ct.bufferedAmount = 2 * 1024 * 1024;
    const closed = once(client, 'close');
    ct.inject(Buffer.concat(Array.from({ length: 101 }, (_, i) => encodeHeader(TYPE_PING, FLAG_SYN, 0, i))));
    const [err] = (await closed) as [Error & { code: string }];
    expect(err.code).toBe('ERR_YAMUX_CONGESTED');
    expect(limits).toEqual(['max_pending_control_frames']);
    expect(ct.aborted).toBe(true);
  });

  it('answers any number of pings from a peer that keeps reading', async () => {
    const { client, ct } = pair({ client: { maxPendingControlFrames: 100 } });
    ct.inject(Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeHeader(TYPE_PING, FLAG_SYN, 0, i))));
    await new Promise((r) => setImmediate(r));
    expect(client.closed).toBe(false);
    client.close();
    expect(ct.aborted).toBe(false);
  });

  it('reports max_streams when an open is refused for it', async () => {
    const { server, client } = pair({ server: { maxStreams: 1 } });
    client.on('stream', (s) => s.on('error', () => undefined));
    const limits: string[] = [];
    server.on('limit', (l) => limits.push(l));
    await server.open();
    await expect(server.open()).rejects.toMatchObject({ code: 'ERR_YAMUX_TOO_MANY_STREAMS' });
    expect(limits).toEqual(['max_streams']);
    server.close();
  });

  it('fails every stream when the transport drops', async () => {
    const { server, client, st } = pair();
    client.on('stream', (s) => s.on('error', () => undefined));
    const s = await server.open();
    const errored = once(s, 'error');
    st.peer?.close();
    const [err] = (await errored) as [Error & { code: string }];
    expect(err.code).toBe('ERR_YAMUX_SESSION_CLOSED');
    await expect(server.open()).rejects.toMatchObject({ code: 'ERR_YAMUX_SESSION_CLOSED' });
  });

  it('lets writers that backed off for frames queued in the same tick carry on once those are flushed', async () => {
    const { server, client } = pair();
    client.on('stream', (s) => s.resume());
    const streams = await Promise.all(Array.from({ length: 5 }, () => server.open()));
    await Promise.all(
      streams.map((s) => {
        const finished = once(s, 'finish');
        s.end(Buffer.alloc(256 * 1024));
        return finished;
      }),
    );
    server.close();
  });
});
