import { setTimeout as delay } from 'node:timers/promises';
import { encodeHeader, FLAG_ACK, TYPE_WINDOW_UPDATE } from '../../../dataplane/tunnel/frame';
import { Session } from '../../../dataplane/tunnel/session';
import type { TunnelStream } from '../../../dataplane/tunnel/stream';
import type { Transport, TransportHandler } from '../../../dataplane/tunnel/transport';

// WebSocketTransport's mark: send() says false at or above it, onDrain fires when below it again.
const HIGH_WATER_MARK = 1024 * 1024;

/**
 * A transport whose socket writes complete only when the test says so, with
 * WebSocketTransport's drain contract: onDrain fires once per send() that
 * returned false, when the unsent bytes fall below the mark again.
 */
class SlowSocketTransport implements Transport {
  handler: TransportHandler | undefined;
  unsent = 0;
  private needDrain = false;
  readonly sent: Buffer[] = [];

  get bufferedAmount(): number {
    return this.unsent;
  }

  attach(handler: TransportHandler): void {
    this.handler = handler;
  }

  send(data: Buffer): boolean {
    this.sent.push(data);
    this.unsent += data.length;
    if (this.unsent >= HIGH_WATER_MARK) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** The socket wrote `bytes` more: the write callbacks of ws, one after another. */
  written(bytes: number): void {
    this.unsent -= bytes;
    if (this.needDrain && this.unsent < HIGH_WATER_MARK) {
      this.needDrain = false;
      this.handler?.onDrain();
    }
  }

  close(): void {
    this.handler?.onClose();
  }
}

async function openAcked(session: Session, transport: SlowSocketTransport): Promise<TunnelStream> {
  const opening = session.open();
  // The peer's ACK for the stream just opened (server ids: 2, 4, ...).
  const id = 2 + 2 * (session.streamCount - 1);
  transport.handler?.onData(encodeHeader(TYPE_WINDOW_UPDATE, FLAG_ACK, id, 0));
  return opening;
}

function writeDone(stream: TunnelStream, data: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => stream.write(data, (err) => (err ? reject(err) : resolve())));
}

describe('Session writers held back by a congested transport', () => {
  // Found by test/interop/go-agent-flow-control.test.ts: with 200 concurrent
  // uploads over one Go agent session, a dozen streams stayed parked in the
  // session's drain waiters forever, with nothing queued or unsent, so their
  // requests hung. This replays the interleaving that parks them.
  it('wakes every waiting stream once the transport has drained, even if one of them re-congested it first', async () => {
    const transport = new SlowSocketTransport();
    const session = new Session(transport, { role: 'server', keepaliveIntervalMs: 0 });
    const a = await openAcked(session, transport);
    const b = await openAcked(session, transport);
    await new Promise((resolve) => setImmediate(resolve));
    transport.written(transport.unsent);

    // The socket is slow: a full megabyte is still unsent (a send returned false).
    transport.send(Buffer.alloc(HIGH_WATER_MARK));
    const aDone = writeDone(a, Buffer.alloc(64 * 1024, 0xa));
    const bDone = writeDone(b, Buffer.alloc(64 * 1024, 0xb));

    // One write completes: below the mark, onDrain. Stream a resumes and its
    // frame is queued, which makes the session count as congested again, so b
    // is parked once more. Then the rest of the socket's batch completes in
    // the same callback run, with no further onDrain: the transport was never
    // above its mark after that.
    transport.written(1);
    transport.written(HIGH_WATER_MARK - 1);
    await aDone;
    await new Promise((resolve) => setImmediate(resolve));
    transport.written(transport.unsent);

    // Nothing else will ever write on this session, so b must go now or never.
    const bound = new AbortController();
    const bWritten = await Promise.race([
      bDone.then(() => 'written'),
      delay(1000, 'stuck', { signal: bound.signal }).catch(() => 'written'),
    ]);
    bound.abort();
    expect(bWritten).toBe('written');
    // Written frames leave in the session's next flush.
    await new Promise((resolve) => setImmediate(resolve));
    expect(transport.sent.some((frame) => frame.includes(Buffer.alloc(1024, 0xb)))).toBe(true);
    session.close();
  });
});
