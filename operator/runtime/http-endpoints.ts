/**
 * The operator's two small HTTP servers, as controller-runtime has them:
 * metrics on one address, probes on another, so a probe never waits behind
 * a slow scrape and each can be exposed (or not) on its own.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../../dataplane/log/logger';
import { closeServer, listenOn } from '../../dataplane/net/listen';

export interface EndpointAnswer {
  status: number;
  body: string;
  contentType?: string;
}

export type EndpointHandler = () => EndpointAnswer | Promise<EndpointAnswer>;

export class HttpEndpoints {
  private readonly server: http.Server;

  constructor(
    private readonly routes: Readonly<Record<string, EndpointHandler>>,
    private readonly logger: Logger,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  /** `field` names the flag in errors (`--health-bind-addr: cannot listen ...`). */
  start(bindAddr: string, field: string): Promise<AddressInfo> {
    return listenOn(this.server, bindAddr, field);
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const route = this.routes[path];
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let answer: EndpointAnswer;
    try {
      answer = await route();
    } catch (err) {
      this.logger.error('http endpoint failed', { path, error: err instanceof Error ? err.message : String(err) });
      answer = { status: 500, body: 'internal error\n' };
    }
    res
      .writeHead(answer.status, { 'content-type': answer.contentType ?? 'text/plain; charset=utf-8' })
      .end(req.method === 'HEAD' ? undefined : answer.body);
  }
}

/** `/metrics` from the operator's registry. */
export function metricsRoutes(registry: Registry): Record<string, EndpointHandler> {
  return {
    '/metrics': async () => ({ status: 200, body: await registry.metrics(), contentType: registry.contentType }),
  };
}

/**
 * `/healthz`: the process serves. `/readyz`: every informer has completed
 * its first list; `notReady` returns why not, or undefined when ready.
 */
export function probeRoutes(notReady: () => string | undefined): Record<string, EndpointHandler> {
  return {
    '/healthz': () => ({ status: 200, body: 'ok\n' }),
    '/readyz': () => {
      const reason = notReady();
      return reason === undefined ? { status: 200, body: 'ok\n' } : { status: 503, body: `not ready: ${reason}\n` };
    },
  };
}
