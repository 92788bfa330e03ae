/** `piko agent` configuration: Piko's flags, YAML keys and defaults. */
import type { AccessLogConfig } from '../log/access-log';
import { accessLogSpec, LOG_SPEC, validateAccessLog, type LogConfig } from './common-specs';
import { checkUrl, normaliseUpstreamAddr } from './addr';
import { validateEndpointId } from '../protocol/endpoint-id';
import { ConfigError } from './errors';
import { checkFlagValue, loadRaw, type LoadOptions } from './load';
import {
  bool,
  defaultsOf,
  deepFreeze,
  duration,
  flagLeaves,
  group,
  int,
  listOf,
  mergeRaw,
  setPath,
  str,
  strList,
  toTyped,
  type GroupSpec,
  type LeafValue,
  type RawObject,
} from './schema';
import { clientTlsSpec, validateClientTlsConfig, type ClientTlsConfig } from './tls-config';
import { parseListenSpecs } from './listen-spec';
import { checkTokenSource, TOKEN_SPEC, tokenFileSpec } from './token-source';

export type ListenerProtocol = 'http' | 'tcp';
export const LISTENER_PROTOCOLS: readonly ListenerProtocol[] = ['http', 'tcp'];

/** The agent's HTTP client toward the local service (HTTP listeners only). */
export interface ListenerHttpClientConfig {
  keepAliveTimeoutMs: number;
  idleConnTimeoutMs: number;
  /** -1 = unlimited. */
  maxIdleConns: number;
  disableCompression: boolean;
}

export interface ListenerConfig {
  endpointId: string;
  /**
   * Normalised: an `http://` or `https://` URL for HTTP listeners (a bare
   * port becomes `http://localhost:PORT`), `host:port` for TCP listeners.
   */
  addr: string;
  protocol: ListenerProtocol;
  /** HTTP: per-request timeout toward the service; TCP: dial timeout. */
  timeoutMs: number;
  accessLog: AccessLogConfig;
  httpClient: ListenerHttpClientConfig;
  /** Toward the local service, for https addresses. */
  tls: ClientTlsConfig;
}

export interface AgentConnectConfig {
  /** The server's upstream port. */
  url: string;
  token?: string;
  /** A file holding the token, re-read when it changes (a projected ServiceAccount token). */
  tokenFile?: string;
  tenantId?: string;
  /** Limit on the first connection at start-up; reconnects retry forever. */
  timeoutMs: number;
  tls: ClientTlsConfig;
  /** HTTP proxy toward the server. */
  proxyUrl?: string;
}

/** The agent's own `/metrics` server. */
export interface AgentServerConfig {
  enabled: boolean;
  bindAddr: string;
}

/** The request inspector (`inspect.*`): off while bindAddr is empty. */
export interface AgentInspectConfig {
  bindAddr: string;
  allowRemote: boolean;
  maxRequests: number;
  maxBodyBytes: number;
  maxTotalBytes: number;
}

/** Deep-frozen at runtime. */
export interface AgentConfig {
  connect: AgentConnectConfig;
  server: AgentServerConfig;
  inspect: AgentInspectConfig;
  log: LogConfig;
  gracePeriodMs: number;
  listeners: ListenerConfig[];
}

// Piko fills zero values of YAML listeners with these, so 0 means "default"
// whether it comes from a file or a flag.
const DEFAULT_KEEP_ALIVE_MS = 30_000;
const DEFAULT_IDLE_CONN_MS = 90_000;
const DEFAULT_MAX_IDLE_CONNS = 100;

/**
 * One listener, as a YAML `listeners[]` item; its flag leaves are the
 * `piko agent http` flags (`--timeout`, `--access-log.*`, `--http-client.*`).
 */
