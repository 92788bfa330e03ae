/** `piko forward` configuration: Piko's flags, YAML keys and defaults. */
import { checkUrl } from './addr';
import { LOG_SPEC, type LogConfig } from './common-specs';
import { validateEndpointId } from '../protocol/endpoint-id';
import { ConfigError } from './errors';
import { loadRaw, type LoadOptions } from './load';
import { deepFreeze, duration, group, listOf, str, toTyped, type GroupSpec } from './schema';
import { clientTlsSpec, validateClientTlsConfig, type ClientTlsConfig } from './tls-config';
import { normaliseDialAddr } from '../net/host-port';
import { checkTokenSource, TOKEN_SPEC, tokenFileSpec } from './token-source';

export interface ForwardPortConfig {
  /** Local address to listen on, normalised to `host:port` (a bare port means localhost). */
  addr: string;
  endpointId: string;
}

export interface ForwardConnectConfig {
  /** The server's proxy port. */
  url: string;
  token?: string;
  /** A file holding the token, read again for each connection after it changes. */
  tokenFile?: string;
  /** Kept for Piko compatibility; Piko does not use it either. */
  timeoutMs: number;
  tls: ClientTlsConfig;
}

/** Deep-frozen at runtime. */
export interface ForwardConfig {
  connect: ForwardConnectConfig;
  log: LogConfig;
  ports: ForwardPortConfig[];
}

export const PORT_SPEC: GroupSpec = group({
  addr: str('', 'Local port or host:port to listen on.', { required: true, flag: false }),
  endpoint_id: str('', 'Endpoint to forward connections to.', { required: true, flag: false }),
});

export const FORWARD_SPEC: GroupSpec = group({
  ports: listOf(PORT_SPEC),
  connect: group({
    url: str('http://localhost:8000', "Piko server URL; must point at the server's proxy port.", { arg: '<url>' }),
    token: TOKEN_SPEC,
    token_file: tokenFileSpec('; each new connection uses the token as last read'),
    timeout: duration(30_000, 'Timeout connecting to the Piko server.', { positive: true }),
    tls: clientTlsSpec('the Piko server', false),
  }),
  log: LOG_SPEC,
});

export interface ForwardLoadOptions extends LoadOptions {
  /** `piko forward tcp <addr> <endpoint>`: replaces the file's ports, as in Piko. */
  port?: { addr: string; endpointId: string };
}

export function loadForwardConfig(options: ForwardLoadOptions = {}): ForwardConfig {
  const { port, ...load } = options;
  const replace = port === undefined ? load.replace : { ...load.replace, ports: [{ addr: port.addr, endpoint_id: port.endpointId }] };
  const raw = loadRaw(FORWARD_SPEC, { ...load, ...(replace === undefined ? {} : { replace }) });
  const config = toTyped(FORWARD_SPEC, raw) as unknown as ForwardConfig;
  finish(config);
  return deepFreeze(config);
}

export function defaultForwardConfig(): ForwardConfig {
  return loadForwardConfig();
}

function finish(c: ForwardConfig): void {
  c.ports.forEach((p, i) => {
    const path = `ports[${i}]`;
    const addr = normaliseDialAddr(p.addr);
    if (addr === undefined) {
      throw new ConfigError(`${path}.addr ${JSON.stringify(p.addr)} must be a port or host:port`, {
        path: `${path}.addr`,
      });
    }
    p.addr = addr;
    const idProblem = validateEndpointId(p.endpointId);
    if (idProblem !== undefined) {
      throw new ConfigError(`${path}.endpoint_id: ${idProblem}`, { path: `${path}.endpoint_id` });
    }
  });
  checkTokenSource(c.connect);
  checkUrl(c.connect.url, 'connect.url', ['http:', 'https:', 'ws:', 'wss:']);
  validateClientTlsConfig(c.connect.tls, 'connect.tls');
}
