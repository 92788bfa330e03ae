import { endpointIdFromHeaders, endpointIdFromTcpPath } from '../../../dataplane/protocol/endpoint-id';

describe('endpointIdFromHeaders', () => {
  it.each([
    [{ 'x-piko-endpoint': 'foo', host: 'bar.example.com' }, 'foo'],
    [{ 'x-piko-endpoint': '', host: 'bar.example.com' }, 'bar'],
    [{ host: 'foo.piko.example.com:9000' }, 'foo'],
    [{ host: 'Foo.example.com' }, 'Foo'],
    [{ host: 'localhost' }, undefined],
    [{ host: 'localhost:8000' }, undefined],
    [{ host: '127.0.0.1:8000' }, undefined],
    [{ host: '10.0.0.1' }, undefined],
    [{ host: '[::1]:8000' }, undefined],
    [{ host: '::1' }, undefined],
    [{ host: '' }, undefined],
    [{}, undefined],
    [{ host: '.example.com' }, undefined],
  ])('%j → %s', (headers, expected) => {
    expect(endpointIdFromHeaders(headers)).toBe(expected);
  });
});

describe('endpointIdFromTcpPath', () => {
  it.each([
    ['/_piko/v1/tcp/my-endpoint', 'my-endpoint'],
    ['/_piko/v1/tcp/my%2Dendpoint?x=1', 'my-endpoint'],
    ['/_piko/v1/tcp/', undefined],
    ['/_piko/v1/tcp/a/b', undefined],
    ['/_piko/v1/tcp/%E0%A4%A', undefined],
    ['/other', undefined],
  ])('%s → %s', (path, expected) => {
    expect(endpointIdFromTcpPath(path)).toBe(expected);
  });
});
