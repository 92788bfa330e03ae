import { Duplex } from 'node:stream';
import { TunnelError } from './errors';
import { FLAG_ACK, FLAG_FIN, FLAG_RST, INITIAL_STREAM_WINDOW, TYPE_DATA, TYPE_WINDOW_UPDATE } from './frame';
import type { Session } from './session';
import { clampDelay } from '../time/timer';

// A grown window does not make frames bigger than an ungrown one allows:
// every peer (and its WebSocket message limit) already takes this size.
const MAX_DATA_FRAME = INITIAL_STREAM_WINDOW;

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  callback: (err?: Error | null) => void;
}

interface AckWaiter {
  resolve(stream: TunnelStream): void;
  reject(err: TunnelError): void;
  timer: NodeJS.Timeout;
  /** The opener already has the stream; failures reach it as stream errors. */
  early: boolean;
}

/**
 * One yamux stream as a Node Duplex. Flow control is real in both directions:
 * we never send past the peer's window, and we grant window back only as our
 * reader consumes, so a slow reader slows the writer at the far end.
 *
 * It also carries the few net.Socket methods that Node's HTTP client and
 * server call, so `http.createServer().emit('connection', stream)` and
 * `http.request({ createConnection })` work on it.
 */
export class TunnelStream extends Duplex {
  readonly id: number;

  private sendWindow = INITIAL_STREAM_WINDOW;
  private pending: PendingWrite | undefined;

  // Credit we have granted and the peer has not used yet.
  private recvCredit = INITIAL_STREAM_WINDOW;
  // What we let the peer have in flight: streamWindow, grown by the session's rule.
  private recvWindow: number;
  // When the last window update went out (or the stream began).
  private epochStart = performance.now();
  // Bytes our reader took that have not been granted back yet.
  private consumed = 0;
  private readonly recvQueue: Buffer[] = [];
  private wantsRead = false;

  private localFin = false;
  private remoteFin = false;
  private reset = false;
  private ackWaiter: AckWaiter | undefined;
  // Until the peer's ACK, a RST means it never took the stream: whatever we
  // wrote on it was dropped unread, so the caller may send it elsewhere.
  private acked: boolean;
  private closeTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleTimeoutMs = 0;

  constructor(
    private readonly session: Session,
    id: number,
    /** True for a stream the peer opened: we acknowledge it as we create it. */
    acked = false,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.id = id;
    this.acked = acked;
    // A peer can reset a stream in the same read that acknowledges it, before
    // whoever opened it has had a turn to listen. An 'error' with no listener
    // would then take the whole process down for one hostile upstream; the
    // owner still learns of it from 'close', `errored` and failed writes.
    this.on('error', () => undefined);
    this.recvCredit = session.options.streamWindow;
    this.recvWindow = session.options.streamWindow;
  }

  // ---- net.Socket look-alikes ---------------------------------------------

  readonly remoteAddress: string | undefined = undefined;
  readonly remotePort: number | undefined = undefined;
  readonly localAddress: string | undefined = undefined;
  readonly localPort: number | undefined = undefined;

