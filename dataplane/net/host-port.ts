/**
 * host:port, in the two forms Piko takes: a listen address (`:8000`, `127.0.0.1:8000`,
 * `[::1]:8000`; empty host = every interface) and a dial address of an agent or `piko forward`
 * (a bare port means localhost), plus the split of an address already validated.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { NetError } from './errors';

export interface HostPort {
  /** Empty for all interfaces. */
  host: string;
  port: number;
}

/** Parses Go-style listen addresses: `:8000`, `127.0.0.1:8000`, `[::1]:8000`, `localhost:0`. */
export function parseListenAddr(addr: string, field: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new NetError('ERR_INVALID_ADDRESS', field, `${field} must be host:port (for example :8000 or 127.0.0.1:8000), got "${addr}"`);
  }
  return { host: match[1] ?? match[2] ?? '', port };
}

/** `3000` → `localhost:3000`; `host:3000` and `[::1]:3000` as given; else undefined. */
export function normaliseDialAddr(addr: string): string | undefined {
  if (isPort(addr)) return `localhost:${addr}`;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(addr);
  if (bracketed !== null) return isPort(bracketed[2]!) ? addr : undefined;
  const colon = addr.lastIndexOf(':');
  if (colon < 0) return undefined;
  const host = addr.slice(0, colon);
  const port = addr.slice(colon + 1);
  if (host.includes(':') || /[\s/?#@[\]]/.test(host) || !isPort(port)) return undefined;
  return `${host === '' ? 'localhost' : host}:${port}`;
}

/** host and port of an address already validated (`[v6]:port` loses its brackets). */
export function splitHostPort(addr: string): { host: string; port: number } {
  const colon = addr.lastIndexOf(':');
  const host = addr.slice(0, colon).replace(/^\[|\]$/g, '');
  return { host, port: Number(addr.slice(colon + 1)) };
}

/** The name in a Host header, without its port (and without the brackets of `[v6]`). */
export function hostnameOf(host: string): string {
  if (host.startsWith('[')) {
    // [v6]:port or [v6]
    const close = host.indexOf(']');
    return close < 0 ? host : host.slice(1, close);
  }
  const colon = host.lastIndexOf(':');
  // More than one colon without brackets is a bare IPv6 address, not host:port.
  if (colon < 0 || host.indexOf(':') !== colon) return host;
  return host.slice(0, colon);
}

function isPort(text: string): boolean {
  if (!/^\d{1,5}$/.test(text)) return false;
  const n = Number(text);
  return n >= 1 && n <= 65535;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether a host (name or literal, IPv6 with or without brackets) names this
 * machine's loopback interface: `localhost`, 127.0.0.0/8, ::1, or an
 * IPv4-mapped loopback address.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return LOOPBACK.check(h, 'ipv4');
  return isIPv6(h) && LOOPBACK.check(h, 'ipv6');
}
