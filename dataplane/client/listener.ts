import { EventEmitter, on } from 'node:events';
import type tls from 'node:tls';
import type WebSocket from 'ws';
import { silentClientLogger, type ClientLogger } from './client-logger';
import { Session } from '../tunnel/session';
import type { TunnelError } from '../tunnel/errors';
import type { TunnelStream } from '../tunnel/stream';
import { WebSocketTransport } from '../tunnel/ws-transport';
import { Backoff, sleep } from '../time/backoff';
import { ClientError, isClientError } from './errors';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, openWebSocket, type PeerAddress } from './websocket-connect';
import { DEFAULT_UPSTREAM_URL, redactUrl, upstreamUrl } from './urls';
import { clampDelay } from '../time/timer';

/** One connection routed to the endpoint: a yamux stream, usable as a net.Socket by Node's HTTP server. */
export type Connection = TunnelStream;

export interface ListenOptions {
  /** Base URL of the server's upstream port; `/piko/v1/upstream/<id>` is appended. Default http://localhost:8001. */
  url?: string;
  /**
   * JWT sent as `Authorization: Bearer`. A function is asked again at every
   * connection attempt, for credentials that rotate (see `rotate()`).
   */
  token?: string | (() => string);
  /** Sent as `x-piko-tenant-id` (Piko's experimental tenants). */
  tenantId?: string;
  /** For https/wss URLs: CA, client certificate (mTLS), servername, rejectUnauthorized. */
  tls?: tls.ConnectionOptions;
  /** HTTP proxy to reach the server through (CONNECT); http or https URL, credentials allowed. */
  proxyUrl?: string;
  /** First reconnect delay. Default 100 ms. */
  minReconnectBackoffMs?: number;
  /** Largest reconnect delay before jitter. Default 15 s. */
  maxReconnectBackoffMs?: number;
  /** Limit on the first connection; `listen` rejects with ERR_CLIENT_TIMEOUT after it. Default: none. */
  connectTimeoutMs?: number;
  /** Limit on one WebSocket handshake. Default 60 s, as Piko's Go client. */
  handshakeTimeoutMs?: number;
  /**
   * Interval of the yamux pings that find a dead connection (one that
   * stopped answering without closing: a NAT that dropped its mapping, a
   * peer frozen half-open). Default 30 s, as Go yamux; 0 turns them off.
   */
  keepaliveIntervalMs?: number;
  /** How long a ping may go unanswered before the connection is given up and replaced. Default 10 s. */
  keepaliveTimeoutMs?: number;
  /** Defaults to a silent logger. Records use subsystem `client`. */
  logger?: ClientLogger;
  /** Aborts the first connection (rejecting `listen`); once listening, aborting closes the listener gracefully. */
  signal?: AbortSignal;
}

export interface ReconnectInfo {
  /** `disconnected`: the session died; `goaway`: the server asked us to move; `retry`: an attempt failed. */
  reason: 'disconnected' | 'goaway' | 'retry';
  /** Delay before the next attempt; 0 after a GoAway. */
  delayMs: number;
  /** What ended the session or failed the last attempt. */
  error?: Error;
}

export interface ListenerEvents {
  /** A connection routed to this endpoint. */
  connection: [conn: Connection];
  /** A session is up (again). */
  connected: [];
  /** The session is gone or being replaced; another attempt follows after `delayMs`. */
  reconnecting: [info: ReconnectInfo];
  /**
   * A reconnect failed in a way retrying cannot fix (such as 401 after the
   * token expired); the listener is closed. Emitted only when someone
   * listens, so an unattended listener does not crash the process; `close`
   * follows either way.
   */
  error: [err: ClientError];
  /** The listener is closed for good; `err` is set when a failure closed it. */
  close: [err?: ClientError];
}

export interface CloseOptions {
  /** After this long, connections still open are cut. Default: wait for all of them. */
  timeoutMs?: number;
}

