import { NetError } from '../../../dataplane/net/errors';
import { isLoopbackHost, parseListenAddr } from '../../../dataplane/net/host-port';

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

describe('parseListenAddr', () => {
  it.each([
    [':8000', { host: '', port: 8000 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:8000', { host: '::1', port: 8000 }],
  ])('%s', (addr, expected) => expect(parseListenAddr(addr, 'proxy.bind_addr')).toEqual(expected));

  it.each(['8000', 'localhost', ':99999', '[::1]8000', ''])('refuses %j with a code and the key that gave it', (addr) => {
    let thrown: unknown;
    try {
      parseListenAddr(addr, 'proxy.bind_addr');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(NetError);
    expect(thrown).toMatchObject({
      code: 'ERR_INVALID_ADDRESS',
      field: 'proxy.bind_addr',
      message: expect.stringMatching(/^proxy\.bind_addr must be host:port/),
    });
  });
});
