import { once } from 'node:events';
import { Session, type SessionOptions } from '../../../dataplane/tunnel/session';
import type { TunnelStream } from '../../../dataplane/tunnel/stream';
import { INITIAL_STREAM_WINDOW } from '../../../dataplane/tunnel/frame';
import { PipeTransport } from '../../helpers/pipe-transport';

// Receive-window growth over a link with a real delay (timers, not a fake
// clock: the rule compares how fast the reader drains a window with the
// round trip a ping measures, both in real time).

const ONE_WAY_MS = 20;
const MIB = 1024 * 1024;

function farPair(server: Partial<SessionOptions> = {}): { server: Session; client: Session } {
  const [st, ct] = PipeTransport.pair(ONE_WAY_MS);
  return {
    server: new Session(st, { role: 'server', keepaliveIntervalMs: 0, ...server }),
    client: new Session(ct, { role: 'client', keepaliveIntervalMs: 0 }),
  };
}

/** The client writes `bytes` on each stream the server opens; the server reads them as they come, tracking the largest receive window. */
async function download(
  server: Session,
  client: Session,
  bytes: number,
  streams = 1,
): Promise<{ windows: number[]; grownAtEnd: number[]; peakGrowth: number; peakQueued: number }> {
  client.on('stream', (s: TunnelStream) => {
    s.on('error', () => undefined);
    s.resume();
    const block = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        sent += block.length;
        if (!s.write(block)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  const opened = await Promise.all(Array.from({ length: streams }, () => server.open()));
  const windows = opened.map(() => 0);
  let peakGrowth = 0;
  let peakQueued = 0;
  await Promise.all(
    opened.map(async (s, i) => {
      s.end();
      let got = 0;
      for await (const chunk of s) {
        got += (chunk as Buffer).length;
        windows[i] = Math.max(windows[i] as number, s.receiveWindow);
        peakGrowth = Math.max(peakGrowth, server.windowGrowthInUse);
        const queued = s.readableLength + (s as unknown as { recvQueue: Buffer[] }).recvQueue.reduce((n, b) => n + b.length, 0);
        peakQueued = Math.max(peakQueued, queued - 2 * s.receiveWindow);
      }
      expect(got).toBe(bytes);
    }),
  );
  return { windows, grownAtEnd: opened.map((s) => s.receiveWindow), peakGrowth, peakQueued };
}

describe('receive window tuning', () => {
  it('grows the window of a stream whose reader keeps up, up to maxStreamWindow, and gives it back at the end', async () => {
    const { server, client } = farPair({ maxStreamWindow: 2 * MIB });
    const { windows, grownAtEnd, peakQueued } = await download(server, client, 8 * MIB);
    expect(windows[0]).toBe(2 * MIB);
    expect(grownAtEnd[0]).toBe(INITIAL_STREAM_WINDOW);
    expect(server.windowGrowthInUse).toBe(0);
    // Unread data stays within two of the stream's windows, as with ungrown ones.
    expect(peakQueued).toBeLessThanOrEqual(0);
    server.close();
  });

  it('keeps the window of a reader slower than the link', async () => {
    const { server, client } = farPair({ maxStreamWindow: 2 * MIB });
    client.on('stream', (s: TunnelStream) => {
      s.on('error', () => undefined);
      s.resume();
      s.end(Buffer.alloc(2 * MIB, 1));
    });
    const s = await server.open();
    s.end();
    let got = 0;
    let largest = 0;
    // 64 KiB per 100 ms: half a window takes 200 ms, far over two round trips (80 ms).
    s.pause();
    while (got < 1 * MIB) {
      const chunk = s.read(64 * 1024) as Buffer | null;
      if (chunk === null) {
        await once(s, 'readable');
        continue;
      }
      got += chunk.length;
      largest = Math.max(largest, s.receiveWindow);
      await new Promise((r) => setTimeout(r, 100 * (chunk.length / (64 * 1024))));
    }
    expect(largest).toBe(INITIAL_STREAM_WINDOW);
    server.close();
  }, 20_000);

  it('grows no further than the session budget across its streams', async () => {
    const budget = 1 * MIB;
    const { server, client } = farPair({ maxStreamWindow: 2 * MIB, windowGrowthBudget: budget });
    const { windows, peakGrowth } = await download(server, client, 4 * MIB, 3);
    expect(Math.max(...windows)).toBeGreaterThan(INITIAL_STREAM_WINDOW);
    expect(peakGrowth).toBeGreaterThan(0);
    expect(peakGrowth).toBeLessThanOrEqual(budget);
    expect(server.windowGrowthInUse).toBe(0);
    server.close();
  });

  it('never grows with maxStreamWindow equal to the initial window', async () => {
    const { server, client } = farPair({ maxStreamWindow: INITIAL_STREAM_WINDOW });
    const { windows } = await download(server, client, 2 * MIB);
    expect(windows[0]).toBe(INITIAL_STREAM_WINDOW);
    server.close();
  });

  it('refuses a maxStreamWindow below the initial window', () => {
    const [st] = PipeTransport.pair();
    expect(() => new Session(st, { role: 'server', maxStreamWindow: 1024 })).toThrow(RangeError);
  });
});
