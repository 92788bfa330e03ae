import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { ProxyError } from '../../../dataplane/proxy/errors';
import { forwardHttp, type ForwardResult } from '../../../dataplane/proxy/http-forwarder';
import { request } from '../../helpers/http-client';

describe('forwardHttp', () => {
  it('answers with the abort reason when the exchange was aborted before it began (a timeout during auth)', async () => {
    let connected = false;
    let result: Promise<ForwardResult> | undefined;
    const server = http.createServer((req, res) => {
      const ac = new AbortController();
      ac.abort(new ProxyError('ERR_REQUEST_TIMEOUT'));
      result = forwardHttp(req, res, {
        connect: () => {
          connected = true;
          return Promise.reject(new Error('must not connect'));
        },
        timeoutMs: 5_000,
        proto: 'http',
        signal: ac.signal,
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const res = await request(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
      expect(res.status).toBe(408);
      expect(res.headers.connection).toBe('close');
      await expect(result).resolves.toMatchObject({ status: 408, error: { code: 'ERR_REQUEST_TIMEOUT' } });
      expect(connected).toBe(false);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
