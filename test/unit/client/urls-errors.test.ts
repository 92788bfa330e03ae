import { ClientError, statusError } from '../../../dataplane/client/errors';
import { redactUrl, tcpUrl, upstreamUrl } from '../../../dataplane/client/urls';

describe('endpoint urls', () => {
  it('maps http to ws and https to wss, appending the route to the path', () => {
    expect(upstreamUrl('http://localhost:8001', 'ep')).toBe('ws://localhost:8001/piko/v1/upstream/ep');
    expect(upstreamUrl('https://piko.example.com/base', 'ep')).toBe('wss://piko.example.com/base/piko/v1/upstream/ep');
    expect(tcpUrl('http://localhost:8000', 'ep')).toBe('ws://localhost:8000/_piko/v1/tcp/ep');
    expect(tcpUrl('wss://piko.example.com:443/', 'ep')).toBe('wss://piko.example.com/_piko/v1/tcp/ep');
  });

  it('escapes the endpoint id so it stays one path segment', () => {
    expect(upstreamUrl('http://h', 'a/b?c')).toBe('ws://h/piko/v1/upstream/a%2Fb%3Fc');
  });

  it('refuses other schemes, bad urls and empty ids with a coded error', () => {
    expect(() => upstreamUrl('ftp://h', 'ep')).toThrow(expect.objectContaining({ code: 'ERR_CLIENT_INVALID_ARGUMENT' }));
    expect(() => upstreamUrl('not a url', 'ep')).toThrow(expect.objectContaining({ code: 'ERR_CLIENT_INVALID_ARGUMENT' }));
    expect(() => upstreamUrl('http://h', '')).toThrow(expect.objectContaining({ code: 'ERR_CLIENT_INVALID_ARGUMENT' }));
  });

  it('drops credentials from urls it logs', () => {
    expect(redactUrl('http://user:secret@proxy:3128/')).toBe('http://proxy:3128/');
    expect(redactUrl('http://proxy:3128/')).toBe('http://proxy:3128/');
  });
});

describe('ClientError', () => {
  it('retries what Piko retries and nothing else', () => {
    const retryable = [408, 429, 500, 502, 503, 504].map((s) => statusError(s, undefined).retryable);
    const fatal = [400, 401, 403, 404, 405, 501].map((s) => statusError(s, undefined).retryable);
    expect(retryable.every(Boolean)).toBe(true);
    expect(fatal.some(Boolean)).toBe(false);
    expect(new ClientError('ERR_CLIENT_CONNECT', 'refused').retryable).toBe(true);
    expect(new ClientError('ERR_CLIENT_TIMEOUT', 'slow').retryable).toBe(false);
  });

  it('names the status and the server message', () => {
    const err = statusError(401, 'invalid token');
    expect(err.message).toBe('server answered 401 Unauthorized: invalid token');
    expect(err).toMatchObject({ code: 'ERR_CLIENT_HTTP_STATUS', status: 401, serverError: 'invalid token' });
  });
});
