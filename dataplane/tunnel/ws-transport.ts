import type WebSocket from 'ws';
import type { Transport, TransportHandler } from './transport';

// Above this many unsent bytes the session holds its writers back.
const HIGH_WATER_MARK = 1024 * 1024;

/**
 * Carries a yamux session over a WebSocket as Piko does: every send is one
 * binary message, and received message payloads are one continuous byte
 * stream. A text message breaks the session.
 */
export class WebSocketTransport implements Transport {
  private handler: TransportHandler | undefined;
  private unsent = 0;
  private needDrain = false;
  private closed = false;

  constructor(private readonly ws: WebSocket) {}

  get bufferedAmount(): number {
    return this.unsent;
  }

  attach(handler: TransportHandler): void {
    this.handler = handler;
    const ws = this.ws;
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (this.closed) return;
      if (!isBinary) {
        this.fail(new Error('text websocket message on a binary tunnel'));
        return;
      }
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (buf.length > 0) handler.onData(buf);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.closed) return;
      this.closed = true;
      // 1000/1001 are deliberate closes; 1005 means a close frame with no code,
      // and 1006 a dropped TCP connection, which is how Go Piko hangs up.
      if (code === 1000 || code === 1001 || code === 1005 || code === 1006) {
        handler.onClose();
      } else {
        handler.onClose(new Error(`websocket closed with code ${code}${reason.length ? `: ${reason.toString()}` : ''}`));
      }
    });
    ws.on('error', (err: Error) => this.fail(err));
  }

  send(data: Buffer): boolean {
    if (this.closed) return false;
    this.unsent += data.length;
    this.ws.send(data, { binary: true }, () => {
      this.unsent -= data.length;
      if (this.needDrain && this.unsent < HIGH_WATER_MARK) {
        this.needDrain = false;
        this.handler?.onDrain();
      }
    });
    if (this.unsent >= HIGH_WATER_MARK) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  close(abort = false): void {
    if (this.closed) return;
    this.closed = true;
    // A close frame behind the queued frames, so a GoAway sent just before
    // arrives; ws destroys the socket itself if the peer never answers it
    // (after 30 s, too long to hold the buffers of a peer that does not read).
    if (!abort && this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
    else this.ws.terminate();
    this.handler?.onClose();
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.terminate();
    this.handler?.onClose(err);
  }
}

/** ws's error for a message over its `maxPayload`; ws closes with 1009 after it. */
export function isMessageTooLarge(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
}
