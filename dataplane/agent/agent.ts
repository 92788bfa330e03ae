import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import type { Registry } from 'prom-client';
import { ClientError } from '../client/errors';
import { listen, type Listener } from '../client/listener';
import type { TokenFile } from '../client/token-file';
import { openTokenFile } from '../config/token-source';
import type { AgentConfig, ListenerConfig } from '../config/agent-config';
import type { Logger } from '../log/logger';
import { createProxyMetrics, type EndpointLabel, type ProxyMetrics } from '../metrics/proxy-metrics';
import { createMetricsRegistry } from '../metrics/registry';
import { clientTlsOptions } from '../net/tls';
import { HttpListenerProxy } from './http-listener';
import { MetricsServer } from './metrics-server';
import { TcpListenerProxy } from './tcp-listener';
import { InspectorServer } from './inspector/inspector-server';
import { RequestLog } from './inspector/request-log';

export type AgentErrorCode = 'ERR_AGENT_LISTEN' | 'ERR_AGENT_LISTENER_FAILED';

export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    readonly endpointId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface AgentDeps {
  logger: Logger;
  /** Defaults to a fresh registry with the Node runtime metrics. */
  metricsRegistry?: Registry;
}

export interface AgentEvents {
  /**
   * A listener was refused for good after it had connected (its token
   * expired or was revoked, say). Piko's agent exits on this; runAgent does
   * too. Emitted only when someone listens; it is logged either way.
   */
  error: [err: AgentError];
}

interface Running {
  config: ListenerConfig;
  proxy: HttpListenerProxy | TcpListenerProxy;
  listener: Listener;
}

