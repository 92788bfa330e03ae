import http from 'node:http';
import { once } from 'node:events';
import type { LocalUpstreams } from '../../dataplane/registry/local-upstreams';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with a fresh connection and a 10 s bound; resolves with the whole body. */
export function request(url: string, opts: http.RequestOptions & { body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.end(opts.body);
  });
}

/** Waits, on the table's own events, until `endpointId` has `count` local upstreams. */
export async function waitForUpstreams(table: LocalUpstreams, endpointId: string, count: number, timeoutMs = 10_000): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs);
  while (table.count(endpointId) !== count) await once(table, 'change', { signal });
}