export const LISTENER_SPEC: GroupSpec = group({
  endpoint_id: str('', 'Endpoint ID to register.', { required: true, flag: false }),
  addr: str('', 'Local service: a port, host:port or (HTTP) an http(s) URL.', { required: true, flag: false }),
  protocol: str('http', 'http or tcp.', { choices: LISTENER_PROTOCOLS, flag: false }),
  // Required in YAML (Piko has no default there); the CLI default is 10s.
  timeout: duration(10_000, 'Timeout forwarding a request to the local service (TCP: connecting to it).', {
    required: true,
    positive: true,
  }),
  access_log: accessLogSpec('requests forwarded to the local service'),
  http_client: group({
    keep_alive_timeout: duration(DEFAULT_KEEP_ALIVE_MS, 'TCP keep-alive period of connections to the local service (0 = 30s).'),
    idle_conn_timeout: duration(DEFAULT_IDLE_CONN_MS, 'How long an idle connection to the local service is kept (0 = 90s).'),
    max_idle_conns: int(DEFAULT_MAX_IDLE_CONNS, 'Maximum idle connections to the local service (0 = 100, -1 = unlimited).', { min: -1 }),
    disable_compression: bool(false, 'Do not ask the local service for compressed responses.'),
  }),
  tls: clientTlsSpec('the local service', false, true),
});

/** The listener flags `piko agent tcp` has (Piko offers no others there). */
export const TCP_LISTENER_FLAG_PATHS: readonly string[] = ['timeout', 'access_log.level', 'access_log.disable'];

export const AGENT_SPEC: GroupSpec = group({
  listeners: listOf(LISTENER_SPEC),
  listen: strList(
    'Listeners in short form, <endpoint>=<port|host:port>[/http|/tcp] (comma-separated, repeatable), added to the listeners of the file.',
    { arg: '<endpoint>=<addr>' },
  ),
  connect: group({
    url: str('http://localhost:8001', "Piko server URL; must point at the server's upstream port.", { arg: '<url>' }),
    token: TOKEN_SPEC,
    token_file: tokenFileSpec(', and each listener then moves to a new session with it (the old one drains)'),
    tenant_id: str('', 'Tenant ID of the agent (experimental).', { optional: true, arg: '<id>' }),
    timeout: duration(30_000, 'Timeout connecting to the server at start-up; later reconnects retry forever.', {
      positive: true,
    }),
    tls: clientTlsSpec('the Piko server', false),
    proxy_url: str('', 'HTTP proxy to reach the Piko server through.', { optional: true, arg: '<url>' }),
  }),
  server: group({
    enabled: bool(false, "Serve the agent's Prometheus metrics on --server.bind-addr."),
    bind_addr: str(':5000', 'Host and port of the metrics server; an empty host means all interfaces.', {
      arg: '<addr>',
    }),
  }),
  inspect: group({
    bind_addr: str('', 'Serve the request inspector (a page and /api/requests) here, such as 127.0.0.1:4040; off when empty.', {
      arg: '<addr>',
    }),
    allow_remote: bool(false, 'Let --inspect.bind-addr be an address other than loopback (the inspector shows request bodies).'),
    max_requests: int(100, 'Requests the inspector keeps, newest first.', { min: 1 }),
    max_body_bytes: int(64 * 1024, 'Bytes of each request and response body the inspector keeps.', { min: 0 }),
    max_total_bytes: int(16 * 1024 * 1024, 'Bytes the inspector keeps in all (bodies and headers); the oldest requests go first.', {
      min: 1024,
    }),
  }),
  log: LOG_SPEC,
  grace_period: duration(60_000, 'Time allowed after SIGTERM or SIGINT for in-flight requests before exiting.', {
    positive: true,
  }),
});

/** A listener given on the command line (`piko agent http|tcp <endpoint> <addr>`). */
export interface CliListener {
  protocol: ListenerProtocol;
  endpointId: string;
  addr: string;
  /** Listener flags keyed by their path in LISTENER_SPEC (`http_client.max_idle_conns`). */
  flags?: Readonly<Record<string, LeafValue>>;
}

export interface AgentLoadOptions extends LoadOptions {
  /** Replaces the file's listeners, as in Piko. */
  listener?: CliListener;
}

