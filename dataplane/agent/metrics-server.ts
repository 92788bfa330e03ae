import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger';
import { closeServer, listenOn } from '../net/listen';

/** The agent's optional `/metrics` server (`server.enabled`, `server.bind_addr`). */
export class MetricsServer {
  private readonly server: http.Server;

  constructor(
    private readonly registry: Registry,
    private readonly logger: Logger,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  start(bindAddr: string): Promise<AddressInfo> {
    return listenOn(this.server, bindAddr, 'server.bind-addr');
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    try {
      const body = await this.registry.metrics();
      res.writeHead(200, { 'content-type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      this.logger.error('collecting metrics failed', { error: String(err) });
      res.writeHead(500).end();
    }
  }
}
