import { EventEmitter } from 'node:events';
import { TunnelError } from './errors';
import {
  describeHeader,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  GO_AWAY_INTERNAL_ERROR,
  GO_AWAY_NORMAL,
  GO_AWAY_PROTOCOL_ERROR,
  HEADER_SIZE,
  INITIAL_STREAM_WINDOW,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_WINDOW_UPDATE,
  writeHeader,
  type FrameHeader,
  type FrameType,
} from './frame';
import { FrameReader, type FrameSink } from './frame-reader';
import { TunnelStream } from './stream';
import type { Transport } from './transport';
import { clampDelay } from '../time/timer';

export interface SessionOptions {
  /** The server opens even stream IDs, the client odd ones (Piko: the server opens all streams). */
  role: 'client' | 'server';
  /** Receive window granted to the peer per stream at its start; yamux's 256 KiB unless raised. */
  streamWindow?: number;
  /**
   * The most a stream's receive window grows to. A window caps one stream
   * at window / RTT (256 KiB at 50 ms: 5 MB/s), so a stream whose reader
   * keeps up with a window-limited sender gets its window doubled, as
   * HTTP/2 and QUIC stacks tune theirs (see TunnelStream). Equal to
   * streamWindow: no growth.
   */
  maxStreamWindow?: number;
  /** What the windows of one session's streams may grow by in all, beyond streamWindow each: its memory budget for distance. */
  windowGrowthBudget?: number;
  /** Interval between our pings; 0 turns keepalive off. Go yamux: 30 s. */
  keepaliveIntervalMs?: number;
  /** How long a ping may go unanswered before the session is declared dead. */
  keepaliveTimeoutMs?: number;
  /** How long `open()` waits for the peer's ACK. */
  openTimeoutMs?: number;
  /** Streams open at once, both directions; SYNs beyond it are refused with RST. */
  maxStreams?: number;
  /** After our FIN, how long the peer has to FIN before the stream is reset. */
  streamCloseTimeoutMs?: number;
  /** Outbound bytes the peer may leave unread before the session is given up. */
  maxBufferedBytes?: number;
  /**
   * Control frames (ping answers, window updates, resets) we may queue for a
   * peer while it leaves our writes unread. A peer that floods pings and
   * never reads makes us buffer an answer for each; Go's HTTP/2 server caps
   * the same queue at 10,000.
   */
  maxPendingControlFrames?: number;
}

/** A session limit, by the name of its server option, reported when it trips. */
export type SessionLimit = 'max_streams' | 'max_buffered_bytes' | 'max_pending_control_frames';

type ResolvedOptions = Required<Omit<SessionOptions, 'role'>>;

const DEFAULTS: ResolvedOptions = {
  streamWindow: INITIAL_STREAM_WINDOW,
  maxStreamWindow: 4 * 1024 * 1024,
  windowGrowthBudget: 32 * 1024 * 1024,
  keepaliveIntervalMs: 30_000,
  keepaliveTimeoutMs: 10_000,
  openTimeoutMs: 75_000,
  maxStreams: 4096,
  streamCloseTimeoutMs: 5 * 60_000,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxPendingControlFrames: 10_000,
};

// Frames queued in one tick are packed into one transport message up to this
// size; larger payloads go on their own so they are never copied.
const COALESCE_LIMIT = 64 * 1024;
// Streams stop writing while this much is queued and unsent.
const WRITE_HIGH_WATER_MARK = 1024 * 1024;
const MAX_STREAM_ID = 0xffffffff;
// An RTT older than this is measured again before windows grow on it.
const RTT_MAX_AGE_MS = 30_000;

export interface SessionEvents {
  /** A stream the peer opened; it is already acknowledged. */
  stream: [stream: TunnelStream];
  /** The peer sent GoAway(0): it will accept no new streams. */
  goaway: [];
  /** The session ended; `err` is unset only for a local, deliberate close. */
  close: [err: TunnelError | undefined];
  /** A limit refused something: a stream (the session goes on) or the session itself. */
  limit: [limit: SessionLimit];
}

interface PendingPing {
  resolve(rttMs: number): void;
  reject(err: Error): void;
  sentAt: number;
  timer: NodeJS.Timeout;
}

/**
 * One yamux session over a transport, wire compatible with hashicorp/yamux as
 * Piko uses it. Streams are Node Duplex streams with per-stream flow control.
 */
