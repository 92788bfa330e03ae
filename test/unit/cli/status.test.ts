import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import YAML from 'yaml';
import { runCli, type CliDeps } from '../../../dataplane/cli/program';
import { fetchStatus, StatusRequestError } from '../../../dataplane/cli/status';

interface Seen {
  url: string;
  authorization: string | undefined;
}

describe('piko server status', () => {
  let server: http.Server;
  let base: string;
  const seen: Seen[] = [];
  const routes: Record<string, unknown> = {
    '/status/upstream/endpoints': { 'my-endpoint': 2, other: 1 },
    '/status/cluster/nodes': [
      { id: 'node-b', status: 'active', proxy_addr: '10.0.0.2:8000', admin_addr: '10.0.0.2:8002', endpoints: 1, upstreams: 1 },
      { id: 'node-a', status: 'unreachable', proxy_addr: '10.0.0.1:8000', admin_addr: '10.0.0.1:8002', endpoints: 0, upstreams: 0 },
      { id: 'node-c', status: 'active', proxy_addr: '10.0.0.3:8000', admin_addr: '10.0.0.3:8002', endpoints: 2, upstreams: 3 },
    ],
    '/status/cluster/nodes/local': { id: 'node-a', status: 'active', proxy_addr: 'x', admin_addr: 'y', endpoints: { e: 1 } },
    '/base/status/upstream/endpoints': {},
  };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/status/slow') return; // never answers
      if (path === '/status/bad-json') {
        res.end('{');
        return;
      }
      const body = routes[path];
      if (body === undefined) {
        res.statusCode = 404;
        res.end('{"error":"not found"}');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  beforeEach(() => {
    seen.length = 0;
  });

  async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const deps: CliDeps = {
      runServer: async () => undefined,
      runAgent: async () => undefined,
      runForward: async () => undefined,
      writeOut: (s) => void (out += s),
      writeErr: (s) => void (err += s),
    };
    const code = await runCli(['server', 'status', ...argv, '--server.url', base], deps);
    return { code, out, err };
  }

  it('prints the upstream endpoints as YAML', async () => {
    const r = await run(['upstream', 'endpoints']);
    expect(r.code).toBe(0);
    expect(YAML.parse(r.out)).toEqual({ 'my-endpoint': 2, other: 1 });
    expect(seen).toEqual([{ url: '/status/upstream/endpoints', authorization: undefined }]);
  });

  it('prints the cluster nodes sorted by ID and filtered by status', async () => {
    const all = await run(['cluster', 'nodes']);
    expect(all.code).toBe(0);
    expect((YAML.parse(all.out) as { nodes: Array<{ id: string }> }).nodes.map((n) => n.id)).toEqual(['node-a', 'node-b', 'node-c']);
    const active = await run(['cluster', 'nodes', '--status', 'active']);
    expect((YAML.parse(active.out) as { nodes: Array<{ id: string }> }).nodes.map((n) => n.id)).toEqual(['node-b', 'node-c']);
  });

  it('rejects an unknown status filter', async () => {
    const r = await run(['cluster', 'nodes', '--status', 'sleeping']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: /);
  });

  it('prints one node, sends the token and the forward node', async () => {
    const r = await run(['cluster', 'node', 'local', '--server.token', 'admin-token', '--forward', 'node-b']);
    expect(r.code).toBe(0);
    expect(YAML.parse(r.out)).toMatchObject({ id: 'node-a', endpoints: { e: 1 } });
    expect(seen).toEqual([{ url: '/status/cluster/nodes/local?forward=node-b', authorization: 'Bearer admin-token' }]);
  });

  it('fails with the status code when the node answers with an error', async () => {
    const r = await run(['cluster', 'node', 'missing']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('error: failed to get cluster node missing: bad status 404\n');
  });

  it('keeps a base path of the server URL', async () => {
    await expect(fetchStatus({ url: `${base}/base` }, '/status/upstream/endpoints', 'endpoints')).resolves.toEqual({});
  });

  it('times out and reports unreachable or broken servers', async () => {
    await expect(fetchStatus({ url: base, timeoutMs: 100 }, '/status/slow', 'slow')).rejects.toBeInstanceOf(StatusRequestError);
    await expect(fetchStatus({ url: base }, '/status/bad-json', 'bad')).rejects.toThrow('failed to get bad: invalid JSON response');
    await expect(fetchStatus({ url: 'not a url' }, '/status/x', 'x')).rejects.toThrow('invalid --server.url');
  });
});