export function loadAgentConfig(options: AgentLoadOptions = {}): AgentConfig {
  const { listener, ...load } = options;
  const replace = listener === undefined ? load.replace : { ...load.replace, listeners: [cliListenerRaw(listener)] };
  const raw = loadRaw(AGENT_SPEC, { ...load, ...(replace === undefined ? {} : { replace }) });
  const config = toTyped(AGENT_SPEC, raw) as unknown as AgentConfig & { listen?: string[] };
  // `listen` is a way to write listeners, not a setting of its own: it joins them and is gone.
  const short = parseListenSpecs(config.listen ?? []);
  delete config.listen;
  if ('problem' in short) throw new ConfigError(`listen: ${short.problem}`, { path: 'listen' });
  for (const s of short) {
    const raw = cliListenerRaw({ protocol: s.protocol, endpointId: s.endpointId, addr: s.addr });
    config.listeners.push(toTyped(LISTENER_SPEC, raw) as unknown as ListenerConfig);
  }
  finish(config);
  return deepFreeze(config);
}

export function defaultAgentConfig(): AgentConfig {
  return loadAgentConfig();
}

function cliListenerRaw(l: CliListener): RawObject {
  const known = new Map(flagLeaves(LISTENER_SPEC).map((f) => [f.path, f]));
  const flags: RawObject = {};
  for (const [path, value] of Object.entries(l.flags ?? {})) {
    const entry = known.get(path);
    if (entry === undefined) throw new ConfigError(`unknown listener flag --${path.replace(/_/g, '-')}`, { path });
    checkFlagValue(entry.leaf, value, `--${entry.flag}`);
    setPath(flags, path, value);
  }
  return mergeRaw(mergeRaw(defaultsOf(LISTENER_SPEC), flags), {
    endpoint_id: l.endpointId,
    addr: l.addr,
    protocol: l.protocol,
  });
}

function finish(c: AgentConfig): void {
  c.listeners.forEach((l, i) => {
    const path = `listeners[${i}]`;
    const idProblem = validateEndpointId(l.endpointId);
    if (idProblem !== undefined) {
      throw new ConfigError(`${path}.endpoint_id: ${idProblem}`, { path: `${path}.endpoint_id` });
    }
    const addr = normaliseUpstreamAddr(l.addr, l.protocol);
    if (addr === undefined) {
      const forms = l.protocol === 'http' ? 'a port, host:port or http(s) URL' : 'a port or host:port';
      throw new ConfigError(`${path}.addr ${JSON.stringify(l.addr)} must be ${forms}`, { path: `${path}.addr` });
    }
    l.addr = addr;
    validateAccessLog(l.accessLog, `${path}.access_log`);
    validateClientTlsConfig(l.tls, `${path}.tls`);
    const hc = l.httpClient;
    if (hc.keepAliveTimeoutMs === 0) hc.keepAliveTimeoutMs = DEFAULT_KEEP_ALIVE_MS;
    if (hc.idleConnTimeoutMs === 0) hc.idleConnTimeoutMs = DEFAULT_IDLE_CONN_MS;
    if (hc.maxIdleConns === 0) hc.maxIdleConns = DEFAULT_MAX_IDLE_CONNS;
  });
  checkTokenSource(c.connect);
  checkUrl(c.connect.url, 'connect.url', ['http:', 'https:', 'ws:', 'wss:']);
  if (c.connect.proxyUrl !== undefined) checkUrl(c.connect.proxyUrl, 'connect.proxy_url', ['http:', 'https:']);
  validateClientTlsConfig(c.connect.tls, 'connect.tls');
  for (const [key, value, max] of [
    ['max_requests', c.inspect.maxRequests, 100_000],
    ['max_body_bytes', c.inspect.maxBodyBytes, 64 * 1024 * 1024],
  ] as const) {
    if (value > max) throw new ConfigError(`inspect.${key} must be at most ${max}`, { path: `inspect.${key}` });
  }
  if (c.inspect.bindAddr !== '' && !c.inspect.allowRemote && !isLoopbackBindAddr(c.inspect.bindAddr)) {
    throw new ConfigError(
      `inspect.bind_addr ${JSON.stringify(c.inspect.bindAddr)} is not a loopback address: the inspector shows request bodies; set inspect.allow_remote to serve it there`,
      { path: 'inspect.bind_addr' },
    );
  }
}

/** 127.0.0.1:4040, [::1]:4040, localhost:4040; an empty host (every interface) is not. */
function isLoopbackBindAddr(addr: string): boolean {
  const host = addr.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
