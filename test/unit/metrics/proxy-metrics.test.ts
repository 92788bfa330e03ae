import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { approximateRequestSize, createProxyMetrics, startRequest } from '../../../dataplane/metrics/proxy-metrics';

const NAMES = ['requests_in_flight', 'requests_total', 'request_latency_seconds', 'request_size_bytes', 'response_size_bytes'];

describe('createProxyMetrics', () => {
  it("registers Piko's five server request metrics on the given registry", async () => {
    const registry = new Registry();
    const metrics = createProxyMetrics(registry, { prefix: 'piko_proxy', endpointLabel: false });
    const done = startRequest(metrics, 'GET');
    done({ status: 200, requestBytes: 300, responseBytes: 100 });

    const text = await registry.metrics();
    for (const name of NAMES) expect(text).toContain(`# TYPE piko_proxy_${name} `);
    expect(text).toContain('piko_proxy_requests_in_flight 0');
    expect(text).toContain('piko_proxy_requests_total{status="200",method="GET"} 1');
    expect(text).toContain('piko_proxy_request_latency_seconds_count{status="200",method="GET"} 1');
    expect(text).toContain('piko_proxy_request_size_bytes_bucket{le="1024"} 1');
    expect(text).toContain('piko_proxy_response_size_bytes_bucket{le="256"} 1');
  });

  it('uses the default latency buckets and 256×4^n size buckets', async () => {
    const registry = new Registry();
    createProxyMetrics(registry, { prefix: 'piko_proxy', endpointLabel: false });
    const json = await registry.getMetricsAsJSON();
    const les = (name: string): string[] =>
      json.find((m) => m.name === name)!.values.flatMap((v) => (v.labels['le'] === undefined ? [] : [String(v.labels['le'])]));
    // Histograms without labels report their buckets before any observation.
    expect(les('piko_proxy_request_size_bytes')).toEqual(['256', '1024', '4096', '16384', '65536', '262144', '1048576', '4194304', '+Inf']);
  });

  it('adds the endpoint label to every agent metric', async () => {
    const registry = new Registry();
    const metrics = createProxyMetrics(registry, { prefix: 'piko_agent', endpointLabel: true });
    const done = startRequest(metrics, 'POST', 'my-endpoint');
    const inFlight = await registry.getSingleMetricAsString('piko_agent_requests_in_flight');
    expect(inFlight).toContain('piko_agent_requests_in_flight{endpoint="my-endpoint"} 1');
    done({ status: 502, requestBytes: 10, responseBytes: 10 });
    done({ status: 502, requestBytes: 10, responseBytes: 10 });

    const text = await registry.metrics();
    for (const name of NAMES) expect(text).toContain(`# TYPE piko_agent_${name} `);
    expect(text).toContain('piko_agent_requests_in_flight{endpoint="my-endpoint"} 0');
    expect(text).toContain('piko_agent_requests_total{status="502",method="POST",endpoint="my-endpoint"} 1');
    expect(text).toContain('piko_agent_request_latency_seconds_count{status="502",method="POST",endpoint="my-endpoint"} 1');
    expect(text).toContain('piko_agent_request_size_bytes_count{endpoint="my-endpoint"} 1');
    expect(text).toContain('piko_agent_response_size_bytes_count{endpoint="my-endpoint"} 1');
  });

  it('lets a server and an agent variant share one registry', async () => {
    const registry = new Registry();
    createProxyMetrics(registry, { prefix: 'piko_proxy', endpointLabel: false });
    createProxyMetrics(registry, { prefix: 'piko_agent', endpointLabel: true });
    expect(registry.getMetricsAsArray()).toHaveLength(10);
  });
});

describe('approximateRequestSize', () => {
  it('counts the request line, headers except Host, the host and Content-Length', async () => {
    const sizes: number[] = [];
    const server = http.createServer((req, res) => {
      sizes.push(approximateRequestSize(req));
      req.resume();
      req.on('end', () => res.end());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/abc?x=1',
        agent: false,
        headers: { host: 'h.example', 'content-length': '5', 'x-a': 'bc' },
        timeout: 5000,
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.end('hello');
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      res.resume();
      await once(res, 'end');
    } finally {
      server.close();
      await once(server, 'close');
    }
    const expected =
      '/abc?x=1'.length +
      'POST'.length +
      'HTTP/1.1'.length +
      'content-length'.length +
      1 +
      'x-a'.length +
      2 +
      'Connection'.length +
      'close'.length +
      'h.example'.length +
      5;
    expect(sizes).toEqual([expected]);
  });
});
