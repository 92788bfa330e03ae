import { isLoopbackHost } from '../../../dataplane/net/host-port';

describe('isLoopbackHost', () => {
  it.each(['localhost', 'LOCALHOST', 'api.localhost', '127.0.0.1', '127.255.0.9', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])(
    '%s is loopback',
    (h) => expect(isLoopbackHost(h)).toBe(true),
  );
  it.each([
    'example.com',
    'localhost.example.com',
    '10.0.0.1',
    '128.0.0.1',
    '::2',
    '[::ffff:10.0.0.1]',
    '',
    '127.0.0.1.nip.io',
    '0.0.0.0',
    '::',
  ])('%s is not', (h) => expect(isLoopbackHost(h)).toBe(false));
});
