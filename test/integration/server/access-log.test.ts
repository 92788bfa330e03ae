import { PassThrough } from 'node:stream';
import { createLogger } from '../../../dataplane/log/logger';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers } from '../../helpers/piko-server';
import { connectRawUpstream } from '../../helpers/raw-upstream';

describe('proxy access log', () => {
  afterAll(() => stopAllTestServers());

  it("records the upstream's status and response headers, and never the token", async () => {
    const sink = new PassThrough();
    const lines: Record<string, unknown>[] = [];
    sink.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const srv = await startTestServer({}, { logger: createLogger({ level: 'info', stream: sink }) });
    const up = await connectRawUpstream(srv.upstreamUrl, 'logged', (_req, res) => {
      res.setHeader('x-answer', '42');
      res.statusCode = 201;
      res.end('made');
    });
    await waitForUpstreams(srv.server.upstreams, 'logged', 1);
    await request(`${srv.proxyUrl}/thing?q=1`, { headers: { 'x-piko-endpoint': 'logged', 'x-piko-authorization': 'Bearer secret-token' } });
    await up.close();
    const record = lines.find((l) => l.message === 'request') as { request: Record<string, unknown> } | undefined;
    expect(record?.request).toMatchObject({ method: 'GET', path: '/thing', status: 201 });
    expect((record?.request.response_headers as Record<string, string[]>)['X-Answer']).toEqual(['42']);
    expect(JSON.stringify(lines)).not.toContain('secret-token');
  });
});
