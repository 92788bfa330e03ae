import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ClientError } from './errors';
import { redactUrl } from './urls';

// How long the proxy may take to answer CONNECT; the WebSocket handshake timeout starts after.
const CONNECT_TIMEOUT_MS = 30_000;

/**
 * An http.Agent that reaches the target through an HTTP proxy with CONNECT,
 * as Go's `http.ProxyURL` does for the Piko agent's `connect.proxy_url`.
 * Credentials in the proxy URL become `Proxy-Authorization: Basic`. For a
 * `wss` target, TLS to the target runs inside the tunnel with `targetTls`.
 * An `https` proxy URL means TLS to the proxy itself as well.
 */
export class ConnectProxyAgent extends http.Agent {
  private readonly proxy: URL;

  constructor(
    proxyUrl: string,
    private readonly targetTls: tls.ConnectionOptions | undefined,
  ) {
    // One tunnel per WebSocket: nothing to pool.
    super({ keepAlive: false });
    let url: URL;
    try {
      url = new URL(proxyUrl);
    } catch (cause) {
      throw new ClientError('ERR_CLIENT_INVALID_ARGUMENT', 'invalid proxy url', { cause });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ClientError('ERR_CLIENT_INVALID_ARGUMENT', `proxy url ${redactUrl(proxyUrl)} must use http or https`);
    }
    this.proxy = url;
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const done = callback ?? (() => undefined);
    const host = options.hostname ?? options.host ?? 'localhost';
    const port = Number(options.port ?? (this.targetTls ? 443 : 80));
    this.tunnel(host, port).then(
      (socket) => {
        if (!this.targetTls) {
          done(null, socket);
          return;
        }
        const secure = tls.connect({
          ...this.targetTls,
          socket,
          // SNI must not carry an IP address; the certificate check still uses the host.
          servername: this.targetTls.servername ?? (net.isIP(host) === 0 ? host : ''),
        });
        done(null, secure);
      },
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err)), undefined as unknown as Duplex),
    );
    return undefined;
  }

  private tunnel(host: string, port: number): Promise<net.Socket> {
    const proxy = this.proxy;
    const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    const headers: http.OutgoingHttpHeaders = { host: authority };
    if (proxy.username !== '' || proxy.password !== '') {
      const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
    }
    const request = proxy.protocol === 'https:' ? https.request : http.request;
    return new Promise<net.Socket>((resolve, reject) => {
      const req = request({
        host: proxy.hostname.replace(/^\[|\]$/g, ''),
        port: proxy.port === '' ? (proxy.protocol === 'https:' ? 443 : 80) : Number(proxy.port),
        method: 'CONNECT',
        path: authority,
        headers,
        agent: false,
        timeout: CONNECT_TIMEOUT_MS,
      });
      req.once('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          reject(new Error(`proxy ${redactUrl(proxy.toString())} refused CONNECT ${authority}: ${res.statusCode ?? 0}`));
          return;
        }
        socket.setTimeout(0);
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      // A non-2xx CONNECT answer arrives as an ordinary response.
      req.once('response', (res: http.IncomingMessage) => {
        res.resume();
        req.destroy();
        reject(new Error(`proxy ${redactUrl(proxy.toString())} refused CONNECT ${authority}: ${res.statusCode ?? 0}`));
      });
      req.once('timeout', () => req.destroy(new Error(`proxy ${redactUrl(proxy.toString())} did not answer CONNECT in time`)));
      req.once('error', reject);
      req.end();
    });
  }
}
