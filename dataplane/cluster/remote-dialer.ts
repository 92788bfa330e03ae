import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ClusterRegistry, NodeRecord } from '../registry/cluster-registry';
import type { RoutedConnection } from '../proxy/router';
import { FORWARD_AUTH_HEADER, type ForwardAuth } from './forward-auth';

export interface RemoteDialerOptions {
  registry: ClusterRegistry;
  /** This node's id, signed into every forwarded request. */
  nodeId: string;
  auth: ForwardAuth;
  /** TLS towards other nodes' proxy ports (Piko's proxy.tls.client); plain TCP when unset. */
  tls?: tls.ConnectionOptions;
  connectTimeoutMs?: number;
  /** Picks a number in [0, 1); injectable so tests can pin the choice. */
  random?: () => number;
}

/**
 * Opens a connection to another node that holds upstreams for an endpoint.
 * The node is drawn at random weighted by its upstream count, so load
 * follows the upstreams (Piko picks uniformly, its issue 30). A node that
 * cannot be reached is dropped and another drawn: nothing of the request
 * has been sent yet.
 */
export function createRemoteDialer(options: RemoteDialerOptions): (endpointId: string) => Promise<RoutedConnection | undefined> {
  const random = options.random ?? Math.random;
  const timeoutMs = options.connectTimeoutMs ?? 5000;
  return async (endpointId) => {
    const candidates = options.registry.lookup(endpointId).filter((c) => c.upstreams > 0);
    while (candidates.length > 0) {
      const index = weightedPick(candidates.map((c) => c.upstreams), random());
      const [chosen] = candidates.splice(index, 1) as [{ node: NodeRecord; upstreams: number }];
      try {
        const conn = await connect(chosen.node.proxyAddr, options.tls, timeoutMs);
        return {
          conn,
          via: chosen.node.id,
          extraHeaders: { [FORWARD_AUTH_HEADER]: options.auth.sign(options.nodeId) },
        };
      } catch {
        // Unreachable node: the next draw excludes it.
      }
    }
    return undefined;
  };
}

/** Index drawn with probability proportional to its weight; `r` in [0, 1). */
export function weightedPick(weights: readonly number[], r: number): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let target = r * total;
  for (let i = 0; i < weights.length; i++) {
    target -= weights[i] as number;
    if (target < 0) return i;
  }
  return weights.length - 1;
}

async function connect(addr: string, tlsOptions: tls.ConnectionOptions | undefined, timeoutMs: number): Promise<Duplex> {
  const { host, port } = splitHostPort(addr);
  // SNI carries names only; an IP address goes without it.
  const servername = tlsOptions?.servername ?? (net.isIP(host) === 0 ? host : undefined);
  const socket = tlsOptions
    ? tls.connect({ ...tlsOptions, host, port, ...(servername ? { servername } : {}) })
    : net.connect({ host, port });
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    await once(socket, tlsOptions ? 'secureConnect' : 'connect', { signal });
  } catch (err) {
    socket.destroy();
    throw err;
  }
  socket.setNoDelay(true);
  return socket;
}

function splitHostPort(addr: string): { host: string; port: number } {
  const colon = addr.lastIndexOf(':');
  const host = addr.slice(0, colon).replace(/^\[|\]$/g, '');
  return { host, port: Number(addr.slice(colon + 1)) };
}