  /** Like net.Socket#setTimeout: emits 'timeout' after `ms` without traffic. */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleTimeoutMs = ms;
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.touch();
    return this;
  }

  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  // ---- Duplex ---------------------------------------------------------------

  override _read(): void {
    this.wantsRead = true;
    this.deliver();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.startWrite(chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    // Node's HTTP writes a head and a body chunk separately; one frame is cheaper than two.
    const chunk = chunks.length === 1 ? (chunks[0] as { chunk: Buffer }).chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.startWrite(chunk, callback);
  }

  private startWrite(chunk: Buffer, callback: (err?: Error | null) => void): void {
    this.pending = { chunk, offset: 0, callback };
    this.resumeWrite();
  }

  override end(...args: unknown[]): this {
    // Node's HTTP server ends a socket once its peer has ended, even when our
    // side finished already; Writable.end would then build an error, stack
    // trace and all, on every request only to drop it.
    if (this.writableEnded && (args.length === 0 || typeof args[0] === 'function')) {
      const callback = args.find((a): a is () => void => typeof a === 'function');
      if (callback) process.nextTick(callback);
      return this;
    }
    return (Duplex.prototype.end as (...a: unknown[]) => this).apply(this, args);
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.reset || this.session.closed) {
      callback(new TunnelError('ERR_YAMUX_STREAM_RESET', `stream ${this.id} was reset`));
      return;
    }
    this.localFin = true;
    this.session.writeFrame(TYPE_WINDOW_UPDATE, FLAG_FIN, this.id, 0);
    if (this.remoteFin) {
      this.release();
    } else {
      // A peer that never closes its side must not pin the stream forever.
      this.closeTimer = setTimeout(() => {
        this.destroy(new TunnelError('ERR_YAMUX_STREAM_RESET', `stream ${this.id}: peer did not close in time`));
      }, clampDelay(this.session.options.streamCloseTimeoutMs));
      this.closeTimer.unref();
    }
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const open = !(this.localFin && this.remoteFin) && !this.reset;
    if (open && !this.session.closed) {
      this.reset = true;
      this.session.writeFrame(TYPE_WINDOW_UPDATE, FLAG_RST, this.id, 0);
    }
    this.release();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.pending) {
      const { callback: writeCallback } = this.pending;
      this.pending = undefined;
      writeCallback(err ?? new TunnelError('ERR_YAMUX_STREAM_RESET', `stream ${this.id} destroyed`));
    }
    if (this.ackWaiter) this.failOpen(new TunnelError('ERR_YAMUX_STREAM_RESET', `stream ${this.id} destroyed before ACK`));
    callback(err);
  }

  // ---- driven by the session -----------------------------------------------

  /** Whether the peer has accepted the stream (always, for one it opened). */
  get accepted(): boolean {
    return this.acked;
  }

  /**
   * @internal Resolves once the peer accepts, or, with `early`, at once: the
   * caller then writes within the initial window while the SYN travels, and
   * learns of a refusal as an ERR_YAMUX_STREAM_REFUSED error on the stream.
   */
  waitForAck(timeoutMs: number, early: boolean): Promise<TunnelStream> {
    return new Promise<TunnelStream>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new TunnelError('ERR_YAMUX_OPEN_TIMEOUT', `stream ${this.id} not acknowledged within ${timeoutMs} ms`);
        const waiter = this.ackWaiter;
        this.failOpen(err);
        if (waiter?.early) this.destroy(err);
        else this.destroy();
      }, clampDelay(timeoutMs));
      timer.unref();
      if (early) {
        this.ackWaiter = { resolve: () => undefined, reject: () => undefined, timer, early: true };
        resolve(this);
      } else {
        this.ackWaiter = { resolve, reject, timer, early: false };
      }
    });
  }

  /** @internal */
  receiveFlags(flags: number): void {
    if ((flags & FLAG_ACK) !== 0) {
      this.acked = true;
      const waiter = this.ackWaiter;
      if (waiter) {
        this.ackWaiter = undefined;
        clearTimeout(waiter.timer);
        waiter.resolve(this);
      }
    }
    if ((flags & FLAG_RST) !== 0) {
      this.reset = true;
      const refused = new TunnelError('ERR_YAMUX_STREAM_REFUSED', `peer refused stream ${this.id}`);
      if (this.ackWaiter && !this.ackWaiter.early) {
        this.failOpen(refused);
        this.destroy();
      } else if (!this.acked) {
        this.failOpen(refused);
        this.destroy(refused);
      } else {
        this.destroy(new TunnelError('ERR_YAMUX_STREAM_RESET', `peer reset stream ${this.id}`));
      }
      return;
    }
    if ((flags & FLAG_FIN) !== 0 && !this.remoteFin) {
      this.remoteFin = true;
      if (this.recvQueue.length === 0) this.push(null);
      if (this.localFin) this.release();
    }
  }

  /** @internal Checks a Data frame's size against the credit we granted. */
  reserveReceive(length: number): void {
    if (length > this.recvCredit) {
      this.session.protocolError(
        `stream ${this.id}: peer sent ${length} bytes with ${this.recvCredit} bytes of window`,
        'ERR_YAMUX_WINDOW_EXCEEDED',
      );
    }
    if (length > 0 && this.remoteFin) {
      this.session.protocolError(`stream ${this.id}: data after FIN`);
    }
    this.recvCredit -= length;
  }

  /** @internal */
  receiveData(chunk: Buffer): void {
    if (this.destroyed) return;
    this.touch();
    this.recvQueue.push(chunk);
    if (this.wantsRead) this.deliver();
  }

  /** @internal */
  growSendWindow(delta: number): void {
    this.sendWindow += delta;
    if (this.pending) this.resumeWrite();
  }

  /** @internal Sends as much of the pending write as window and transport allow. */
  resumeWrite(): void {
    const pending = this.pending;
    if (!pending) return;
    if (this.reset || this.session.closed) {
      this.pending = undefined;
      pending.callback(new TunnelError('ERR_YAMUX_STREAM_RESET', `stream ${this.id} is closed`));
      return;
    }
    while (pending.offset < pending.chunk.length) {
      if (this.sendWindow === 0) return; // growSendWindow resumes us
      if (this.session.congested) {
        this.session.waitForDrain(this);
        return;
      }
      const n = Math.min(this.sendWindow, pending.chunk.length - pending.offset, MAX_DATA_FRAME);
      const payload =
        pending.offset === 0 && n === pending.chunk.length ? pending.chunk : pending.chunk.subarray(pending.offset, pending.offset + n);
      this.session.writeFrame(TYPE_DATA, 0, this.id, n, payload);
      this.sendWindow -= n;
      pending.offset += n;
    }
    this.touch();
    this.pending = undefined;
    pending.callback();
  }

  /** @internal */
  sessionClosed(err: TunnelError | undefined): void {
    this.reset = true;
    if (this.ackWaiter && !this.ackWaiter.early) {
      this.failOpen(err ?? new TunnelError('ERR_YAMUX_SESSION_CLOSED', 'session closed'));
      this.destroy();
    } else if (!(this.localFin && this.remoteFin)) {
      this.destroy(err);
    }
  }

  // ---- helpers ---------------------------------------------------------------

  // Moves queued bytes into the Readable buffer until it is full. Chunks go
  // whole (at most one window), so unread data per stream stays under two
  // windows; cutting them to the mark would leave Readable's `reading` flag
  // set with nothing pushed, and stall the stream.
  private deliver(): void {
    const queue = this.recvQueue;
    while (this.wantsRead && queue.length > 0) {
      const chunk = queue.shift() as Buffer;
      this.wantsRead = this.push(chunk);
      this.markConsumed(chunk.length);
    }
    if (queue.length === 0 && this.remoteFin) this.push(null);
  }

  private markConsumed(n: number): void {
    this.consumed += n;
    // Like Go yamux: grant window back once half of it has been read, so
    // updates are few and the sender never stalls on a full window.
    if (!this.remoteFin && this.consumed >= this.recvWindow / 2) {
      const now = performance.now();
      const grow = this.session.windowGrowth(this.recvWindow, now - this.epochStart);
      this.epochStart = now;
      this.recvWindow += grow;
      const delta = this.consumed + grow;
      this.consumed = 0;
      this.recvCredit += delta;
      this.session.writeFrame(TYPE_WINDOW_UPDATE, 0, this.id, delta);
    }
  }

  private failOpen(err: TunnelError): void {
    const waiter = this.ackWaiter;
    if (!waiter) return;
    this.ackWaiter = undefined;
    clearTimeout(waiter.timer);
    waiter.reject(err);
  }

  /** The receive window the peer may fill: streamWindow, or more once grown. */
  get receiveWindow(): number {
    return this.recvWindow;
  }

  private release(): void {
    const grown = this.recvWindow - this.session.options.streamWindow;
    if (grown > 0) {
      this.session.releaseWindowGrowth(grown);
      this.recvWindow = this.session.options.streamWindow;
    }
    if (this.closeTimer) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
    this.session.removeStream(this);
  }

  private touch(): void {
    if (this.idleTimeoutMs <= 0) {
      if (this.idleTimer) {
        clearTimeout(this.idleTimer);
        this.idleTimer = undefined;
      }
      return;
    }
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.emit('timeout');
    }, clampDelay(this.idleTimeoutMs));
    this.idleTimer.unref();
  }
}
