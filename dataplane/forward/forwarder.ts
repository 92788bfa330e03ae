import net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { dial } from '../client/dial';
import type { TokenFile } from '../client/token-file';
import { openTokenFile } from '../config/token-source';
import { joinStreams } from '../net/join-streams';
import type { ForwardConfig, ForwardPortConfig } from '../config/forward-config';
import type { Logger } from '../log/logger';
import { listen } from '../net/listen';
import { clientTlsOptions } from '../net/tls';
import { parseListenAddr } from '../net/host-port';

export interface ForwarderDeps {
  logger: Logger;
}

interface Bound {
  port: ForwardPortConfig;
  server: net.Server;
  address: net.AddressInfo;
}

/**
 * `piko forward`: a local TCP port per configured entry; each accepted
 * connection becomes one WebSocket to the server's proxy port
 * (`/_piko/v1/tcp/<endpoint>`), bytes copied both ways until either side
 * ends. As in Piko there is no retry: a connection whose dial fails is
 * closed.
 */
export class Forwarder {
  private readonly bound: Bound[] = [];
  private readonly open = new Set<Duplex>();
  private readonly tls: tls.ConnectionOptions;
  private readonly log: Logger;
  private closed = false;
  private readonly tokenFile: TokenFile | undefined;

  constructor(
    private readonly config: ForwardConfig,
    deps: ForwarderDeps,
  ) {
    this.log = deps.logger.child({ subsystem: 'forwarder' });
    // Read the TLS files now, so a bad path fails start-up with the key to fix.
    this.tls = clientTlsOptions(config.connect.tls, 'connect.tls');
    this.tokenFile = openTokenFile(config.connect, deps.logger)?.watch();
  }

  /** Where each port listens, in `ports[]` order, once started. */
  get addresses(): net.AddressInfo[] {
    return this.bound.map((b) => b.address);
  }

  /** Listens on every port; if one cannot be bound, the others are closed again. */
  async start(): Promise<net.AddressInfo[]> {
    try {
      for (const [i, port] of this.config.ports.entries()) {
        const server = net.createServer((socket) => this.handle(socket, port));
        const addr = parseListenAddr(port.addr, `ports[${i}].addr`);
        // A bare port means localhost; Go listens on its IPv4 address, and
        // so do we, rather than whichever family the resolver puts first.
        const host = addr.host === 'localhost' ? '127.0.0.1' : addr.host;
        const address = await listen(server, { host, port: addr.port }, `ports[${i}].addr`);
        this.bound.push({ port, server, address });
        this.log.info('forwarding', { addr: `${address.address}:${address.port}`, endpointId: port.endpointId });
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    return this.addresses;
  }

  /** Stops listening and closes every forwarded connection. */
  async close(): Promise<void> {
    this.closed = true;
    this.tokenFile?.close();
    const closing = this.bound.splice(0).map((b) => new Promise<void>((resolve) => b.server.close(() => resolve())));
    for (const conn of this.open) conn.destroy();
    await Promise.all(closing);
  }

  private handle(socket: net.Socket, port: ForwardPortConfig): void {
    const { connect } = this.config;
    const endpointId = port.endpointId;
    const client = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    // Until the dial is done the socket is nobody's: a client that gives up cancels the dial.
    const cancel = new AbortController();
    const onEarlyError = (err: Error): void => {
      this.log.debug('client connection error', { client, error: err.message });
    };
    const onEarlyClose = (): void => cancel.abort();
    socket.on('error', onEarlyError);
    socket.once('close', onEarlyClose);
    this.log.debug('accepted connection', { client, endpointId });

    dial(endpointId, {
      url: connect.url,
      token: this.tokenFile?.token ?? connect.token,
      tls: this.tls,
      // Piko parses connect.timeout and never uses it; here it bounds the handshake.
      timeoutMs: connect.timeoutMs,
      signal: cancel.signal,
    }).then(
      (upstream) => {
        socket.off('error', onEarlyError);
        socket.off('close', onEarlyClose);
        if (socket.destroyed || this.closed) {
          upstream.destroy();
          socket.destroy();
          return;
        }
        this.open.add(upstream);
        upstream.once('close', () => this.open.delete(upstream));
        this.log.debug('dialed endpoint', { client, endpointId });
        void joinStreams(socket, upstream).then((err) => {
          this.log.debug('connection closed', { client, endpointId, ...(err ? { error: err.message } : {}) });
        });
      },
      (err: unknown) => {
        socket.destroy();
        if (cancel.signal.aborted) return;
        this.log.error('failed to dial endpoint', { endpointId, error: err instanceof Error ? err.message : String(err) });
      },
    );
  }
}
