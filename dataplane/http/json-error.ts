import { startTimer } from '../time/timer';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { abortStartedResponse } from './abort-response';

/**
 * Piko's error body: `{"error": "..."}` with the status code carrying the
 * class of failure (400 missing endpoint, 401 auth, 502 upstream, 504 timeout).
 */
export function writeJsonError(res: http.ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    // The response is already under way: the status can no longer change, so
    // the only honest signal left is a cut body.
    abortStartedResponse(res);
    return;
  }
  const body = JSON.stringify({ error: message }) + '\n';
  // setHeader rather than writeHead's argument, so access logs see them.
  res.setHeader('content-type', 'application/json');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.writeHead(status);
  res.end(body);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * Answers a rejected upgrade on the raw socket with a real HTTP response, so
 * a WebSocket client sees the status and the JSON error instead of a reset.
 */
export function writeJsonErrorToSocket(socket: Duplex, status: number, message: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: message }) + '\n';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  // The socket is ours to release: an upgrade's comes paused and half-open, where even a
  // client that closes goes unseen, and one that never closes would hold it for good. What
  // the client still sends is read and dropped, and it gets a little while to read the answer.
  socket.resume();
  const linger = startTimer(REFUSED_LINGER_MS, () => socket.destroy()).unref();
  socket.once('close', () => linger.clear());
}

// How long a refused connection may take to read our answer before it is cut.
const REFUSED_LINGER_MS = 2_000;

/**
 * Answers what Node's HTTP parser or its deadlines found on a connection
 * with no exchange under way: 431 for headers over the limit, 408 for a
 * request too slow, 400 for anything malformed. Node's default writes the
 * status and destroys the socket, and a destroy can overtake the status
 * (always so on a tunnel stream, where it is a reset): the client saw a bare
 * close. This ends the socket instead, then cuts it if the client does not
 * read. Returns the status sent, or undefined when there was no one to tell.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): 400 | 408 | 431 | undefined {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return undefined;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  writeJsonErrorToSocket(socket, status, status === 431 ? 'request headers too large' : status === 408 ? 'request timeout' : 'bad request');
  return status;
}
