import type { ClusterRegistry, NodeRecord } from '../../registry/cluster-registry';
import type { Route } from '../router';
import { FORWARD_AUTH_HEADER, type ForwardAuth } from './forward-auth';
import type { ForwardingTls } from './forwarding-tls';
import { PeerAgent } from './peer-pool';

export interface RemoteDialerOptions {
  registry: Pick<ClusterRegistry, 'lookup'>;
  /** This node's id, signed into every forwarded request. */
  nodeId: string;
  auth: ForwardAuth;
  /** TLS towards other nodes' proxy ports (Piko's proxy.tls.client); plain TCP when unset. */
  tls?: Pick<ForwardingTls, 'forNode' | 'generation'>;
  connectTimeoutMs?: number;
  /** Picks a number in [0, 1); injectable so tests can pin the choice. */
  random?: () => number;
}

/**
 * Routes a request to another node that holds upstreams for an endpoint.
 * The node is drawn at random weighted by its upstream count, so load
 * follows the upstreams (Piko picks uniformly, its issue 30). A node that
 * cannot be reached is dropped and another drawn: nothing of the request
 * has been sent yet. Ordinary requests ride keep-alive connections to the
 * node; upgrades (`dedicated`) get a connection of their own.
 */
export interface RemoteDialer {
  dial(endpointId: string, dedicated: boolean): Promise<Route | undefined>;
  /** Closes every pooled connection to other nodes. */
  close(): void;
}

export function createRemoteDialer(options: RemoteDialerOptions): RemoteDialer {
  const random = options.random ?? Math.random;
  const timeoutMs = options.connectTimeoutMs ?? 5000;
  const peers = new Map<string, PeerAgent>();
  const peerFor = (node: NodeRecord): PeerAgent => {
    const tls = options.tls;
    const key = `${node.id}@${node.proxyAddr}#${tls?.generation ?? 0}`;
    let peer = peers.get(key);
    if (!peer) {
      // A node that moved (new address), or renewed TLS settings, leave the old pool behind.
      for (const [k, p] of peers) {
        if (!k.startsWith(`${node.id}@`)) continue;
        p.destroy();
        peers.delete(k);
      }
      peer = new PeerAgent(node.proxyAddr, tls?.forNode(node.id), timeoutMs);
      peers.set(key, peer);
    }
    return peer;
  };
  const dial = async (endpointId: string, dedicated: boolean): Promise<Route | undefined> => {
    const candidates = options.registry.lookup(endpointId).filter((c) => c.upstreams > 0);
    while (candidates.length > 0) {
      const index = weightedPick(
        candidates.map((c) => c.upstreams),
        random(),
      );
      const [chosen] = candidates.splice(index, 1) as [{ node: NodeRecord; upstreams: number }];
      const peer = peerFor(chosen.node);
      const headers = { [FORWARD_AUTH_HEADER]: options.auth.sign(options.nodeId) };
      try {
        if (dedicated) return { conn: await peer.connect(), via: chosen.node.id, headers };
        await peer.prepare();
        return { pool: peer, via: chosen.node.id, headers };
      } catch {
        // Unreachable node: the next draw excludes it.
      }
    }
    return undefined;
  };
  return {
    dial,
    close: () => {
      for (const peer of peers.values()) peer.destroy();
      peers.clear();
    },
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
