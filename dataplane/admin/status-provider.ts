import type { TrafficSummary } from '../metrics/endpoint-traffic';

/** Gossip's view of a node (Piko's cluster.NodeStatus). */
export type NodeState = 'active' | 'unreachable' | 'left';

/** One row of `GET /status/cluster/nodes` (Piko's NodeMetadata). */
export interface NodeStatus {
  id: string;
  status: NodeState;
  proxyAddr: string;
  adminAddr: string;
  /** Endpoints with at least one upstream on the node. */
  endpoints: number;
  /** Upstreams on the node, summed over its endpoints. */
  upstreams: number;
  /** When its Lease was last renewed (this node's clock where it saw the renewal); none without Leases. */
  leaseRenewedAtMs?: number;
}

/** `GET /status/cluster/nodes/:id` (Piko's Node). */
export interface NodeDetail {
  id: string;
  status: NodeState;
  proxyAddr: string;
  adminAddr: string;
  /** Endpoint ID → number of upstreams on the node. */
  endpoints: Record<string, number>;
}

/**
 * What the admin server reads to answer the status routes. The upstream
 * registry and the cluster state implement it; the admin server owns the
 * JSON shape (snake_case keys, as Piko's CLI expects).
 */
export interface StatusProvider {
  /** Endpoint ID → number of upstreams connected to this node. */
  localEndpoints(): Record<string, number>;
  /** The endpoint's recent requests through this node, if any. */
  traffic(endpointId: string): TrafficSummary | undefined;
  /** Every node known to the cluster, this one included. */
  nodes(): NodeStatus[];
  /** A node by ID; `'local'` names this node. */
  node(id: string): NodeDetail | undefined;
  /** This node's ID. */
  localNodeId(): string;
  /** Upstream sessions (agent connections) open on this node. */
  tunnels(): number;
  /** Times each configured limit refused something, since start. */
  limitsTripped(): Promise<Record<string, number>>;
  /** Calls `listener` when this node's or the cluster's endpoints change; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}