export class Session extends EventEmitter<SessionEvents> {
  readonly role: 'client' | 'server';
  readonly options: ResolvedOptions;

  private readonly streams = new Map<number, TunnelStream>();
  private readonly reader: FrameReader;
  private nextStreamId: number;
  private nextPingId = 0;
  private readonly pings = new Map<number, PendingPing>();
  private keepaliveTimer: NodeJS.Timeout | undefined;
  // The last round trip measured (a ping), and whether one is under way:
  // window growth needs it, and it is measured only once a stream asks.
  private rttMs: number | undefined;
  private rttAt = 0;
  private rttPending = false;
  private windowGrown = 0;

  private outQueue: Buffer[] = [];
  private outBytes = 0;
  // Control frames queued since the peer last kept up with our writes.
  private pendingControlFrames = 0;
  private flushScheduled = false;
  private readonly drainWaiters = new Set<TunnelStream>();

  // The Data frame whose payload is being read, and where it goes.
  private dataTarget: TunnelStream | undefined;
  private dataLeft = 0;
  private deferredFlags = 0;

  private localGoAway = false;
  private remoteGoAway = false;
  private closedWith: { err: TunnelError | undefined } | undefined;

  constructor(
    private readonly transport: Transport,
    options: SessionOptions,
  ) {
    super();
    this.role = options.role;
    this.options = { ...DEFAULTS, ...stripUndefined(options) };
    if (this.options.streamWindow < INITIAL_STREAM_WINDOW) {
      throw new RangeError(`streamWindow must be at least ${INITIAL_STREAM_WINDOW}`);
    }
    if (this.options.maxStreamWindow < this.options.streamWindow) {
      throw new RangeError(`maxStreamWindow must be at least streamWindow (${this.options.streamWindow})`);
    }
    this.nextStreamId = this.role === 'client' ? 1 : 2;
    this.reader = new FrameReader(this.frameSink(), this.options.maxStreamWindow);
    transport.attach({
      onData: (data) => this.receive(data),
      onDrain: () => this.wakeWriters(),
      onClose: (err) =>
        this.close(
          err === undefined
            ? new TunnelError('ERR_YAMUX_SESSION_CLOSED', 'transport closed by peer')
            : new TunnelError('ERR_TRANSPORT', `transport failed: ${err.message}`, { cause: err }),
        ),
    });
    if (this.options.keepaliveIntervalMs > 0) {
      this.keepaliveTimer = setInterval(() => this.keepalive(), clampDelay(this.options.keepaliveIntervalMs));
      this.keepaliveTimer.unref();
    }
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** The error the session ended with, once closed. */
  get closeReason(): TunnelError | undefined {
    return this.closedWith?.err;
  }

  /** True once the peer said GoAway: no new streams may be opened towards it. */
  get goneAway(): boolean {
    return this.remoteGoAway;
  }

  /** True while new streams can be opened towards the peer. */
  get available(): boolean {
    return !this.closed && !this.remoteGoAway;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * Opens a stream and resolves once the peer has acknowledged it. Waiting
   * for the ACK costs one round trip, and buys the certainty that a refused
   * stream carried no byte of the caller's request, so it can be retried.
   * With `early` it resolves at once, as Go's yamux OpenStream returns:
   * what the caller writes follows the SYN within the initial window, and a
   * refusal arrives as an ERR_YAMUX_STREAM_REFUSED error on the stream
   * (the peer dropped those bytes unread), so a caller that kept what it
   * wrote can still send it elsewhere.
   */
  open(options: { early?: boolean } = {}): Promise<TunnelStream> {
    if (this.closedWith) {
      return Promise.reject(sessionClosedError(this.closedWith.err));
    }
    if (this.remoteGoAway) {
      return Promise.reject(new TunnelError('ERR_YAMUX_GOAWAY', 'peer sent go away'));
    }
    if (this.streams.size >= this.options.maxStreams) {
      this.emit('limit', 'max_streams');
      return Promise.reject(new TunnelError('ERR_YAMUX_TOO_MANY_STREAMS', `session has ${this.streams.size} open streams`));
    }
    const id = this.nextStreamId;
    if (id > MAX_STREAM_ID) {
      return Promise.reject(new TunnelError('ERR_YAMUX_TOO_MANY_STREAMS', 'stream ids exhausted'));
    }
    this.nextStreamId += 2;
    const stream = new TunnelStream(this, id);
    this.streams.set(id, stream);
    this.writeFrame(TYPE_WINDOW_UPDATE, FLAG_SYN, id, this.options.streamWindow - INITIAL_STREAM_WINDOW);
    return stream.waitForAck(this.options.openTimeoutMs, options.early ?? false);
  }

  /**
   * @internal How much a stream's receive window grows at a window update:
   * doubled (within maxStreamWindow and what is left of the budget) when
   * its reader took the last half window in under two round trips, which
   * means the sender was waiting on the window, not on us; else nothing.
   * Without a recent RTT it starts measuring one and grows nothing yet.
   */
  windowGrowth(window: number, epochMs: number): number {
    const { maxStreamWindow, windowGrowthBudget } = this.options;
    if (window >= maxStreamWindow) return 0;
    const now = performance.now();
    if ((this.rttMs === undefined || now - this.rttAt > RTT_MAX_AGE_MS) && !this.rttPending && !this.closedWith) {
      this.rttPending = true;
      this.ping()
        .catch(() => undefined)
        .finally(() => (this.rttPending = false));
    }
    if (this.rttMs === undefined || epochMs >= 2 * this.rttMs) return 0;
    const grow = Math.min(window, maxStreamWindow - window, windowGrowthBudget - this.windowGrown);
    if (grow <= 0) return 0;
    this.windowGrown += grow;
    return grow;
  }

  /** Bytes the session's stream windows have grown by, in all (at most windowGrowthBudget). */
  get windowGrowthInUse(): number {
    return this.windowGrown;
  }

  /** @internal A stream that ends gives back what its window grew by. */
  releaseWindowGrowth(bytes: number): void {
    this.windowGrown -= bytes;
  }

  /** Measures one round trip with a yamux ping. */
  ping(timeoutMs = this.options.keepaliveTimeoutMs): Promise<number> {
    if (this.closedWith) return Promise.reject(sessionClosedError(this.closedWith.err));
    const id = this.nextPingId;
    this.nextPingId = (this.nextPingId + 1) >>> 0;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new TunnelError('ERR_YAMUX_KEEPALIVE_TIMEOUT', `ping ${id} unanswered after ${timeoutMs} ms`));
      }, clampDelay(timeoutMs));
      timer.unref();
      this.pings.set(id, { resolve, reject, sentAt: performance.now(), timer });
      this.writeFrame(TYPE_PING, FLAG_SYN, 0, id);
    });
  }

  /**
   * Tells the peer to open no more streams to us (GoAway, normal). Streams
   * already open carry on; this is how a listener closes gracefully.
   */
  goAway(): void {
    if (this.closedWith || this.localGoAway) return;
    this.localGoAway = true;
    this.writeFrame(TYPE_GO_AWAY, 0, 0, GO_AWAY_NORMAL);
  }

  /**
   * Ends the session at once: every stream fails with `err` (or a plain
   * session-closed error), queued frames are flushed, the transport closed.
   */
  close(err?: TunnelError): void {
    if (this.closedWith) return;
    this.closedWith = { err };
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    for (const ping of this.pings.values()) {
      clearTimeout(ping.timer);
      ping.reject(sessionClosedError(err));
    }
    this.pings.clear();
    // A deliberate local close ends streams quietly, like destroy(); a failure
    // or a remote close reaches each stream's owner as an error.
    const streamErr = err === undefined ? undefined : sessionClosedError(err);
    for (const stream of [...this.streams.values()]) stream.sessionClosed(streamErr);
    this.streams.clear();
    this.drainWaiters.clear();
    // A peer that stopped reading (congested) or answering (keepalive) would
    // not read a close handshake either: waiting for it holds every buffer.
    const abort = err?.code === 'ERR_YAMUX_CONGESTED' || err?.code === 'ERR_YAMUX_KEEPALIVE_TIMEOUT';
    if (abort) {
      this.outQueue = [];
      this.outBytes = 0;
    } else {
      this.flush();
    }
    this.transport.close(abort);
    this.emit('close', err);
  }

  // ---- used by TunnelStream ------------------------------------------------

  /** @internal */
  get congested(): boolean {
    return this.outBytes + this.transport.bufferedAmount >= WRITE_HIGH_WATER_MARK;
  }

  /** @internal Called by a stream that wants to write once the transport drains. */
  waitForDrain(stream: TunnelStream): void {
    this.drainWaiters.add(stream);
  }

  /** @internal */
  writeFrame(type: FrameType, flags: number, streamId: number, length: number, payload?: Buffer): void {
    if (this.closedWith) return;
    if (type !== TYPE_DATA && this.congested && ++this.pendingControlFrames > this.options.maxPendingControlFrames) {
      this.emit('limit', 'max_pending_control_frames');
      this.close(new TunnelError('ERR_YAMUX_CONGESTED', `peer left ${this.pendingControlFrames} control frames unread`));
      return;
    }
    if (payload === undefined || payload.length < COALESCE_LIMIT) {
      const frame = Buffer.allocUnsafe(HEADER_SIZE + (payload?.length ?? 0));
      writeHeader(frame, 0, type, flags, streamId, length);
      if (payload) payload.copy(frame, HEADER_SIZE);
      this.enqueue(frame);
    } else {
      const header = Buffer.allocUnsafe(HEADER_SIZE);
      writeHeader(header, 0, type, flags, streamId, length);
      this.enqueue(header);
      this.enqueue(payload);
    }
  }

  /** @internal */
  removeStream(stream: TunnelStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.drainWaiters.delete(stream);
  }

  /** @internal A peer misbehaved on a stream in a way that breaks the session. */
  protocolError(message: string, code: 'ERR_YAMUX_PROTOCOL' | 'ERR_YAMUX_WINDOW_EXCEEDED' = 'ERR_YAMUX_PROTOCOL'): never {
    throw new TunnelError(code, message);
  }

  // ---- inbound -------------------------------------------------------------

  private receive(data: Buffer): void {
    if (this.closedWith) return;
    try {
      this.reader.push(data);
    } catch (err) {
      const tunnelErr =
        err instanceof TunnelError ? err : new TunnelError('ERR_YAMUX_PROTOCOL', `frame handling failed: ${String(err)}`, { cause: err });
      // Tell a well-behaved peer why before hanging up, as Go yamux does.
      this.writeFrame(
        TYPE_GO_AWAY,
        0,
        0,
        tunnelErr.code === 'ERR_YAMUX_PROTOCOL' || tunnelErr.code === 'ERR_YAMUX_WINDOW_EXCEEDED'
          ? GO_AWAY_PROTOCOL_ERROR
          : GO_AWAY_INTERNAL_ERROR,
      );
      this.close(tunnelErr);
    }
  }

  private frameSink(): FrameSink {
    return {
      onFrame: (h) => {
        switch (h.type) {
          case TYPE_DATA:
          case TYPE_WINDOW_UPDATE:
            this.onStreamFrame(h);
            return;
          case TYPE_PING:
            this.onPing(h);
            return;
          case TYPE_GO_AWAY:
            this.onGoAway(h);
            return;
        }
      },
      onData: (_h, chunk) => {
        this.dataLeft -= chunk.length;
        const target = this.dataTarget;
        if (target) target.receiveData(chunk);
        if (this.dataLeft === 0) this.finishDataFrame();
      },
    };
  }

  private onStreamFrame(h: FrameHeader): void {
    let stream = this.streams.get(h.streamId);
    if ((h.flags & FLAG_SYN) !== 0) {
      stream = this.acceptStream(h, stream);
    }
    if (h.type === TYPE_WINDOW_UPDATE) {
      if (!stream) return;
      stream.receiveFlags(h.flags & ~FLAG_SYN);
      if (h.length > 0) stream.growSendWindow(h.length);
      return;
    }
    // Data: ACK now, FIN and RST only after the payload, which was sent before them.
    if (stream && (h.flags & FLAG_ACK) !== 0) stream.receiveFlags(FLAG_ACK);
    if (stream) stream.reserveReceive(h.length);
    this.dataTarget = stream;
    this.dataLeft = h.length;
    this.deferredFlags = h.flags & (FLAG_FIN | FLAG_RST);
    if (h.length === 0) this.finishDataFrame();
  }

  private finishDataFrame(): void {
    const target = this.dataTarget;
    const flags = this.deferredFlags;
    this.dataTarget = undefined;
    this.deferredFlags = 0;
    if (target && flags !== 0) target.receiveFlags(flags);
  }

  private acceptStream(h: FrameHeader, existing: TunnelStream | undefined): TunnelStream | undefined {
    if (h.streamId === 0) this.protocolError('SYN on stream 0');
    if (existing) this.protocolError(`duplicate SYN for stream ${h.streamId}`);
    const peerParity = this.role === 'client' ? 0 : 1;
    if (h.streamId % 2 !== peerParity) {
      this.protocolError(`peer opened stream ${h.streamId} with our parity`);
    }
    const full = this.streams.size >= this.options.maxStreams;
    if (full) this.emit('limit', 'max_streams');
    if (this.localGoAway || this.listenerCount('stream') === 0 || full) {
      this.writeFrame(TYPE_WINDOW_UPDATE, FLAG_RST, h.streamId, 0);
      return undefined;
    }
    const stream = new TunnelStream(this, h.streamId, true);
    this.streams.set(h.streamId, stream);
    this.writeFrame(TYPE_WINDOW_UPDATE, FLAG_ACK, h.streamId, this.options.streamWindow - INITIAL_STREAM_WINDOW);
    this.emit('stream', stream);
    return stream;
  }

  private onPing(h: FrameHeader): void {
    if ((h.flags & FLAG_SYN) !== 0) {
      this.writeFrame(TYPE_PING, FLAG_ACK, 0, h.length);
      return;
    }
    if ((h.flags & FLAG_ACK) !== 0) {
      const ping = this.pings.get(h.length);
      if (!ping) return;
      this.pings.delete(h.length);
      clearTimeout(ping.timer);
      const rtt = performance.now() - ping.sentAt;
      this.rttMs = rtt;
      this.rttAt = performance.now();
      ping.resolve(rtt);
    }
  }

  private onGoAway(h: FrameHeader): void {
    if (h.length === GO_AWAY_NORMAL) {
      if (this.remoteGoAway) return;
      this.remoteGoAway = true;
      this.emit('goaway');
      return;
    }
    const reason =
      h.length === GO_AWAY_PROTOCOL_ERROR ? 'protocol error' : h.length === GO_AWAY_INTERNAL_ERROR ? 'internal error' : `code ${h.length}`;
    this.close(new TunnelError('ERR_YAMUX_REMOTE_ERROR', `peer ended the session: ${reason} (${describeHeader(h)})`));
  }

  private keepalive(): void {
    this.ping().catch((err: unknown) => {
      if (this.closedWith) return;
      this.close(err instanceof TunnelError ? err : new TunnelError('ERR_YAMUX_KEEPALIVE_TIMEOUT', 'keepalive failed', { cause: err }));
    });
  }

  // ---- outbound ------------------------------------------------------------

  private enqueue(buf: Buffer): void {
    this.outQueue.push(buf);
    this.outBytes += buf.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Frames produced in one turn of the event loop (a request head, its
      // body, its FIN, and under load those of every stream served in the
      // same I/O phase) leave as one transport message: one write system call
      // instead of one per frame, which profiling showed as the largest cost.
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const queue = this.outQueue;
    if (queue.length === 0) return;
    this.outQueue = [];
    this.outBytes = 0;
    let run: Buffer[] = [];
    let runBytes = 0;
    const sendRun = (): void => {
      if (run.length === 0) return;
      this.transport.send(run.length === 1 ? (run[0] as Buffer) : Buffer.concat(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const buf of queue) {
      if (buf.length >= COALESCE_LIMIT) {
        sendRun();
        this.transport.send(buf);
      } else {
        if (runBytes + buf.length > COALESCE_LIMIT) sendRun();
        run.push(buf);
        runBytes += buf.length;
      }
    }
    sendRun();
    // Writers may have backed off for frames that were only queued in this
    // tick; if the transport took them without filling up, it will send no
    // drain event, so wake them here.
    if (this.drainWaiters.size > 0 && !this.congested) this.wakeWriters();
    if (!this.congested) this.pendingControlFrames = 0;
    if (!this.closedWith && this.transport.bufferedAmount > this.options.maxBufferedBytes) {
      this.emit('limit', 'max_buffered_bytes');
      this.close(new TunnelError('ERR_YAMUX_CONGESTED', `peer left ${this.transport.bufferedAmount} bytes unread`));
    }
  }

  private wakeWriters(): void {
    if (this.drainWaiters.size === 0) return;
    const waiters = [...this.drainWaiters];
    this.drainWaiters.clear();
    for (const stream of waiters) {
      if (this.congested) {
        this.drainWaiters.add(stream);
      } else {
        stream.resumeWrite();
      }
    }
  }
}

function sessionClosedError(cause: TunnelError | undefined): TunnelError {
  return new TunnelError('ERR_YAMUX_SESSION_CLOSED', cause ? `session closed: ${cause.message}` : 'session closed', {
    cause,
  });
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}
