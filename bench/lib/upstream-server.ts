import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The local service behind the agents and the "direct" baseline: a plain Node
 * HTTP server, run as its own process. Prints `listening <port>` when ready.
 *
 *   /100   100 bytes      /1k   1 KiB      /1m   1 MiB
 *   /<n>m  n MiB (2 to 1024), streamed in 1 MiB writes with backpressure (/100m: 100 MiB)
 *   /_stats  {"connections": N}: TCP connections accepted so far, to see how
 *            well an agent reuses its connections to the local service
 */

const MIB = 1024 * 1024;
const fixed: Record<string, Buffer> = {
  '/100': Buffer.alloc(100, 'a'),
  '/1k': Buffer.alloc(1024, 'b'),
  '/1m': Buffer.alloc(MIB, 'c'),
};
const CHUNK = Buffer.alloc(MIB, 'd');
const MAX_STREAMED_MIB = 1024;

function streamBody(res: http.ServerResponse, chunks: number): void {
  let sent = 0;
  const pump = (): void => {
    while (sent < chunks) {
      sent++;
      if (sent === chunks) {
        res.end(CHUNK);
        return;
      }
      if (!res.write(CHUNK)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

let connections = 0;

const server = http.createServer((req, res) => {
  req.resume();
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path === '/_stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ connections }));
    return;
  }
  const body = fixed[path];
  if (body) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
    return;
  }
  const streamed = /^\/(\d+)m$/.exec(path);
  const mib = streamed ? Number(streamed[1]) : 0;
  if (mib >= 2 && mib <= MAX_STREAMED_MIB) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': mib * MIB });
    streamBody(res, mib);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});
server.on('connection', () => {
  connections++;
});
// Longer than any run, so neither wrk nor an agent's pool sees keep-alive connections dropped mid-run.
server.keepAliveTimeout = 120_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
