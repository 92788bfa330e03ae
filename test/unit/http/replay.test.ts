import type http from 'node:http';
import { shouldReplay } from '../../../dataplane/http/replay';

const req = (method: string, headers: http.IncomingHttpHeaders = {}): http.IncomingMessage => ({ method, headers }) as http.IncomingMessage;
const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

describe('shouldReplay', () => {
  const sent = { error: err('ECONNRESET'), mayHaveBeenSent: true };

  it('replays any bodiless request none of which can have left', () => {
    expect(shouldReplay(req('POST'), { ...sent, mayHaveBeenSent: false })).toBe(true);
    expect(shouldReplay(req('DELETE'), { error: err('ECONNREFUSED'), mayHaveBeenSent: false })).toBe(true);
  });

  it('replays idempotent methods that may have reached the peer, and nothing else', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE']) expect(shouldReplay(req(m), sent)).toBe(true);
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH']) expect(shouldReplay(req(m), sent)).toBe(false);
  });

  it('takes an idempotency key as the client allowing a repeat', () => {
    expect(shouldReplay(req('POST', { 'idempotency-key': 'a' }), sent)).toBe(true);
    expect(shouldReplay(req('POST', { 'x-idempotency-key': 'a' }), sent)).toBe(true);
  });

  it('never replays a streamed body, or after an error that is not a dropped connection', () => {
    expect(shouldReplay(req('GET', { 'content-length': '3' }), { ...sent, mayHaveBeenSent: false })).toBe(false);
    expect(shouldReplay(req('GET', { 'transfer-encoding': 'chunked' }), { ...sent, mayHaveBeenSent: false })).toBe(false);
    expect(shouldReplay(req('GET'), { ...sent, error: err('ETIMEDOUT') })).toBe(false);
  });

  it('treats Content-Length: 0 as no body', () => {
    expect(shouldReplay(req('GET', { 'content-length': '0' }), sent)).toBe(true);
  });
});
