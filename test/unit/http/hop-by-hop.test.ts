import { downstreamResponseHeaders, endToEndHeaders } from '../../../dataplane/http/hop-by-hop';

describe('downstreamResponseHeaders', () => {
  it('keeps repeated headers and drops hop-by-hop ones', () => {
    const raw = [
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'Connection',
      'close',
      'Transfer-Encoding',
      'chunked',
      'Content-Type',
      'text/plain',
    ];
    expect(downstreamResponseHeaders(raw, false)).toEqual(['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Type', 'text/plain']);
  });

  it('keeps Connection and Upgrade on a 101', () => {
    const raw = ['Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Accept', 'x'];
    expect(downstreamResponseHeaders(raw, true)).toEqual(raw);
  });
});

describe('endToEndHeaders', () => {
  it('keeps TE only as "trailers", and drops every other hop-by-hop header', () => {
    expect(endToEndHeaders({ te: 'trailers, deflate', 'keep-alive': '1', accept: 'x' })).toEqual({ accept: 'x', te: 'trailers' });
    expect(endToEndHeaders({ te: 'gzip', accept: 'x' })).toEqual({ accept: 'x' });
  });

  it('drops what Connection names and what the caller asks for', () => {
    expect(endToEndHeaders({ connection: 'x-a', 'x-a': '1', 'x-b': '2', 'x-c': '3' }, new Set(['x-b']))).toEqual({ 'x-c': '3' });
  });
});