// A session that lasted this long counts as healthy: the next disconnection
// starts again from the minimum backoff. Shorter ones keep the backoff
// growing, so a server that accepts and drops at once is not hammered.
const STABLE_SESSION_MS = 10_000;
// A refused connection is retried at least this often, however long the backoff has grown: a
// refusal costs the server nothing (the kernel answers it), and behind a Kubernetes Service it is
// the sign of a pod going away, whose endpoint the next attempt most likely no longer meets.
// Measured on the real node: with plain doubling, agents whose pod crashed took ~6 s to return.
const REFUSED_RETRY_CAP_MS = 1_000;
// Connections kept while no 'connection' handler is attached, as Go yamux's accept backlog.
const ACCEPT_BACKLOG = 256;

type State = 'connecting' | 'open' | 'closing' | 'closed';

interface ResolvedOptions {
  wsUrl: string;
  /** Asked at every attempt: the token may have rotated since the last one. */
  headers: () => Record<string, string>;
  tls: tls.ConnectionOptions | undefined;
  proxyUrl: string | undefined;
  handshakeTimeoutMs: number;
  keepalive: { keepaliveIntervalMs?: number; keepaliveTimeoutMs?: number };
}

/**
 * Listens on one endpoint over an outbound WebSocket to the Piko server's
 * upstream port, reconnecting for as long as it is open. Connections
 * arrive as `connection` events or by async iteration; both may be used.
 */
export class Listener extends EventEmitter<ListenerEvents> implements AsyncIterable<Connection> {
  readonly endpointId: string;
  private readonly options: ResolvedOptions;
  private readonly log: ClientLogger;
  private readonly backoff: Backoff;
  private state: State = 'connecting';
  /** The session new connections are expected on; undefined while (re)connecting. */
  private current: Session | undefined;
  /** Every live session: the current one and any the server told to go away that still carry connections. */
  private readonly sessions = new Set<Session>();
  /** Sessions replaced by `rotate()`: each closes once it carries no connection. */
  private readonly retiring = new Set<Session>();
  private readonly streams = new Set<TunnelStream>();
  private readonly backlog: TunnelStream[] = [];
  /** Aborted on close/destroy: cancels connect attempts and backoff waits. */
  private readonly stopped = new AbortController();
  private reconnecting = false;
  private closing: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private closeDeadline: ((timeoutMs: number) => void) | undefined;
  private userSignal: { signal: AbortSignal; onAbort: () => void } | undefined;
  private endpointUrl: string | undefined;

