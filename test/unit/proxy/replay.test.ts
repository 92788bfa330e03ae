import type http from 'node:http';
import { shouldReplay } from '../../../dataplane/proxy/replay';

const req = (method: string, headers: http.IncomingHttpHeaders = {}): http.IncomingMessage =>
  ({ method, headers }) as http.IncomingMessage;
const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

describe('shouldReplay', () => {
  const race = { error: err('ECONNRESET'), reusedConnection: true, mayHaveBeenSent: true };

  it('replays any bodiless request none of which can have left', () => {
    expect(shouldReplay(req('POST'), { ...race, mayHaveBeenSent: false })).toBe(true);
    expect(shouldReplay(req('DELETE'), { error: err('ECONNREFUSED'), reusedConnection: false, mayHaveBeenSent: false })).toBe(true);
  });

  it('replays idempotent methods after the keep-alive race, and nothing else', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE']) expect(shouldReplay(req(m), race)).toBe(true);
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH']) expect(shouldReplay(req(m), race)).toBe(false);
  });

  it('takes an idempotency key as the client allowing a repeat', () => {
    expect(shouldReplay(req('POST', { 'idempotency-key': 'a' }), race)).toBe(true);
    expect(shouldReplay(req('POST', { 'x-idempotency-key': 'a' }), race)).toBe(true);
  });

  it('never replays after a fresh connection broke, a body was streamed, or the error is not a drop', () => {
    expect(shouldReplay(req('GET'), { ...race, reusedConnection: false })).toBe(false);
    expect(shouldReplay(req('GET', { 'content-length': '3' }), { ...race, mayHaveBeenSent: false })).toBe(false);
    expect(shouldReplay(req('GET', { 'transfer-encoding': 'chunked' }), { ...race, mayHaveBeenSent: false })).toBe(false);
    expect(shouldReplay(req('GET'), { ...race, error: err('ETIMEDOUT') })).toBe(false);
  });

  it('treats Content-Length: 0 as no body', () => {
    expect(shouldReplay(req('GET', { 'content-length': '0' }), race)).toBe(true);
  });
});
