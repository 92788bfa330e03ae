import type http from 'node:http';

// RFC 6455 §4.2.1: a base64 nonce of 16 bytes is 22 characters and '=='.
const KEY_PATTERN = /^[+/0-9A-Za-z]{22}==$/;

/**
 * Why a request cannot become a WebSocket (RFC 6455 §4.2.1), checked before
 * any work is done for it: `ws` refuses the same requests, but only after
 * the caller has paid for them, here by opening a tunnel stream.
 */
export function websocketHandshakeError(req: http.IncomingMessage): { status: 400 | 405; message: string } | undefined {
  if (req.method !== 'GET') return { status: 405, message: 'websocket handshake must use GET' };
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return { status: 400, message: 'missing websocket upgrade' };
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY_PATTERN.test(key.trim())) return { status: 400, message: 'invalid sec-websocket-key' };
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return { status: 400, message: 'unsupported sec-websocket-version' };
  return undefined;
}
