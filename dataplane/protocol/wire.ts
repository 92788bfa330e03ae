/**
 * Piko's wire names, spelled once: the paths an agent and a TCP client connect to, and the
 * headers the proxy reads and sets. Go Piko uses the same strings (docs/go-piko-behaviour.md).
 */

/** Upstream port: `<UPSTREAM_PATH><endpoint>` takes an agent's WebSocket tunnel. */
export const UPSTREAM_PATH = '/piko/v1/upstream/';
/** Proxy port: `<TCP_PATH><endpoint>` carries one raw TCP connection over a WebSocket. */
export const TCP_PATH = '/_piko/v1/tcp/';

/** Names the endpoint of a request, ahead of the Host's first label. */
export const ENDPOINT_HEADER = 'x-piko-endpoint';
/** Set on a request one node forwards to another, so the receiver serves it locally. */
export const FORWARDED_HEADER = 'x-piko-forward';
/**
 * Ours, not Go Piko's (whose agents ignore it): on the 101 of an agent's tunnel, where clients
 * reach the endpoint, for the agent to print.
 */
export const ENDPOINT_URL_HEADER = 'x-piko-endpoint-url';
