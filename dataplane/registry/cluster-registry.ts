/** A data-plane node as other nodes see it. */
export interface NodeRecord {
  readonly id: string;
  /** host:port other nodes forward proxied requests to. */
  readonly proxyAddr: string;
  readonly adminAddr: string;
  readonly status: 'active' | 'unreachable' | 'left';
  /** endpointId → number of upstreams the node holds for it. */
  readonly endpoints: Readonly<Record<string, number>>;
  /** When the node's Lease was last renewed, on this node's clock where it saw the renewal happen. */
  readonly leaseRenewedAtMs?: number | undefined;
}

/**
 * Cluster-wide endpoint ownership: which nodes hold upstreams for which
 * endpoints. The memory registry knows only this node; the Kubernetes
 * registry reads and writes Leases and ConfigMaps.
 */
export interface ClusterRegistry {
  readonly nodeId: string;
  /** Starts publishing local state and watching the cluster. */
  start(): Promise<void>;
  /**
   * Records that this node holds `count` upstreams for `endpointId`
   * (0 = none). Implementations batch writes; the call never blocks.
   */
  setLocalEndpoint(endpointId: string, count: number): void;
  /** Other nodes holding upstreams for the endpoint, with their counts. */
  lookup(endpointId: string): readonly { node: NodeRecord; upstreams: number }[];
  /** Resolves when some other node holds the endpoint, or after `timeoutMs` with false. */
  waitForEndpoint(endpointId: string, timeoutMs: number): Promise<boolean>;
  /**
   * Calls `listener` whenever the view of other nodes changes (an endpoint
   * count, a node appearing or expiring). Returns the unsubscribe function.
   */
  onChange(listener: () => void): () => void;
  /** Every node known, this one included. */
  nodes(): readonly NodeRecord[];
  /** Removes this node's records (graceful shutdown) and stops watching. */
  stop(): Promise<void>;
}
