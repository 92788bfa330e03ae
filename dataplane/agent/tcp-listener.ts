import net from 'node:net';
import { joinStreams } from '../net/join-streams';
import type { Connection, Listener } from '../client/listener';
import type { ListenerConfig } from '../config/agent-config';
import type { Logger, LogLevel } from '../log/logger';
import { clampDelay } from '../time/timer';
import { parseListenAddr } from '../net/host-port';

export interface TcpListenerDeps {
  /** The agent's logger; this listener logs as `proxy.tcp` and `proxy.tcp.access`. */
  logger: Logger;
}

/**
 * One TCP listener of the agent: each connection Piko routes to the
 * endpoint becomes a TCP connection to the local service (dialled within
 * the listener timeout), bytes copied both ways until either side ends.
 * Like Piko, only connection open and close are logged.
 */
export class TcpListenerProxy {
  private readonly host: string;
  private readonly port: number;
  private readonly log: Logger;
  private readonly accessLog: Logger;
  private readonly accessLevel: LogLevel;

  constructor(
    private readonly config: ListenerConfig,
    deps: TcpListenerDeps,
  ) {
    const { host, port } = parseListenAddr(config.addr, 'addr');
    this.host = host === '' ? 'localhost' : host;
    this.port = port;
    this.log = deps.logger.child({ subsystem: 'proxy.tcp', endpointId: config.endpointId });
    this.accessLog = deps.logger.child({ subsystem: 'proxy.tcp.access', endpointId: config.endpointId });
    // Piko logs connections at info, or at debug when the access log is disabled.
    this.accessLevel = config.accessLog.disable ? 'debug' : config.accessLog.level;
  }

  attach(listener: Listener): void {
    listener.on('connection', (conn) => this.handle(conn));
  }

  /**
   * GoAway, so no new connection is routed here; open connections get the
   * grace period to end, then are cut. (Piko cuts them at once.)
   */
  async shutdown(listener: Listener, gracePeriodMs: number): Promise<void> {
    await listener.close({ timeoutMs: gracePeriodMs });
  }

  destroy(listener: Listener): void {
    listener.destroy();
  }

  private handle(conn: Connection): void {
    this.accessLog.log(this.accessLevel, 'connection opened');
    const local = net.connect({ host: this.host, port: this.port });
    const timeoutMs = this.config.timeoutMs;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => local.destroy(new Error(`dial ${this.config.addr}: timed out after ${timeoutMs} ms`)), clampDelay(timeoutMs))
        : undefined;
    let connected = false;
    local.once('connect', () => {
      connected = true;
      if (timer) clearTimeout(timer);
    });
    local.once('error', (err) => {
      if (!connected) this.log.warn('failed to dial upstream', { error: err.message });
    });
    void joinStreams(conn, local).then((err) => {
      if (timer) clearTimeout(timer);
      if (err) this.log.debug('connection ended with an error', { error: err.message });
      this.accessLog.log(this.accessLevel, 'connection closed');
    });
  }
}
