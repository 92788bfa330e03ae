import type http from 'node:http';
import { Counter, Gauge, Histogram, exponentialBuckets, type Registry } from 'prom-client';

export type ProxyMetricsPrefix = 'piko_proxy' | 'piko_agent';

/** Labels every request metric carries on the agent (Piko #220). */
export type EndpointLabel = 'endpoint';

/**
 * Piko's five HTTP request metrics. `E` is `'endpoint'` for the agent variant
 * and `never` for the server, so a call site cannot forget (or invent) the
 * endpoint label.
 */
export interface ProxyMetrics<E extends string = never> {
  readonly requestsInFlight: Gauge<E>;
  readonly requestsTotal: Counter<'status' | 'method' | E>;
  readonly requestLatency: Histogram<'status' | 'method' | E>;
  readonly requestSize: Histogram<E>;
  readonly responseSize: Histogram<E>;
}

export interface ProxyMetricsOptions {
  prefix: ProxyMetricsPrefix;
  endpointLabel: boolean;
}

// Go's prometheus.DefBuckets, spelled out so a prom-client upgrade that
// changes its defaults cannot silently change our histograms.
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// prometheus.ExponentialBuckets(256, 4, 8): 256 B up to 4 MiB.
const SIZE_BUCKETS = exponentialBuckets(256, 4, 8);

export function createProxyMetrics(registry: Registry, opts: ProxyMetricsOptions & { endpointLabel: true }): ProxyMetrics<EndpointLabel>;
export function createProxyMetrics(registry: Registry, opts: ProxyMetricsOptions & { endpointLabel: false }): ProxyMetrics;
export function createProxyMetrics(registry: Registry, opts: ProxyMetricsOptions): ProxyMetrics<EndpointLabel> | ProxyMetrics;
export function createProxyMetrics(registry: Registry, opts: ProxyMetricsOptions): ProxyMetrics<EndpointLabel> | ProxyMetrics {
  const extra: EndpointLabel[] = opts.endpointLabel ? ['endpoint'] : [];
  const registers = [registry];
  const p = opts.prefix;
  return {
    requestsInFlight: new Gauge({
      name: `${p}_requests_in_flight`,
      help: 'Number of requests currently handled by this server.',
      labelNames: extra,
      registers,
    }),
    requestsTotal: new Counter({
      name: `${p}_requests_total`,
      help: 'Total requests.',
      labelNames: ['status', 'method', ...extra],
      registers,
    }),
    requestLatency: new Histogram({
      name: `${p}_request_latency_seconds`,
      help: 'Request latency.',
      labelNames: ['status', 'method', ...extra],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    requestSize: new Histogram({
      name: `${p}_request_size_bytes`,
      help: 'Request size',
      labelNames: extra,
      buckets: SIZE_BUCKETS,
      registers,
    }),
    responseSize: new Histogram({
      name: `${p}_response_size_bytes`,
      help: 'Response size',
      labelNames: extra,
      buckets: SIZE_BUCKETS,
      registers,
    }),
  };
}

export interface RequestOutcome {
  status: number;
  /** Usually `approximateRequestSize(req)`. */
  requestBytes: number;
  /** Body bytes written to the client. */
  responseBytes: number;
}

/**
 * Counts a request as in flight and returns the function that records its
 * outcome; call that exactly once, when the response finishes or the
 * connection closes. Pass `endpoint` for the agent variant only.
 */
export function startRequest(
  metrics: ProxyMetrics<EndpointLabel> | ProxyMetrics,
  method: string,
  endpoint?: string,
): (outcome: RequestOutcome) => void {
  // Label objects are built once; with the server variant they are empty,
  // which prom-client treats as "no labels".
  const base: Record<string, string> = endpoint === undefined ? {} : { endpoint };
  const m = metrics as ProxyMetrics<string>;
  m.requestsInFlight.inc(base);
  const start = process.hrtime.bigint();
  let done = false;
  return (outcome) => {
    if (done) return;
    done = true;
    m.requestsInFlight.dec(base);
    const labels = { status: String(outcome.status), method, ...base };
    m.requestsTotal.inc(labels);
    m.requestLatency.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    m.requestSize.observe(base, outcome.requestBytes);
    m.responseSize.observe(base, outcome.responseBytes);
  };
}

/**
 * Piko's computeApproximateRequestSize: the request line, header names and
 * values, the host and the declared body length. Chunked bodies (no
 * Content-Length) count as zero, as in Piko.
 */
export function approximateRequestSize(req: http.IncomingMessage): number {
  let size = (req.url ?? '').length + (req.method ?? '').length + `HTTP/${req.httpVersion}`.length;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    // Go moves Host out of the header map into r.Host, counted once below.
    if (raw[i]!.toLowerCase() === 'host') continue;
    size += raw[i]!.length + raw[i + 1]!.length;
  }
  size += (req.headers.host ?? '').length;
  const length = Number(req.headers['content-length']);
  if (Number.isSafeInteger(length) && length > 0) size += length;
  return size;
}
