/**
 * `piko server status ...`: reads a node's admin API and prints YAML, as
 * Piko does. `--server.token` is ours: Piko's status client has no way to
 * reach an admin port with auth on.
 */
import { posix } from 'node:path';

// Only the status commands print YAML; the server and agent never load it.
const toYaml = (value: unknown): string =>
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the lazy load above
  (require('yaml') as typeof import('yaml')).stringify(value);

export interface StatusClientOptions {
  /** The admin port, e.g. http://localhost:8002. */
  url: string;
  token?: string;
  /** Node ID the admin server should forward the request to. */
  forward?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export const NODE_STATUSES = ['active', 'unreachable', 'left'] as const;

// Piko's status client waits 15s.
const DEFAULT_TIMEOUT_MS = 15_000;

export class StatusRequestError extends Error {
  override readonly name = 'StatusRequestError';
  readonly code = 'ERR_STATUS_REQUEST';
}

/** GETs an admin status path and returns the decoded JSON. */
export async function fetchStatus(options: StatusClientOptions, path: string, what: string): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (cause) {
    throw new StatusRequestError(`invalid --server.url ${JSON.stringify(options.url)}`, { cause });
  }
  // Appended to any base path, as Piko's path.Join does.
  url.pathname = posix.join(url.pathname, path);
  if (options.forward) url.search = `forward=${encodeURIComponent(options.forward)}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const doFetch = options.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, { headers, signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS) });
  } catch (cause) {
    const reason = cause instanceof Error ? ((cause.cause as Error | undefined)?.message ?? cause.message) : String(cause);
    throw new StatusRequestError(`failed to get ${what}: ${reason}`, { cause });
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new StatusRequestError(`failed to get ${what}: bad status ${res.status}`);
  }
  try {
    return await res.json();
  } catch (cause) {
    throw new StatusRequestError(`failed to get ${what}: invalid JSON response`, { cause });
  }
}

export async function upstreamEndpointsYaml(options: StatusClientOptions): Promise<string> {
  const endpoints = await fetchStatus(options, '/status/upstream/endpoints', 'upstream endpoints');
  return toYaml(endpoints);
}

/** Piko prints `nodes:` sorted by ID, optionally filtered by status. */
export async function clusterNodesYaml(options: StatusClientOptions, status?: string): Promise<string> {
  const nodes = await fetchStatus(options, '/status/cluster/nodes', 'cluster nodes');
  if (!Array.isArray(nodes)) throw new StatusRequestError('failed to get cluster nodes: response is not a list');
  const filtered = (nodes as Array<{ id?: unknown; status?: unknown }>)
    .filter((n) => status === undefined || n.status === status)
    .sort((a, b) => (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0));
  return toYaml({ nodes: filtered });
}

/** `id` may be `local`. */
export async function clusterNodeYaml(options: StatusClientOptions, id: string): Promise<string> {
  const node = await fetchStatus(options, `/status/cluster/nodes/${encodeURIComponent(id)}`, `cluster node ${id}`);
  return toYaml(node);
}
