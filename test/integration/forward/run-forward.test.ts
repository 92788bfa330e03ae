import { once } from 'node:events';
import net from 'node:net';
import { loadForwardConfig, type ForwardConfig } from '../../../dataplane/config/forward-config';
import { runForward } from '../../../dataplane/forward/run-forward';
import { silentLogger } from '../../../dataplane/log/logger';

function config(addr: string): ForwardConfig {
  const base = loadForwardConfig({ port: { addr: '127.0.0.1:1', endpointId: 'ep' } });
  return { ...base, ports: [{ addr, endpointId: 'ep' }] };
}

describe('runForward', () => {
  it('listens until stopped, then closes and resolves', async () => {
    const stop = new AbortController();
    const running = runForward(config('127.0.0.1:0'), { logger: silentLogger(), stop: stop.signal });
    stop.abort();
    await expect(running).resolves.toBeUndefined();
  });

  it('rejects with the port at fault when it cannot listen', async () => {
    const busy = net.createServer();
    busy.listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await expect(runForward(config(`127.0.0.1:${port}`), { logger: silentLogger() })).rejects.toThrow(
        `ports[0].addr: cannot listen on 127.0.0.1:${port}`,
      );
    } finally {
      busy.close();
    }
  });
});
