import type { AddressInfo, Server } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { once } from 'node:events';
import { networkInterfaces } from 'node:os';
import { NetError } from './errors';
import { parseListenAddr, type HostPort } from './host-port';

/** Listens and resolves with the bound address; fails with the address in the message. */
export async function listen(server: Server, addr: HostPort, field: string): Promise<AddressInfo> {
  server.listen(addr.port, addr.host === '' ? undefined : addr.host);
  try {
    // once() rejects with the 'error' event's error, which is what we want to explain.
    await once(server, 'listening');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new NetError('ERR_LISTEN', field, `${field}: cannot listen on ${addr.host || '*'}:${addr.port}: ${reason}`, { cause: err });
  }
  return server.address() as AddressInfo;
}

/** listen() on a `bind_addr` string; `field` names the flag in errors. */
export function listenOn(server: Server, bindAddr: string, field: string): Promise<AddressInfo> {
  return listen(server, parseListenAddr(bindAddr, field), field);
}

/**
 * Stops a small HTTP server (metrics, probes, a webhook) at once: no new connections, the open
 * ones dropped, resolved when it has closed. A server that never listened resolves at once.
 */
export async function closeServer(server: HttpServer): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

/** host:port for an address other processes can dial; `advertise` wins when set. */
export function advertisedAddress(bound: AddressInfo, advertise: string | undefined): string {
  if (advertise) return advertise;
  // Bound to every interface: like Piko, advertise the first non-loopback IPv4
  // address, so other nodes on the network can reach us.
  const host = bound.address === '::' || bound.address === '0.0.0.0' ? firstExternalIPv4() : bound.address;
  return host.includes(':') ? `[${host}]:${bound.port}` : `${host}:${bound.port}`;
}

function firstExternalIPv4(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
