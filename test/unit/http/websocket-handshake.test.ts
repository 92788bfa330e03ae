import type http from 'node:http';
import { websocketHandshakeError } from '../../../dataplane/http/websocket-handshake';

const handshake = (method: string, headers: http.IncomingHttpHeaders): http.IncomingMessage =>
  ({ method, headers }) as http.IncomingMessage;
const good = { upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };

describe('websocketHandshakeError', () => {
  it('accepts a valid handshake', () => {
    expect(websocketHandshakeError(handshake('GET', good))).toBeUndefined();
    expect(websocketHandshakeError(handshake('GET', { ...good, upgrade: 'WebSocket' }))).toBeUndefined();
  });

  it.each([
    ['POST', good, 405],
    ['GET', { ...good, upgrade: 'h2c' }, 400],
    ['GET', { ...good, 'sec-websocket-key': undefined }, 400],
    ['GET', { ...good, 'sec-websocket-key': 'c2hvcnQ=' }, 400],
    ['GET', { ...good, 'sec-websocket-version': '7' }, 400],
  ])('refuses %s %j with %d', (method, headers, status) => {
    expect(websocketHandshakeError(handshake(method, headers))?.status).toBe(status);
  });
});
