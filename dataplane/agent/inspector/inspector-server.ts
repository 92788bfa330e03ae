/**
 * The request inspector, as ngrok's on 127.0.0.1:4040: a page and a JSON API over the agent's
 * RequestLog.
 *   GET  /api/requests[?limit=N]        newest first
 *   GET  /api/requests/<id>             one request, bodies included (base64)
 *   POST /api/requests/<id>/replay      sends it to the local service again; the new entry (201)
 *   GET  /                              the page (static files under a strict CSP)
 * It shows bodies, so it guards against other pages in the user's browser: a request whose Host
 * is not the inspector's own address is refused (DNS rebinding), and a replay needs the header
 * `x-piko-inspector: replay`, which no cross-origin form or image can send.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../log/logger';
import { StaticFiles } from '../../http/static-files';
import { closeServer, listenOn } from '../../net/listen';
import type { CapturedRequest, ReplaySource, RequestLog } from './request-log';

export const REPLAY_HEADER = 'x-piko-inspector';

export interface InspectorDeps {
  log: RequestLog;
  /** Sends a captured request again through the listener of its endpoint; undefined when it has none now. */
  replay(source: ReplaySource, replayOf: string): Promise<CapturedRequest> | undefined;
  logger: Logger;
}

const PAGE = new StaticFiles('inspector-ui', {
  '/': 'index.html',
  '/ui/inspector.js': 'inspector.js',
  '/ui/inspector.css': 'inspector.css',
});
const REQUEST_PREFIX = '/api/requests/';

export class InspectorServer {
  private readonly server: http.Server;
  private address: AddressInfo | undefined;

  constructor(private readonly deps: InspectorDeps) {
    this.server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        deps.logger.warn('inspector request failed', { error: err instanceof Error ? err.message : String(err) });
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  async start(bindAddr: string): Promise<AddressInfo> {
    this.address = await listenOn(this.server, bindAddr, 'inspect.bind-addr');
    return this.address;
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.ownHost(req.headers.host)) {
      json(res, 421, { error: 'this inspector answers only to its own address' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://inspector');
    if (PAGE.has(url.pathname) && (req.method === 'GET' || req.method === 'HEAD')) {
      PAGE.serve(res, url.pathname, req.method === 'HEAD');
      return;
    }
    if (url.pathname === '/api/requests' && req.method === 'GET') {
      const limit = Number(url.searchParams.get('limit') ?? this.deps.log.limits.maxRequests);
      const n = Number.isInteger(limit) && limit > 0 ? Math.min(limit, this.deps.log.limits.maxRequests) : this.deps.log.limits.maxRequests;
      json(res, 200, { requests: this.deps.log.list(n) });
      return;
    }
    if (url.pathname.startsWith(REQUEST_PREFIX)) {
      const [id, action, ...rest] = url.pathname.slice(REQUEST_PREFIX.length).split('/');
      if (id === undefined || id === '' || rest.length > 0) {
        json(res, 404, { error: 'not found' });
        return;
      }
      if (action === undefined && req.method === 'GET') {
        const found = this.deps.log.get(id);
        if (found === undefined) json(res, 404, { error: 'no such request (it may have been dropped to keep within the limits)' });
        else json(res, 200, found);
        return;
      }
      if (action === 'replay' && req.method === 'POST') {
        await this.replay(id, req, res);
        return;
      }
    }
    json(res, 404, { error: 'not found' });
  }

  private async replay(id: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // A page of another origin cannot set this header without a preflight, which nothing here answers.
    if (req.headers[REPLAY_HEADER] !== 'replay') {
      json(res, 403, { error: `a replay needs the header ${REPLAY_HEADER}: replay` });
      return;
    }
    req.resume();
    const source = this.deps.log.replaySource(id);
    if (source === undefined) {
      json(res, 404, { error: 'no such request (it may have been dropped to keep within the limits)' });
      return;
    }
    if (!source.complete) {
      json(res, 409, { error: 'the request body was larger than inspect.max_body_bytes, so it cannot be replayed as it was' });
      return;
    }
    const replayed = this.deps.replay(source, id);
    if (replayed === undefined) {
      json(res, 409, { error: `endpoint ${source.endpointId} has no HTTP listener now` });
      return;
    }
    json(res, 201, await replayed);
  }

  /** The Host a browser sends for the inspector's own address (or localhost for loopback). */
  private ownHost(host: string | undefined): boolean {
    if (host === undefined || this.address === undefined) return false;
    // Bound to every interface (inspect.allow_remote): any name may reach it.
    if (this.address.address === '0.0.0.0' || this.address.address === '::') return true;
    const port = String(this.address.port);
    const name = host.endsWith(`:${port}`) ? host.slice(0, -port.length - 1) : undefined;
    if (name === undefined) return false;
    const bare = name.replace(/^\[|\]$/g, '');
    return bare === 'localhost' || bare === this.address.address || bare === '127.0.0.1' || bare === '::1';
  }
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
