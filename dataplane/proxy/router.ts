import type { Upstream } from '../http/reverse-proxy';
import type { LocalUpstreams } from '../registry/local-upstreams';
import { ProxyError } from '../http/proxy-error';
import { dialLocalUpstream } from './upstream-dialer';
import { clampDelay } from '../time/timer';
import { isTunnelError } from '../tunnel/errors';

const isRefusal = (err: Error): boolean => isTunnelError(err) && err.code === 'ERR_YAMUX_STREAM_REFUSED';

/**
 * Where one request goes: a connection of its own (a tunnel stream, or a
 * dedicated connection to another node for an upgrade), or the keep-alive
 * pool of another node for an ordinary request; `via` is 'local' for a
 * tunnel stream on this node, else the id of the node forwarded to.
 */
export type Route = Upstream & { readonly via: 'local' | string };

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
      remote?: (endpointId: string, dedicated: boolean) => Promise<Route | undefined>;
      /** Subscribes to changes in other nodes' endpoints; returns the unsubscribe function. */
      onRemoteChange?: (listener: () => void) => () => void;
    },
  ) {}

  /**
   * Opens a connection for one request. `forwarded` requests came from
   * another node and are served locally only, so a request never crosses
   * more than one hop. When nobody can take the request it is held for up
   * to holdTimeoutMs, trying again on every change to where the endpoint is
   * served: an upstream reconnecting during a rollout, or a stale record of
   * a pod that is gone being replaced by a live one. `early` lets a local
   * tunnel stream come back before its upstream accepted it (the request
   * then does not wait a round trip for the ACK); the route's `refused`
   * says whether a failure means the upstream never took the request.
   */
  async connect(endpointId: string, how: { forwarded: boolean; dedicated?: boolean; early?: boolean }): Promise<Route> {
    const { forwarded, dedicated = false, early = false } = how;
    const deadline = performance.now() + this.options.holdTimeoutMs;
    for (;;) {
      const routed = await this.tryOnce(endpointId, forwarded, dedicated, early);
      if (routed) return routed;
      const remaining = deadline - performance.now();
      if (remaining <= 0 || !(await this.waitForChange(endpointId, forwarded, remaining))) {
        throw new ProxyError('ERR_NO_UPSTREAM', { detail: endpointId });
      }
    }
  }

  private async tryOnce(endpointId: string, forwarded: boolean, dedicated: boolean, early: boolean): Promise<Route | undefined> {
    if (this.local.count(endpointId) > 0) {
      try {
        const { stream } = await dialLocalUpstream(this.local, endpointId, early);
        return early ? { conn: stream, via: 'local', refused: isRefusal } : { conn: stream, via: 'local' };
      } catch (err) {
        // Every local upstream failed; another node may still serve it.
        if (forwarded || !this.options.remote) throw err;
      }
    }
    if (forwarded || !this.options.remote) return undefined;
    return this.options.remote(endpointId, dedicated);
  }

  /** True on the next change that might let the request through; false at the timeout. */
  private waitForChange(endpointId: string, forwarded: boolean, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const onLocal = (id: string, count: number): void => {
        if (id === endpointId && count > 0) done(true);
      };
      const unsubscribe = !forwarded && this.options.onRemoteChange ? this.options.onRemoteChange(() => done(true)) : undefined;
      const timer = setTimeout(() => done(false), clampDelay(timeoutMs));
      const done = (result: boolean): void => {
        clearTimeout(timer);
        this.local.off('change', onLocal);
        unsubscribe?.();
        resolve(result);
      };
      this.local.on('change', onLocal);
    });
  }
}
