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
}
