import type http from 'node:http';
import type { Registry } from 'prom-client';
import { authenticate } from '../auth/authenticate';
import { AuthError } from '../auth/errors';
import type { TokenVerifier } from '../auth/verifier';
import { writeJsonError } from '../http/json-error';
import type { Logger } from '../log/logger';
import type { NodeDetail, NodeStatus, StatusProvider } from './status-provider';
import { buildOverview, ChangeFeed } from './status-overview';
import { STATUS_PAGE } from './status-page';

export interface AdminDeps {
  registry: Registry;
  /** False until start-up is done and again once shutdown begins. */
  isReady(): boolean;
  /** Admin-port auth; when set it guards every route, probes included. */
  verifier?: TokenVerifier;
  status: StatusProvider;
  logger: Logger;
}

export type AdminHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const NODES_PREFIX = '/status/cluster/nodes/';

/**
 * The admin port's request handler: probes, Prometheus metrics and the status
 * API read by `piko server status`. The caller owns the server (and its TLS)
 * so that shutdown can close the admin port last.
 */
export function createAdminHandler(deps: AdminDeps): AdminHandler {
  const { logger } = deps;
  const startedAt = Date.now();
  const changes = new ChangeFeed(deps.status);

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = pathOf(req.url);
    // The page's own files hold no data, and a browser cannot send a bearer token for a page it
    // navigates to: they come without auth, and the page then asks for the token that the
    // JSON it reads needs, as every other route does.
    if ((req.method === 'GET' || req.method === 'HEAD') && STATUS_PAGE.has(path)) {
      STATUS_PAGE.serve(res, path, req.method === 'HEAD');
      return;
    }
    // Piko installs admin auth as global middleware, ahead of routing: with a
    // verifier even /health and unknown paths need a token. Kubernetes probes
    // must then carry one, or the admin port must stay without auth.
    try {
      await authenticate(deps.verifier, req.headers);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      logger.warn('admin auth failed', {
        code: err.code,
        path: pathOf(req.url),
        ...(err.status === 500 && err.cause instanceof Error ? { error: err.cause.message } : {}),
      });
      // Piko answers a verifier failure with a bare 500; its text is only
      // for our log.
      if (err.status === 401) writeJsonError(res, 401, err.message);
      else writeEmpty(res, 500);
      return;
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      writeJsonError(res, 404, 'not found');
      return;
    }
    switch (path) {
      case '/health':
        writeEmpty(res, 200);
        return;
      case '/ready':
        writeEmpty(res, deps.isReady() ? 200 : 503);
        return;
      case '/metrics': {
        const body = await deps.registry.metrics();
        res.writeHead(200, {
          'content-type': deps.registry.contentType,
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      case '/status/overview': {
        const params = new URL(req.url ?? '/', 'http://admin').searchParams;
        await changes.wait(params.get('since'), res);
        const version = changes.version;
        writeJson(res, { version, ...(await buildOverview(deps.status, params.get('q') ?? '', (Date.now() - startedAt) / 1000)) });
        return;
      }
      case '/status/upstream/endpoints':
        writeJson(res, deps.status.localEndpoints());
        return;
      case '/status/cluster/nodes':
        writeJson(res, deps.status.nodes().map(nodeStatusJson));
        return;
    }
    if (path.startsWith(NODES_PREFIX)) {
      const id = decodeSegment(path.slice(NODES_PREFIX.length));
      const node = id === undefined ? undefined : deps.status.node(id);
      if (node === undefined) writeJsonError(res, 404, 'node not found');
      else writeJson(res, nodeDetailJson(node));
      return;
    }
    writeJsonError(res, 404, 'not found');
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error('admin request failed', {
        path: pathOf(req.url),
        error: err instanceof Error ? err.message : String(err),
      });
      // Piko's panic handler answers an empty 500.
      if (res.headersSent) res.destroy();
      else writeEmpty(res, 500);
    });
  };
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q === -1 ? raw : raw.slice(0, q);
}

// A node ID is one path segment; anything else (an empty ID, a slash, bad
// percent-encoding) cannot name a node.
function decodeSegment(segment: string): string | undefined {
  if (segment === '' || segment.includes('/')) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

// Piko's probes answer with a status and no body.
function writeEmpty(res: http.ServerResponse, status: number): void {
  res.writeHead(status, { 'content-length': 0 });
  res.end();
}

// gin's c.JSON: this content type and no trailing newline.
function writeJson(res: http.ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function nodeStatusJson(node: NodeStatus): Record<string, unknown> {
  return {
    id: node.id,
    status: node.status,
    proxy_addr: node.proxyAddr,
    admin_addr: node.adminAddr,
    endpoints: node.endpoints,
    upstreams: node.upstreams,
  };
}

function nodeDetailJson(node: NodeDetail): Record<string, unknown> {
  return {
    id: node.id,
    status: node.status,
    proxy_addr: node.proxyAddr,
    admin_addr: node.adminAddr,
    endpoints: node.endpoints,
  };
}