  /** Use `listen()`, which also makes the first connection. */
  constructor(endpointId: string, options: ListenOptions = {}) {
    super();
    this.endpointId = endpointId;
    const { token, tenantId } = options;
    const headers = (): Record<string, string> => {
      const out: Record<string, string> = {};
      const value = typeof token === 'function' ? token() : token;
      if (value) out.authorization = `Bearer ${value}`;
      if (tenantId) out['x-piko-tenant-id'] = tenantId;
      return out;
    };
    this.options = {
      wsUrl: upstreamUrl(options.url ?? DEFAULT_UPSTREAM_URL, endpointId),
      headers,
      tls: options.tls,
      proxyUrl: options.proxyUrl,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      keepalive: {
        ...(options.keepaliveIntervalMs === undefined ? {} : { keepaliveIntervalMs: options.keepaliveIntervalMs }),
        ...(options.keepaliveTimeoutMs === undefined ? {} : { keepaliveTimeoutMs: options.keepaliveTimeoutMs }),
      },
    };
    this.backoff = new Backoff({
      minMs: options.minReconnectBackoffMs ?? 100,
      maxMs: options.maxReconnectBackoffMs ?? 15_000,
    });
    this.log = (options.logger ?? silentClientLogger()).child({ subsystem: 'client', endpointId });
    // Connections that arrived before anyone listened are handed over once someone does.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'connection' && this.backlog.length > 0) process.nextTick(() => this.flushBacklog());
    });
  }

  /** Where clients reach this endpoint, as the server last said on connecting; undefined if it did not. */
  get url(): string | undefined {
    return this.endpointUrl;
  }

  /** True while a session is up and new connections can arrive. */
  get connected(): boolean {
    return this.current !== undefined && !this.current.closed;
  }

  /** Connections open right now, over all sessions. */
  get connectionCount(): number {
    return this.streams.size;
  }

  /** @internal Makes the first connection; `listen()` calls it. */
  async connectFirst(connectTimeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    const deadline = new AbortController();
    const timer =
      connectTimeoutMs === undefined
        ? undefined
        : setTimeout(
            () =>
              deadline.abort(
                new ClientError('ERR_CLIENT_TIMEOUT', `no connection to ${redactUrl(this.options.wsUrl)} within ${connectTimeoutMs} ms`),
              ),
            clampDelay(connectTimeoutMs),
          );
    const signals = [this.stopped.signal, deadline.signal];
    if (signal) signals.push(signal);
    try {
      await this.connectLoop(AbortSignal.any(signals), 0, (err) => {
        // The timeout says why in its own message; keep the last real failure as its cause.
        if (deadline.signal.aborted && isClientError(deadline.signal.reason, 'ERR_CLIENT_TIMEOUT')) {
          const reason = deadline.signal.reason;
          return new ClientError('ERR_CLIENT_TIMEOUT', reason.message, { cause: err });
        }
        return undefined;
      });
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (signal) {
      // Once listening, the caller's signal means "stop listening".
      const onAbort = (): void => void this.close();
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      this.userSignal = { signal, onAbort };
    }
  }

  /**
   * Stops gracefully: sends GoAway so the server routes no new connection
   * here, stops reconnecting, and resolves once every open connection has
   * ended (or `timeoutMs` has passed, when the rest are cut).
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closing) {
      // A second close may bound a wait the first left open.
      if (options.timeoutMs !== undefined) this.closeDeadline?.(options.timeoutMs);
      return this.closing;
    }
    if (this.state === 'closed') return Promise.resolve();
    this.state = 'closing';
    this.stopped.abort(new ClientError('ERR_CLIENT_CLOSED', 'listener closed'));
    for (const session of this.sessions) session.goAway();
    // Nobody took these and nobody will now.
    for (const stream of this.backlog.splice(0)) stream.destroy();
    this.log.debug('closing', { openConnections: this.streams.size });
    this.closing = new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.drained = undefined;
        this.closeDeadline = undefined;
        this.finish(undefined);
        resolve();
      };
      if (this.streams.size === 0) {
        done();
        return;
      }
      this.drained = done;
      this.closeDeadline = (timeoutMs) => {
        if (timer) return;
        timer = setTimeout(() => {
          this.log.warn('close timed out; cutting open connections', { openConnections: this.streams.size });
          done();
        }, clampDelay(timeoutMs));
      };
      if (options.timeoutMs !== undefined) this.closeDeadline(options.timeoutMs);
    });
    return this.closing;
  }

  /** Stops at once: the WebSockets are closed and every open connection is cut. */
  destroy(): void {
    if (this.state === 'closed') return;
    this.finish(undefined);
    this.drained?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    if (this.state === 'closed') return;
    for await (const [conn] of on(this, 'connection', { close: ['close'] })) {
      yield conn as Connection;
    }
  }

  // ---- connecting ---------------------------------------------------------

  /**
   * Attempts until a session is up, waiting the backoff between attempts.
   * Gives up on a non-retryable answer or when `signal` aborts; `onAbort`
   * may replace the abort error (to attach the last failure as its cause).
   */
  private async connectLoop(
    signal: AbortSignal,
    firstDelayMs: number,
    onAbort: (lastError: Error | undefined) => ClientError | undefined,
  ): Promise<void> {
    let delay = firstDelayMs;
    let lastError: Error | undefined;
    for (;;) {
      try {
        if (delay > 0) await sleep(delay, signal);
        this.log.debug('connecting', { url: redactUrl(this.options.wsUrl) });
        await openWebSocket(this.options.wsUrl, { ...this.options, headers: this.options.headers(), signal }, (ws, peer) =>
          this.attach(ws, peer),
        );
        return;
      } catch (err) {
        if (signal.aborted) {
          const reason: unknown = signal.reason;
          throw (
            onAbort(lastError) ??
            (reason instanceof ClientError ? reason : new ClientError('ERR_CLIENT_ABORTED', 'aborted', { cause: reason }))
          );
        }
        if (!isClientError(err) || !err.retryable) throw err;
        lastError = err;
        delay = this.backoff.next();
        if (isRefused(err)) delay = Math.min(delay, REFUSED_RETRY_CAP_MS);
        this.log.warn('connect failed; retrying', { error: err.message, backoffMs: delay });
        if (this.state === 'open') this.emit('reconnecting', { reason: 'retry', delayMs: delay, error: err });
      }
    }
  }

  /** Runs in the WebSocket's open event: the session must listen before any frame is read. */
  private attach(ws: WebSocket, peer: PeerAddress): Session {
    const session = new Session(new WebSocketTransport(ws), { role: 'client', ...this.options.keepalive });
    if (this.state === 'closing' || this.state === 'closed') {
      // Closed while the handshake was finishing: this session is not wanted.
      session.close();
      return session;
    }
    const connectedAt = performance.now();
    this.sessions.add(session);
    this.current = session;
    session.on('stream', (stream) => this.accept(stream, peer, session));
    session.on('goaway', () => this.onGoAway(session, performance.now() - connectedAt));
    session.on('close', (err) => this.onSessionClose(session, err, performance.now() - connectedAt));
    this.state = 'open';
    this.endpointUrl = peer.endpointUrl;
    this.log.info('connected', { url: redactUrl(this.options.wsUrl), serverAddress: peer.address });
    this.emit('connected');
    return session;
  }

  /**
   * Replaces the session without a gap, for a credential that rotated:
   * connects a new session (asking the token function again) and, once it
   * is up, sends GoAway on the old one, which the server then routes nothing
   * new to, and closes the old one when its last connection ends (make
   * before break, as after a server's GoAway). Resolves once the new session
   * is up; if it cannot be made, the old one carries on and the error is
   * logged. A no-op unless listening, or while a reconnect is under way
   * (that one already uses the new token).
   */
  async rotate(): Promise<void> {
    if (this.state !== 'open' || this.reconnecting) return;
    const old = this.current;
    this.reconnecting = true;
    try {
      await this.connectLoop(this.stopped.signal, 0, () => undefined);
    } catch (err) {
      if (this.stopped.signal.aborted) return;
      const fatal = isClientError(err) ? err : new ClientError('ERR_CLIENT_CONNECT', String(err), { cause: err });
      if (this.current === undefined) {
        // The old session died while the new one failed: nothing is left to carry on.
        this.log.error('reconnect failed; giving up', { error: fatal.message });
        this.finish(fatal);
      } else {
        this.log.error('session rotation failed; the current session carries on', { error: fatal.message });
      }
      return;
    } finally {
      this.reconnecting = false;
    }
    if (old && !old.closed) this.retire(old);
    // The old session may have died during the rotation, and its reconnect been skipped for ours.
    if (this.current === undefined && this.state === 'open') this.reconnect('disconnected', undefined);
  }

  private retire(session: Session): void {
    this.log.info('session rotated; draining the previous one');
    session.goAway();
    // Streams the server opened before it read our GoAway are still on their
    // way; closing now would cut them. Frames arrive in order, so once a
    // ping sent after the GoAway is answered, every such stream is here.
    session.ping().then(
      () => {
        this.retiring.add(session);
        this.closeIfDrained(session);
      },
      () => session.close(),
    );
  }

  private closeIfDrained(session: Session): void {
    // A stream leaves the session's count before its 'close' event, so the last one's event sees 0.
    if (!this.retiring.has(session) || session.streamCount > 0) return;
    this.retiring.delete(session);
    session.close();
  }

  /**
   * The server sends GoAway when it shuts down: it will take no new
   * connections for us on this session. Connect a new session now (through
   * a load balancer another node answers) and let this one finish what it
   * carries, so the endpoint never goes dark.
   */
  private onGoAway(session: Session, livedMs: number): void {
    if (session !== this.current || this.state !== 'open') return;
    if (livedMs >= STABLE_SESSION_MS) this.backoff.reset();
    this.log.info('server sent go away; connecting a new session');
    this.current = undefined;
    this.reconnect('goaway', undefined);
  }

  private onSessionClose(session: Session, err: TunnelError | undefined, livedMs: number): void {
    this.sessions.delete(session);
    this.retiring.delete(session);
    if (session !== this.current) return;
    this.current = undefined;
    if (this.state !== 'open') return;
    if (livedMs >= STABLE_SESSION_MS) this.backoff.reset();
    this.log.warn('disconnected; reconnecting', { error: err?.message ?? 'session closed' });
    this.reconnect('disconnected', err);
  }

  private reconnect(reason: 'disconnected' | 'goaway', error: Error | undefined): void {
    if (this.reconnecting) return;
    this.reconnecting = true;
    const delay = reason === 'goaway' ? 0 : this.backoff.next();
    this.emit('reconnecting', { reason, delayMs: delay, ...(error ? { error } : {}) });
    this.connectLoop(this.stopped.signal, delay, () => undefined).then(
      () => {
        this.reconnecting = false;
      },
      (err: unknown) => {
        this.reconnecting = false;
        if (this.stopped.signal.aborted) return;
        const fatal = isClientError(err) ? err : new ClientError('ERR_CLIENT_CONNECT', String(err), { cause: err });
        this.log.error('reconnect failed; giving up', { error: fatal.message });
        this.finish(fatal);
      },
    );
  }

  // ---- connections --------------------------------------------------------

  private accept(stream: TunnelStream, peer: PeerAddress, session: Session): void {
    // Node's HTTP server and frameworks read the peer from the socket; as in
    // Go, that is the Piko server at the other end of the WebSocket.
    Object.defineProperty(stream, 'remoteAddress', { value: peer.address, enumerable: true });
    Object.defineProperty(stream, 'remotePort', { value: peer.port, enumerable: true });
    this.streams.add(stream);
    stream.once('close', () => {
      this.streams.delete(stream);
      this.closeIfDrained(session);
      if (this.streams.size === 0) this.drained?.();
    });
    // Stream failures are consequences of the session's, which reconnecting reports.
    stream.on('error', (err) => this.log.debug('connection error', { error: err.message }));
    if (this.listenerCount('connection') > 0 && this.backlog.length === 0) {
      this.emit('connection', stream);
    } else if (this.backlog.length < ACCEPT_BACKLOG) {
      this.backlog.push(stream);
    } else {
      this.log.warn('accept backlog full; refusing connection');
      stream.destroy();
    }
  }

  private flushBacklog(): void {
    while (this.backlog.length > 0 && this.listenerCount('connection') > 0) {
      const stream = this.backlog.shift() as TunnelStream;
      if (!stream.destroyed) this.emit('connection', stream);
    }
  }

  private finish(err: ClientError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopped.abort(err ?? new ClientError('ERR_CLIENT_CLOSED', 'listener closed'));
    if (this.userSignal) this.userSignal.signal.removeEventListener('abort', this.userSignal.onAbort);
    this.current = undefined;
    for (const stream of this.backlog.splice(0)) stream.destroy();
    for (const session of [...this.sessions]) session.close();
    this.sessions.clear();
    if (err && this.listenerCount('error') > 0) this.emit('error', err);
    this.log.info('listener closed', err ? { error: err.message } : {});
    this.emit('close', err);
  }
}

/**
 * Registers `endpointId` with the Piko server and resolves once the first
 * session is up. Retryable failures (no answer, 408, 429, 500, 502, 503,
 * 504) are retried with backoff until `connectTimeoutMs` or `signal`; any
 * other answer, such as 401, rejects with a ClientError carrying the status
 * and the server's message.
 */
export async function listen(endpointId: string, options: ListenOptions = {}): Promise<Listener> {
  const listener = new Listener(endpointId, options);
  try {
    await listener.connectFirst(options.connectTimeoutMs, options.signal);
  } catch (err) {
    listener.removeAllListeners();
    listener.destroy();
    throw err;
  }
  return listener;
}

/** Whether a connect attempt failed because nothing listened (ECONNREFUSED anywhere in its causes). */
function isRefused(err: unknown): boolean {
  // Not instanceof Error: errors from another realm (a vm context, jest) fail that test.
  let e: unknown = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    if ((e as { code?: unknown }).code === 'ECONNREFUSED') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