/**
 * `piko agent`: one outbound listener per configured endpoint, each
 * forwarding what Piko routes to it to a local service, plus the optional
 * `/metrics` server.
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly metricsRegistry: Registry;
  private readonly metrics: ProxyMetrics<EndpointLabel>;
  private readonly connectTls: tls.ConnectionOptions;
  private readonly log: Logger;
  private readonly running: Running[] = [];
  private metricsServer: MetricsServer | undefined;
  private metricsAddr: AddressInfo | undefined;
  private stopping: Promise<void> | undefined;
  private readonly tokenFile: TokenFile | undefined;
  /** The request inspector's log and server, with --inspect.bind-addr. */
  private readonly inspectorLog: RequestLog | undefined;
  private inspector: InspectorServer | undefined;
  private inspectorAddr: AddressInfo | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    super();
    this.log = deps.logger.child({ subsystem: 'agent' });
    this.metricsRegistry = deps.metricsRegistry ?? createMetricsRegistry();
    this.metrics = createProxyMetrics(this.metricsRegistry, { prefix: 'piko_agent', endpointLabel: true });
    // Read the TLS files now, so a bad path fails start-up with the key to fix.
    this.connectTls = clientTlsOptions(config.connect.tls, 'connect.tls');
    this.tokenFile = openTokenFile(config.connect, deps.logger);
    const { inspect } = config;
    this.inspectorLog =
      inspect.bindAddr === ''
        ? undefined
        : new RequestLog({ maxRequests: inspect.maxRequests, maxBodyBytes: inspect.maxBodyBytes, maxTotalBytes: inspect.maxTotalBytes });
    // A rotated credential: every listener moves to a new session with it before the old one expires.
    this.tokenFile?.on('change', () => {
      for (const r of this.running) void r.listener.rotate();
    });
  }

  /** The bound address of the metrics server, when enabled and started. */
  get metricsAddress(): AddressInfo | undefined {
    return this.metricsAddr;
  }

  /** The bound address of the request inspector, when enabled and started. */
  get inspectorAddress(): AddressInfo | undefined {
    return this.inspectorAddr;
  }

  /** The SDK listeners, one per configured listener, once started. */
  get endpointListeners(): readonly Listener[] {
    return this.running.map((r) => r.listener);
  }

  /**
   * Connects every listener (in parallel, each within `connect.timeout`)
   * and starts the metrics server. If any listener cannot connect, the
   * others are closed and the error names its endpoint.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const { config } = this;
    if (config.server.enabled) {
      this.metricsServer = new MetricsServer(this.metricsRegistry, this.deps.logger.child({ subsystem: 'agent.server' }));
      this.metricsAddr = await this.metricsServer.start(config.server.bindAddr);
      this.log.info('metrics server listening', { addr: `${this.metricsAddr.address}:${this.metricsAddr.port}` });
    }
    if (this.inspectorLog !== undefined) {
      const log = this.inspectorLog;
      this.inspector = new InspectorServer({
        log,
        replay: (source, replayOf) => {
          const running = this.running.find((r) => r.config.endpointId === source.endpointId && r.proxy instanceof HttpListenerProxy);
          return running === undefined ? undefined : (running.proxy as HttpListenerProxy).replay(source, replayOf, log);
        },
        logger: this.deps.logger.child({ subsystem: 'agent.inspect' }),
      });
      this.inspectorAddr = await this.inspector.start(config.inspect.bindAddr);
      this.log.info('request inspector listening', { url: `http://${hostPort(this.inspectorAddr)}/` });
    }
    this.tokenFile?.watch();
    const started = await Promise.allSettled(config.listeners.map((l, i) => this.startListener(l, i, signal)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const r of this.running.splice(0)) r.proxy.destroy(r.listener);
      this.tokenFile?.close();
      await this.metricsServer?.close();
      await this.inspector?.close();
      throw failed.reason;
    }
  }

  /**
   * Graceful stop, as Piko's agent: every listener sends GoAway (the server
   * routes nothing new here) and waits for its requests and connections in
   * flight within the grace period, then cuts the rest. The metrics server
   * closes last, so the drain itself can be watched.
   */
  shutdown(gracePeriodMs = this.config.gracePeriodMs): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('shutting down', { gracePeriodMs });
      this.tokenFile?.close();
      await Promise.all(this.running.map((r) => r.proxy.shutdown(r.listener, gracePeriodMs)));
      await this.inspector?.close();
      await this.metricsServer?.close();
      this.log.info('shutdown complete');
    })();
    return this.stopping;
  }

  /** Cuts every listener and connection at once. */
  destroy(): void {
    for (const r of this.running) r.proxy.destroy(r.listener);
    this.tokenFile?.close();
    void this.metricsServer?.close();
    void this.inspector?.close();
  }

  private async startListener(config: ListenerConfig, index: number, signal: AbortSignal | undefined): Promise<void> {
    const { connect } = this.config;
    const { tokenFile } = this;
    const proxy =
      config.protocol === 'http'
        ? new HttpListenerProxy(config, {
            logger: this.deps.logger,
            metrics: this.metrics,
            index,
            ...(this.inspectorLog === undefined ? {} : { inspector: this.inspectorLog }),
          })
        : new TcpListenerProxy(config, { logger: this.deps.logger });
    // Only the start-up is bound to the caller's signal: once listening, the
    // listener stops through shutdown(), with the grace period.
    const startup = new AbortController();
    const onAbort = (): void => startup.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let listener: Listener;
    try {
      listener = await listen(config.endpointId, {
        url: connect.url,
        token: tokenFile ? () => tokenFile.token : connect.token,
        ...(connect.tenantId !== undefined ? { tenantId: connect.tenantId } : {}),
        ...(connect.proxyUrl !== undefined ? { proxyUrl: connect.proxyUrl } : {}),
        tls: this.connectTls,
        connectTimeoutMs: connect.timeoutMs,
        logger: this.deps.logger,
        signal: startup.signal,
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new AgentError('ERR_AGENT_LISTEN', config.endpointId, `listen ${config.endpointId}: ${reason}`, { cause: err });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    listener.on('error', (err: ClientError) => {
      const failure = new AgentError('ERR_AGENT_LISTENER_FAILED', config.endpointId, `listener ${config.endpointId}: ${err.message}`, {
        cause: err,
      });
      this.log.error('listener failed', { endpointId: config.endpointId, error: err.message });
      if (this.listenerCount('error') > 0) this.emit('error', failure);
    });
    proxy.attach(listener);
    this.running.push({ config, proxy, listener });
    // What ngrok's agent prints first: where to send traffic, and where it goes.
    this.log.info('listener registered', {
      endpointId: config.endpointId,
      protocol: config.protocol,
      addr: config.addr,
      ...(listener.url !== undefined && config.protocol === 'http' ? { url: listener.url } : {}),
    });
  }
}

function hostPort(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
