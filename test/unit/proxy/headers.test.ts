import { upstreamRequestHeaders } from '../../../dataplane/proxy/headers';

describe('upstreamRequestHeaders', () => {
  const base = { remoteAddress: '10.1.2.3', proto: 'http' as const };

  it('drops hop-by-hop headers and those named in Connection, keeping TE: trailers as Go does', () => {
    const out = upstreamRequestHeaders(
      { host: 'foo.example.com', connection: 'keep-alive, x-secret', 'keep-alive': '5', 'x-secret': '1', te: 'trailers', accept: '*/*' },
      base,
    );
    expect(out).toEqual({
      host: 'foo.example.com',
      accept: '*/*',
      'x-forwarded-for': '10.1.2.3',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'foo.example.com',
      'x-piko-forward': 'true',
      te: 'trailers',
    });
  });

  it('appends to an existing X-Forwarded-For and keeps earlier proto/host', () => {
    const out = upstreamRequestHeaders(
      { host: 'a.b', 'x-forwarded-for': '1.1.1.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a.b.example' },
      base,
    );
    expect(out['x-forwarded-for']).toBe('1.1.1.1, 10.1.2.3');
    expect(out['x-forwarded-proto']).toBe('https');
    expect(out['x-forwarded-host']).toBe('a.b.example');
  });
});
