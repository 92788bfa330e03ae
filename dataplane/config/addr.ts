/** Address and URL forms accepted by the agent and forward configs. */
import { normaliseDialAddr } from '../net/host-port';
import { ConfigError } from './errors';

/** Throws unless `value` is an absolute URL with one of `schemes` (`http:`). */
export function checkUrl(value: string, path: string, schemes: readonly string[]): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new ConfigError(`${path} ${JSON.stringify(value)} is not a URL`, { path, cause });
  }
  if (!schemes.includes(url.protocol)) {
    const names = schemes.map((s) => s.slice(0, -1)).join(', ');
    throw new ConfigError(`${path} must use one of ${names}, got ${JSON.stringify(value)}`, { path });
  }
}

/**
 * Piko's listener address forms. A bare port means localhost. HTTP
 * listeners become URLs (http for a port or host:port); TCP listeners
 * become `host:port`. Ports must be 1-65535 and numeric (Go also takes
 * service names; we do not). Undefined when the form is not accepted.
 */
export function normaliseUpstreamAddr(addr: string, protocol: 'http' | 'tcp'): string | undefined {
  if (protocol === 'http' && addr.includes('://')) {
    try {
      const url = new URL(addr);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' ? addr : undefined;
    } catch {
      return undefined;
    }
  }
  const hostPort = normaliseDialAddr(addr);
  if (hostPort === undefined) return undefined;
  return protocol === 'http' ? `http://${hostPort}` : hostPort;
}
