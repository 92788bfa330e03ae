import type { ClusterRegistry, NodeRecord } from './cluster-registry';

/**
 * The single-node registry: this node is the whole cluster, so no other
 * node ever holds an endpoint. The default, and what runs without Kubernetes.
 */
export class MemoryRegistry implements ClusterRegistry {
  private readonly endpoints = new Map<string, number>();

  constructor(
    readonly nodeId: string,
    private readonly addrs: { proxyAddr: string; adminAddr: string },
  ) {}

  async start(): Promise<void> {}

  setLocalEndpoint(endpointId: string, count: number): void {
    if (count > 0) this.endpoints.set(endpointId, count);
    else this.endpoints.delete(endpointId);
  }

  lookup(): readonly { node: NodeRecord; upstreams: number }[] {
    return [];
  }

  async waitForEndpoint(): Promise<boolean> {
    return false;
  }

  /** A single node's view of other nodes never changes. */
  onChange(): () => void {
    return () => undefined;
  }

  nodes(): readonly NodeRecord[] {
    return [
      {
        id: this.nodeId,
        proxyAddr: this.addrs.proxyAddr,
        adminAddr: this.addrs.adminAddr,
        status: 'active',
        endpoints: Object.fromEntries(this.endpoints),
      },
    ];
  }

  async stop(): Promise<void> {
    this.endpoints.clear();
  }
}
