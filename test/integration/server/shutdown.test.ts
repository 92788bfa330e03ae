import http from 'node:http';
import { once } from 'node:events';
import { request, waitForUpstreams, type Reply } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers } from '../../helpers/piko-server';
import { connectRawUpstream } from '../../helpers/raw-upstream';

describe('graceful shutdown', () => {
  afterEach(() => stopAllTestServers());

  it('finishes every in-flight request, sends GoAway to upstreams, then goes unready and closes', async () => {
    const srv = await startTestServer();
    const arrived = new http.Server().setMaxListeners(0);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const up = await connectRawUpstream(srv.upstreamUrl, 'busy', (req, res) => {
      arrived.emit('request');
      void released.then(() => res.end(`done ${req.url}`));
    });
    await waitForUpstreams(srv.server.upstreams, 'busy', 1);

    let count = 0;
    const allArrived = new Promise<void>((resolve) =>
      arrived.on('request', () => {
        if (++count === 50) resolve();
      }),
    );
    const inFlight: Promise<Reply>[] = Array.from({ length: 50 }, (_, i) =>
      request(`${srv.proxyUrl}/${i}`, { headers: { 'x-piko-endpoint': 'busy' } }),
    );
    await allArrived;

    const goaway = once(up.session, 'goaway');
    const stopped = srv.stop(10_000);
    await goaway;
    expect(srv.server.isReady).toBe(false);
    const ready = await request(`${srv.adminUrl}/ready`);
    expect(ready.status).toBe(503);
    release();
    const replies = await Promise.all(inFlight);
    expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(replies.map((r) => r.body)).toEqual(Array.from({ length: 50 }, (_, i) => `done /${i}`));
    await stopped;
    await expect(request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'busy' } })).rejects.toThrow(/ECONNREFUSED/);
    if (!up.session.closed) await once(up.session, 'close');
  });
});
