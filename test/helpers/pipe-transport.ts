import type { Transport, TransportHandler } from '../../dataplane/tunnel/transport';

/**
 * Two in-memory transports wired back to back, for unit tests of the session
 * logic. Delivery is asynchronous (as over a socket) and every byte sent is
 * recorded so tests can assert on the wire.
 */
export class PipeTransport implements Transport {
  peer: PipeTransport | undefined;
  handler: TransportHandler | undefined;
  readonly sent: Buffer[] = [];
  closed = false;
  /** Whether the session asked to drop what is queued rather than close gracefully. */
  aborted = false;
  bufferedAmount = 0;

  /** `delayMs` > 0 delivers each send that much later, in order: a link half a round trip long. */
  constructor(private readonly delayMs = 0) {}

  static pair(delayMs = 0): [PipeTransport, PipeTransport] {
    const a = new PipeTransport(delayMs);
    const b = new PipeTransport(delayMs);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  attach(handler: TransportHandler): void {
    this.handler = handler;
  }

  send(data: Buffer): boolean {
    if (this.closed) return false;
    this.sent.push(Buffer.from(data));
    const peer = this.peer;
    const copy = Buffer.from(data);
    const deliver = (): void => {
      if (peer && !peer.closed) peer.handler?.onData(copy);
    };
    if (this.delayMs > 0) setTimeout(deliver, this.delayMs);
    else setImmediate(deliver);
    return true;
  }

  /** Delivers raw bytes to this side as if the peer had sent them. */
  inject(data: Buffer): void {
    this.handler?.onData(data);
  }

  close(abort = false): void {
    if (this.closed) return;
    this.closed = true;
    this.aborted = abort;
    this.handler?.onClose();
    const peer = this.peer;
    setImmediate(() => {
      if (peer && !peer.closed) {
        peer.closed = true;
        peer.handler?.onClose();
      }
    });
  }
}
