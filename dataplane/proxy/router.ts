import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import type { LocalUpstreams } from '../registry/local-upstreams';
import { ProxyError } from './errors';
import { dialLocalUpstream } from './upstream-dialer';

export interface RoutedConnection {
  conn: Duplex;
  /** 'local' for a tunnel stream on this node, else the id of the node forwarded to. */
  via: 'local' | string;
  /** Headers this hop must add (e.g. the inter-node credential). */
  extraHeaders?: Record<string, string>;
}

/**
 * Decides where a request for an endpoint goes and opens the connection
 * that carries it. Local upstreams first (as Piko); other nodes are the
 * cluster registry's business and come in through `remote`.
 */
export class Router {
  constructor(
    private readonly local: LocalUpstreams,
    private readonly options: {
      /** How long to hold a request for an endpoint nobody serves yet (e.g. an upstream reconnecting). */
      holdTimeoutMs: number;
      /** Routes to another node; undefined on a single node. */
      remote?: (endpointId: string) => Promise<RoutedConnection | undefined>;
      /** Resolves true once another node reports the endpoint, false at the timeout. */
      waitForRemote?: (endpointId: string, timeoutMs: number) => Promise<boolean>;
    },
  ) {}

  /**
   * Opens a connection for one request. `forwarded` requests came from
   * another node and are served locally only, so a request never crosses
   * more than one hop.
   */
  async connect(endpointId: string, forwarded: boolean): Promise<RoutedConnection> {
    const first = await this.tryOnce(endpointId, forwarded);
    if (first) return first;
    if (this.options.holdTimeoutMs > 0 && (await this.waitForHolder(endpointId, forwarded, this.options.holdTimeoutMs))) {
      const second = await this.tryOnce(endpointId, forwarded);
      if (second) return second;
    }
    throw new ProxyError('ERR_NO_UPSTREAM', { detail: endpointId });
  }

  private async tryOnce(endpointId: string, forwarded: boolean): Promise<RoutedConnection | undefined> {
    if (this.local.count(endpointId) > 0) {
      try {
        const { stream } = await dialLocalUpstream(this.local, endpointId);
        return { conn: stream, via: 'local' };
      } catch (err) {
        // Every local upstream failed; another node may still serve it.
        if (forwarded || !this.options.remote) throw err;
      }
    }
    if (forwarded || !this.options.remote) return undefined;
    return this.options.remote(endpointId);
  }

  /** Waits for an upstream to appear here or, unless forwarded, on another node. */
  private async waitForHolder(endpointId: string, forwarded: boolean, timeoutMs: number): Promise<boolean> {
    if (this.local.count(endpointId) > 0) return true;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    const local = (async () => {
      for (;;) {
        const [id, count] = (await once(this.local, 'change', { signal: ac.signal })) as [string, number];
        if (id === endpointId && count > 0) return true;
      }
    })().catch(() => false);
    const waiters = [local];
    if (!forwarded && this.options.waitForRemote) waiters.push(this.options.waitForRemote(endpointId, timeoutMs));
    try {
      return await Promise.race(waiters);
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  }
}
