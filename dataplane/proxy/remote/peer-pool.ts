import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { HttpPool } from '../../http/reverse-proxy';
import { splitHostPort } from '../../net/host-port';

// How long a connection opened for a request waits to be used.
const SPARE_CONNECTION_MS = 5_000;

/**
 * Keep-alive connections to another node's proxy port. Forwarded requests
 * reuse idle connections instead of paying a TCP (and TLS) handshake each;
 * a new connection is opened, and proven, before a request is sent on it,
 * so an unreachable node is found while the request can still go elsewhere.
 */
export class PeerAgent implements HttpPool {
  readonly agent: http.Agent;
  readonly host: string;
  readonly port: number;
  private readonly preconnected = new Set<Spare>();

  constructor(
    readonly addr: string,
    private readonly tlsOptions: tls.ConnectionOptions | undefined,
    private readonly connectTimeoutMs: number,
  ) {
    const { host, port } = splitHostPort(addr);
    this.host = host;
    this.port = port;
    const options: http.AgentOptions = {
      keepAlive: true,
      // Idle connections close well before the peer's idle timeout (5 min by
      // default), so we do not send on a connection the peer is closing.
      timeout: 30_000,
      maxFreeSockets: 256,
      scheduling: 'lifo',
    };
    this.agent = tlsOptions ? new https.Agent({ ...options, ...tlsOptions }) : new http.Agent(options);
    const fallback = this.agent.createConnection.bind(this.agent);
    // Hand out the connection we opened and checked for this request; only
    // if another request took it first does the agent connect on its own.
    this.agent.createConnection = ((opts: net.NetConnectOpts, cb?: (err: Error | null, s: Duplex) => void) => {
      for (const spare of this.preconnected) {
        this.release(spare);
        if (spare.socket.destroyed) continue;
        spare.socket.ref();
        return spare.socket;
      }
      return fallback(opts, cb);
    }) as typeof this.agent.createConnection;
  }

  get secure(): boolean {
    return this.tlsOptions !== undefined;
  }

  /** True when an idle keep-alive connection is ready for the next request. */
  hasIdle(): boolean {
    const name = this.agent.getName({ host: this.host, port: this.port });
    return (this.agent.freeSockets[name]?.length ?? 0) > 0;
  }

  /** Opens and checks a connection for the next request; rejects if the node cannot be reached. */
  async prepare(): Promise<void> {
    if (this.hasIdle()) return;
    const socket = await this.connect();
    // The request may end up on a connection that came free meanwhile; a
    // spare one must neither keep the process alive nor linger. Until the
    // HTTP client takes it, nobody else listens on it: the node resetting
    // it (as one shutting down does) must drop it, not end our process.
    socket.unref();
    const spare: Spare = {
      socket,
      drop: () => {
        this.release(spare);
        socket.destroy();
      },
      timer: setTimeout(() => spare.drop(), SPARE_CONNECTION_MS).unref(),
    };
    socket.on('error', spare.drop);
    socket.once('close', spare.drop);
    this.preconnected.add(spare);
  }

  /** Takes a spare off the list; from here its new owner answers for it. */
  private release(spare: Spare): void {
    this.preconnected.delete(spare);
    clearTimeout(spare.timer);
    spare.socket.removeListener('error', spare.drop);
    spare.socket.removeListener('close', spare.drop);
  }

  /** A connection of its own, for upgrades that never return to the pool. */
  connect(): Promise<net.Socket> {
    return connectSocket(this.host, this.port, this.tlsOptions, this.connectTimeoutMs);
  }

  destroy(): void {
    for (const spare of this.preconnected) spare.drop();
    this.agent.destroy();
  }
}

interface Spare {
  socket: net.Socket;
  drop(): void;
  timer: NodeJS.Timeout;
}

async function connectSocket(
  host: string,
  port: number,
  tlsOptions: tls.ConnectionOptions | undefined,
  timeoutMs: number,
): Promise<net.Socket> {
  // SNI carries names only; an IP address goes without it.
  const servername = tlsOptions?.servername ?? (net.isIP(host) === 0 ? host : undefined);
  const socket = tlsOptions
    ? tls.connect({ ...tlsOptions, host, port, ...(servername ? { servername } : {}) })
    : net.connect({ host, port });
  try {
    await once(socket, tlsOptions ? 'secureConnect' : 'connect', { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    socket.destroy();
    throw err;
  }
  socket.setNoDelay(true);
  return socket;
}
