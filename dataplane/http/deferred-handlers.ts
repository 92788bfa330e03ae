import type http from 'node:http';
import type { Duplex } from 'node:stream';

export type UpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface HttpHandlers {
  request: http.RequestListener;
  upgrade?: UpgradeListener;
}

/** More than a node's start-up can see in its few milliseconds between bind and serve. */
const MAX_HELD = 256;

/**
 * Lets a server listen before whatever answers its requests exists: a node
 * must know its bound addresses to build its registry, and the proxy needs
 * the registry. Requests (and, with `upgrades`, upgrade requests) that
 * arrive in between are held and handed to the handlers given to the
 * returned `serve`, in arrival order; past MAX_HELD they get a 503 at once.
 * Without this, Node would emit them to no listener and leave them hanging.
 */
export function deferHandlers(server: http.Server, options: { upgrades: boolean }): (handlers: HttpHandlers) => void {
  type Held =
    | { kind: 'request'; req: http.IncomingMessage; res: http.ServerResponse }
    | { kind: 'upgrade'; req: http.IncomingMessage; socket: Duplex; head: Buffer };
  const held: Held[] = [];
  const holdRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (held.length >= MAX_HELD) {
      res.writeHead(503, { 'content-type': 'text/plain', connection: 'close', 'retry-after': '1' }).end('starting\n');
      return;
    }
    held.push({ kind: 'request', req, res });
  };
  const holdUpgrade: UpgradeListener = (req, socket, head) => {
    if (held.length >= MAX_HELD) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    held.push({ kind: 'upgrade', req, socket, head });
  };
  server.on('request', holdRequest);
  if (options.upgrades) server.on('upgrade', holdUpgrade);
  let served = false;
  return (handlers) => {
    if (served) throw new Error('deferHandlers: serve called twice');
    served = true;
    server.off('request', holdRequest);
    server.on('request', handlers.request);
    if (options.upgrades) {
      server.off('upgrade', holdUpgrade);
      if (handlers.upgrade) server.on('upgrade', handlers.upgrade);
    }
    for (const h of held.splice(0)) {
      if (h.kind === 'request') handlers.request(h.req, h.res);
      else if (handlers.upgrade) handlers.upgrade(h.req, h.socket, h.head);
      else h.socket.destroy();
    }
  };
}
