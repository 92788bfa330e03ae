import type { AddressInfo } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { silentLogger } from '../../../../dataplane/log/logger';
import { HttpEndpoints, metricsRoutes, probeRoutes } from '../../../../operator/runtime/http-endpoints';

describe('HttpEndpoints', () => {
  const servers: HttpEndpoints[] = [];

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function serve(routes: ConstructorParameters<typeof HttpEndpoints>[0]): Promise<string> {
    const server = new HttpEndpoints(routes, silentLogger());
    servers.push(server);
    const addr: AddressInfo = await server.start('127.0.0.1:0', '--health-bind-addr');
    return `http://127.0.0.1:${addr.port}`;
  }

  it('answers /healthz, and /readyz with 503 and the reason until ready', async () => {
    let reason: string | undefined = 'waiting for the first list of pods';
    const base = await serve(probeRoutes(() => reason));
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe('not ready: waiting for the first list of pods\n');
    reason = undefined;
    const ready = await fetch(`${base}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ok\n']);
  });

  it('serves /metrics from its own registry', async () => {
    const registry = new Registry();
    new Counter({ name: 'piko_operator_test_total', help: 'test', registers: [registry] }).inc(3);
    const base = await serve(metricsRoutes(registry));
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toBe(registry.contentType);
    expect(await res.text()).toContain('piko_operator_test_total 3');
  });

  it('answers 404 elsewhere and 405 to other methods', async () => {
    const base = await serve(probeRoutes(() => undefined));
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
  });

  it('names the flag when it cannot listen', async () => {
    const base = await serve(probeRoutes(() => undefined));
    const taken = new HttpEndpoints(
      probeRoutes(() => undefined),
      silentLogger(),
    );
    servers.push(taken);
    const failed = taken.start(base.replace('http://', ''), '--health-bind-addr');
    await expect(failed).rejects.toThrow(/^--health-bind-addr: cannot listen on 127\.0\.0\.1:\d+/);
    await expect(failed).rejects.toMatchObject({ code: 'ERR_LISTEN', field: '--health-bind-addr', cause: { code: 'EADDRINUSE' } });
  });
});
