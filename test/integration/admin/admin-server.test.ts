import { Counter } from 'prom-client';
import { startAdmin, request, status, type AdminUnderTest } from './admin-harness';

describe('admin server', () => {
  let admin: AdminUnderTest;

  beforeEach(async () => {
    admin = await startAdmin();
  });

  afterEach(async () => {
    await admin.close();
  });

  it('answers /health with 200 whatever the readiness', async () => {
    expect((await request(admin.port, '/health')).status).toBe(200);
    admin.ready.value = true;
    expect((await request(admin.port, '/health')).status).toBe(200);
  });

  it('answers /ready with 503 until ready, 200 while ready, and 503 again after', async () => {
    expect(await request(admin.port, '/ready')).toMatchObject({ status: 503, body: '' });
    admin.ready.value = true;
    expect(await request(admin.port, '/ready')).toMatchObject({ status: 200, body: '' });
    admin.ready.value = false;
    expect((await request(admin.port, '/ready')).status).toBe(503);
  });

  it('serves the registry in Prometheus text format on /metrics', async () => {
    const counter = new Counter({ name: 'piko_test_total', help: 'test', registers: [admin.registry] });
    counter.inc(3);
    const res = await request(admin.port, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(admin.registry.contentType);
    expect(res.body).toContain('# TYPE piko_test_total counter');
    expect(res.body).toContain('piko_test_total 3');
  });

  it('lists local endpoints with their upstream counts', async () => {
    const res = await request(admin.port, '/status/upstream/endpoints');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(res.body)).toEqual({ 'my-endpoint': 2, other: 1 });
  });

  it('lists cluster nodes with snake_case keys', async () => {
    const res = await request(admin.port, '/status/cluster/nodes');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual([
      { id: 'node-a', status: 'active', proxy_addr: '10.0.0.1:8000', admin_addr: '10.0.0.1:8002', endpoints: 2, upstreams: 3 },
      { id: 'node-b', status: 'unreachable', proxy_addr: '10.0.0.2:8000', admin_addr: '10.0.0.2:8002', endpoints: 0, upstreams: 0 },
    ]);
  });

  it('describes the local node and a node by id', async () => {
    const local = await request(admin.port, '/status/cluster/nodes/local');
    expect(local.status).toBe(200);
    expect(JSON.parse(local.body)).toEqual({
      id: 'node-a',
      status: 'active',
      proxy_addr: '10.0.0.1:8000',
      admin_addr: '10.0.0.1:8002',
      endpoints: { 'my-endpoint': 2, other: 1 },
    });
    const remote = await request(admin.port, '/status/cluster/nodes/node-b?x=1');
    expect(remote.status).toBe(200);
    expect(JSON.parse(remote.body)).toMatchObject({ id: 'node-b', status: 'unreachable', endpoints: {} });
  });

  it('answers 404 JSON for an unknown node', async () => {
    for (const path of ['/status/cluster/nodes/nope', '/status/cluster/nodes/%zz', '/status/cluster/nodes/a/b']) {
      const res = await request(admin.port, path);
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toBe('application/json');
      expect(JSON.parse(res.body)).toEqual({ error: 'node not found' });
    }
  });

  it('answers 404 JSON for unknown paths and methods', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['GET', '/status'],
      ['POST', '/health'],
      ['DELETE', '/status/cluster/nodes/local'],
    ] as const) {
      const res = await request(admin.port, path, { method });
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body)).toEqual({ error: 'not found' });
    }
  });

  it('answers 500 and keeps serving when a status provider throws', async () => {
    await admin.close();
    admin = await startAdmin({
      status: {
        ...status,
        nodes: () => {
          throw new Error('boom');
        },
      },
    });
    expect((await request(admin.port, '/status/cluster/nodes')).status).toBe(500);
    expect((await request(admin.port, '/health')).status).toBe(200);
  });
});
