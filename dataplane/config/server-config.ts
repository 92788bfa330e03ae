/**
 * `piko server` configuration: Piko's flags, YAML keys and defaults, minus
 * gossip (`cluster.join*`, `cluster.gossip.*`) and rebalancing, which have no
 * counterpart here; plus `cluster.registry` and `cluster.kubernetes.*`.
 */
import { randomInt } from 'node:crypto';
import { authEnabled, type AuthConfig } from '../auth/auth-config';
import type { ServiceAccountAuthConfig } from '../auth/service-account-verifier';
import { validateEndpointId } from '../protocol/endpoint-id';
import type { AccessLogConfig } from '../log/access-log';
import { accessLogSpec, authSpec, finishAuth, LOG_SPEC, validateAccessLog, type LogConfig } from './common-specs';
import { checkUrl } from './addr';
import { ConfigError } from './errors';
import { loadRaw, type LoadOptions } from './load';
import { deepFreeze, duration, group, int, listOf, str, strList, toTyped, type GroupSpec } from './schema';
import { serverTlsSpec, validateTlsConfig, type TlsConfig } from './tls-config';

export type ClusterRegistry = 'memory' | 'kubernetes';
export const CLUSTER_REGISTRIES: readonly ClusterRegistry[] = ['memory', 'kubernetes'];

/** Node `http.Server` limits of the proxy port. */
export interface HttpServerConfig {
  readTimeoutMs: number;
  readHeaderTimeoutMs: number;
  /** 0 = no cap; see the spec below for why our default differs from Piko's. */
  writeTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderBytes: number;
}

export interface ProxyConfig {
  bindAddr: string;
  /** Derived from the bind address by the server when absent. */
  advertiseAddr?: string;
  /** Where clients reach an endpoint, `<endpoint>` standing for its ID; told to agents as they connect. */
  publicUrl?: string;
  /** Per-request limit forwarding to an upstream; 0 disables. */
  timeoutMs: number;
  /** How long a request waits for an endpoint with no upstream yet; 0 = answer 502 at once (Piko). */
  upstreamWaitMs: number;
  accessLog: AccessLogConfig;
  http: HttpServerConfig;
  tcp: { maxMessageBytes: number };
  /** Open client connections; 0 = no cap. */
  maxConnections: number;
  auth: AuthConfig;
  tls: TlsConfig;
}

/** Experimental in Piko: upstream auth per tenant (`x-piko-tenant-id`). */
export interface TenantConfig {
  id: string;
  auth: AuthConfig;
}

/** What one upstream connection may make this node hold for it. */
export interface UpstreamSessionConfig {
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  maxStreams: number;
  maxBufferedBytes: number;
  maxPendingControlFrames: number;
  maxStreamWindow: number;
  windowGrowthBudget: number;
}

export interface UpstreamConfig {
  bindAddr: string;
  advertiseAddr?: string;
  /** Open upstream connections; 0 = no cap. */
  maxConnections: number;
  maxMessageBytes: number;
  session: UpstreamSessionConfig;
  auth: AuthConfig;
  tls: TlsConfig;
  tenants: TenantConfig[];
  serviceAccounts: ServiceAccountAuthConfig;
}

export interface AdminConfig {
  bindAddr: string;
  advertiseAddr?: string;
  maxConnections: number;
  auth: AuthConfig;
  tls: TlsConfig;
}

/** Options of the Kubernetes registry; reserved until that registry lands. */
export interface KubernetesClusterConfig {
  /** Empty = the namespace of the pod. */
  namespace: string;
  leaseDurationMs: number;
  renewIntervalMs: number;
}

export interface ClusterConfig {
  /** Always set: generated when neither given nor derivable. */
  nodeId: string;
  nodeIdPrefix?: string;
  /** Names this cluster's registry objects, so several clusters can share a namespace. */
  name: string;
  registry: ClusterRegistry;
  /** Shared by every node; signs the requests one node forwards to another. */
  secret?: string;
  kubernetes: KubernetesClusterConfig;
}

/** Deep-frozen at runtime. */
export interface ServerConfig {
  proxy: ProxyConfig;
  upstream: UpstreamConfig;
  admin: AdminConfig;
  cluster: ClusterConfig;
  log: LogConfig;
  gracePeriodMs: number;
}

const bindAddr = (port: string, addr: string): ReturnType<typeof str> =>
  str(addr, `Host and port to listen on for ${port} connections; an empty host means all interfaces.`, {
    arg: '<addr>',
  });
const maxConnections = (port: string, def: number): ReturnType<typeof int> =>
  int(def, `Most ${port} connections open at once; further ones are closed as they arrive. 0 = no limit.`, { min: 0 });
const advertiseAddr = (port: string): ReturnType<typeof str> =>
  str(
    '',
    `Address other nodes use to reach this node's ${port} port; by default the bind IP, ` +
      'or the first private IP when bound to all interfaces.',
    { optional: true, arg: '<addr>' },
  );

/** Where proxy.public_url puts the endpoint ID, as the PikoCluster's status.urls.proxy shows it. */
export const ENDPOINT_PLACEHOLDER = '<endpoint>';

export const SERVER_SPEC: GroupSpec = group({
  proxy: group({
    bind_addr: bindAddr('proxy', ':8000'),
    advertise_addr: advertiseAddr('proxy'),
    // Not in Piko: agents print it once connected, as ngrok's do.
    public_url: str(
      '',
      'The URL clients reach an endpoint at, with <endpoint> where its ID goes ' +
        '(https://<endpoint>.tunnel.example.com); sent to agents as they connect, which print it. ' +
        'Without it: http://<endpoint>.localhost:<port> on a single node, nothing in a cluster.',
      { optional: true, arg: '<url>' },
    ),
    timeout: duration(30_000, 'Timeout forwarding a request to an upstream; 0 disables (WebSocket upgrades are exempt).'),
    // Not in Piko: lets a request ride out an agent reconnecting (e.g. after
    // a node shut down) instead of failing with 502 straight away.
    upstream_wait: duration(
      0,
      'How long to hold a request for an endpoint no upstream serves yet, such as while its agent reconnects; ' +
        '0 answers 502 at once, as Piko does.',
    ),
    access_log: accessLogSpec('proxied requests'),
    http: group({
      read_timeout: duration(10_000, 'Maximum time to read a whole request, body included; 0 = no limit.'),
      read_header_timeout: duration(10_000, 'Maximum time to read request headers.'),
      // Piko defaults to 10s. Go's WriteTimeout covers the whole response,
      // so it silently cuts every streamed or long-polled response at 10s
      // and caps proxy.timeout (30s) without saying so. proxy.timeout already
      // bounds how long we wait for an upstream, so no extra cap by default;
      // set it to get Piko's behaviour.
      write_timeout: duration(0, 'Maximum time to write a response; 0 = no limit (Piko: 10s, which cuts streaming).'),
      idle_timeout: duration(300_000, 'Maximum time a keep-alive connection waits for its next request.'),
      max_header_bytes: int(1_048_576, 'Maximum size of request headers, request line included.', {
        positive: true,
      }),
    }),
    tcp: group({
      // ws buffers each message whole; Piko's clients send at most 32 KiB at a time.
      max_message_bytes: int(4 * 1024 * 1024, 'Largest WebSocket message on the raw TCP path (/_piko/v1/tcp/).', {
        positive: true,
      }),
    }),
    max_connections: maxConnections('proxy', 20_000),
    auth: authSpec('proxy'),
    tls: serverTlsSpec('proxy'),
  }),
  upstream: group({
    bind_addr: bindAddr('upstream', ':8001'),
    advertise_addr: advertiseAddr('upstream'),
    max_connections: maxConnections('upstream', 20_000),
    max_message_bytes: int(4 * 1024 * 1024, 'Largest WebSocket message from an upstream; yamux frames never need more than a window.', {
      min: 256 * 1024,
    }),
    // What one agent can make this node hold: streams x 256 KiB windows of
    // receive buffer, plus what it leaves unread. Go Piko bounds none of it.
    session: group({
      keepalive_interval: duration(
        30_000,
        'Interval of the pings that find an upstream connection that stopped answering without closing; 0 turns them off.',
      ),
      keepalive_timeout: duration(10_000, 'How long a ping may go unanswered before the upstream connection is dropped.', {
        positive: true,
      }),
      max_streams: int(1024, 'Streams open at once on one upstream connection; requests beyond it get 502.', {
        positive: true,
      }),
      max_buffered_bytes: int(16 * 1024 * 1024, 'Bytes an upstream may leave unread before its connection is dropped.', {
        min: 1024 * 1024,
      }),
      max_pending_control_frames: int(
        10_000,
        'Control frames (ping answers, window updates) queued for an upstream that is not reading before its connection is dropped.',
        { positive: true },
      ),
      // An agent far away is window-limited: 256 KiB per round trip. A
      // stream whose data we pass on as fast as it comes gets its window
      // doubled (yamux's own window updates, which Go agents honour too).
      max_stream_window: int(
        4 * 1024 * 1024,
        'Largest receive window one stream on an upstream connection grows to (256 KiB = no growth); at most upstream.max_message_bytes.',
        { min: 256 * 1024 },
      ),
      window_growth_budget: int(
        32 * 1024 * 1024,
        'What the receive windows of one upstream connection may grow by in all, beyond 256 KiB per stream.',
        { min: 0 },
      ),
    }),
    auth: authSpec('upstream'),
    tls: serverTlsSpec('upstream'),
    tenants: listOf(
      group({
        id: str('', 'Tenant ID, matched against x-piko-tenant-id.', { required: true }),
        auth: authSpec('upstream'),
      }),
    ),
    // Pods in the cluster authenticate with their own identity instead of a shared key.
    service_accounts: group({
      audience: str('', 'Audience projected ServiceAccount tokens must be issued for; required with rules.', {
        arg: '<audience>',
      }),
      cache_ttl: duration(5 * 60_000, 'Longest a token verified by TokenReview is trusted before the apiserver is asked again.', {
        positive: true,
      }),
      rules: listOf(
        group({
          namespace: str('', 'Namespace of the ServiceAccount.', { required: true }),
          name: str('', 'Name of the ServiceAccount; every ServiceAccount of the namespace when empty.'),
          endpoints: strList('Endpoint IDs the ServiceAccount may listen on.'),
          endpoint_prefix: str('', 'Or any endpoint ID starting with this prefix.'),
        }),
      ),
    }),
  }),
  admin: group({
    bind_addr: bindAddr('admin', ':8002'),
    advertise_addr: advertiseAddr('admin'),
    max_connections: maxConnections('admin', 1_000),
    auth: authSpec('admin'),
    tls: serverTlsSpec('admin'),
  }),
  cluster: group({
    node_id: str('', 'Unique ID of this node; a random 7-character ID by default.', { optional: true, arg: '<id>' }),
    node_id_prefix: str('', 'Prefix for the generated node ID, such as the pod name.', {
      optional: true,
      arg: '<prefix>',
    }),
    name: str('piko', 'Name of the cluster; labels its registry objects so clusters can share a namespace.', {
      arg: '<name>',
    }),
    registry: str('memory', "Where nodes learn of each other's endpoints: 'memory' (single node) or 'kubernetes'.", {
      choices: CLUSTER_REGISTRIES,
      arg: '<registry>',
    }),
    secret: str(
      '',
      'Secret shared by all nodes, used to sign requests forwarded between them so clients cannot pose as a node. ' +
        'Required with the kubernetes registry; prefer the YAML file with --config.expand-env over the flag, which ps shows.',
      { optional: true, arg: '<secret>' },
    ),
    kubernetes: group({
      namespace: str('', "Namespace of the cluster's Kubernetes objects; the pod's own namespace when empty.", {
        arg: '<namespace>',
      }),
      lease_duration: duration(15_000, 'How long a node counts as alive after its last lease renewal.', {
        positive: true,
      }),
      renew_interval: duration(5_000, 'How often a node renews its lease.', { positive: true }),
    }),
  }),
  log: LOG_SPEC,
  grace_period: duration(60_000, 'Time allowed after SIGTERM or SIGINT to drain requests and close upstream connections before exiting.', {
    positive: true,
  }),
});

const NODE_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const NODE_ID_LENGTH = 7;

/** 7 random characters of [a-z0-9], as Piko's generated node IDs. */
export function generateNodeId(): string {
  let id = '';
  for (let i = 0; i < NODE_ID_LENGTH; i++) id += NODE_ID_ALPHABET[randomInt(NODE_ID_ALPHABET.length)];
  return id;
}

// Node IDs appear in admin URL paths and `?forward=`; Piko does not check.
const NODE_ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;

/** Defaults → flags → YAML file → checks; the result is deep-frozen. */
export function loadServerConfig(options: LoadOptions = {}): ServerConfig {
  const config = toTyped(SERVER_SPEC, loadRaw(SERVER_SPEC, options)) as unknown as ServerConfig;
  finish(config);
  return deepFreeze(config);
}

/** The configuration `piko server` runs with when given nothing. */
export function defaultServerConfig(): ServerConfig {
  return loadServerConfig();
}

function finish(c: ServerConfig): void {
  for (const port of ['proxy', 'upstream', 'admin'] as const) {
    validateTlsConfig(c[port].tls, `${port}.tls`);
    finishAuth(c[port].auth, `${port}.auth`);
  }
  validateAccessLog(c.proxy.accessLog, 'proxy.access_log');
  if (c.proxy.publicUrl !== undefined && c.proxy.publicUrl !== '') {
    // It goes into a response header as it is; the URL parser would quietly drop a line break.
    if ([...c.proxy.publicUrl].some((ch) => ch <= ' ' || ch === '\x7f')) {
      throw new ConfigError('proxy.public_url must not contain whitespace or control characters', { path: 'proxy.public_url' });
    }
    if (!c.proxy.publicUrl.includes(ENDPOINT_PLACEHOLDER)) {
      throw new ConfigError(`proxy.public_url must contain ${ENDPOINT_PLACEHOLDER} where the endpoint ID goes`, {
        path: 'proxy.public_url',
      });
    }
    checkUrl(c.proxy.publicUrl.replaceAll(ENDPOINT_PLACEHOLDER, 'endpoint'), 'proxy.public_url', ['http:', 'https:']);
  }

  const tenantIds = new Set<string>();
  c.upstream.tenants.forEach((tenant, i) => {
    const path = `upstream.tenants[${i}]`;
    if (tenantIds.has(tenant.id)) {
      throw new ConfigError(`${path}.id: duplicate tenant ${JSON.stringify(tenant.id)}`, { path: `${path}.id` });
    }
    tenantIds.add(tenant.id);
    finishAuth(tenant.auth, `${path}.auth`);
    // A tenant without auth would accept anyone claiming it; Piko refuses too.
    if (!authEnabled(tenant.auth)) {
      throw new ConfigError(`${path}.auth: a tenant needs a verification key or JWKS endpoint`, { path: `${path}.auth` });
    }
  });

  validateServiceAccounts(c.upstream.serviceAccounts);

  if (c.cluster.nodeId === undefined) {
    c.cluster.nodeId = (c.cluster.nodeIdPrefix ?? '') + generateNodeId();
  }
  if (!NODE_ID_PATTERN.test(c.cluster.nodeId)) {
    throw new ConfigError(`cluster.node_id ${JSON.stringify(c.cluster.nodeId)} must be 1-128 letters, digits or . _ ~ -`, {
      path: 'cluster.node_id',
    });
  }
  if (!/^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$/.test(c.cluster.name)) {
    throw new ConfigError('cluster.name must be 1-42 lower-case letters, digits or -, starting and ending alphanumeric', {
      path: 'cluster.name',
    });
  }
  if (c.cluster.registry === 'kubernetes' && !c.cluster.secret) {
    throw new ConfigError('cluster.secret is required with the kubernetes registry: nodes sign forwarded requests with it', {
      path: 'cluster.secret',
    });
  }
  if (c.cluster.secret !== undefined && c.cluster.secret.length < 16) {
    throw new ConfigError('cluster.secret must be at least 16 characters', { path: 'cluster.secret' });
  }
  // A Go agent may send a whole window as one WebSocket message.
  if (c.upstream.session.maxStreamWindow > c.upstream.maxMessageBytes) {
    throw new ConfigError('upstream.session.max_stream_window must not exceed upstream.max_message_bytes', {
      path: 'upstream.session.max_stream_window',
    });
  }
  const k8s = c.cluster.kubernetes;
  if (k8s.renewIntervalMs >= k8s.leaseDurationMs) {
    throw new ConfigError('cluster.kubernetes.renew_interval must be shorter than cluster.kubernetes.lease_duration', {
      path: 'cluster.kubernetes.renew_interval',
    });
  }
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function validateServiceAccounts(sa: ServiceAccountAuthConfig): void {
  const at = 'upstream.service_accounts';
  if (sa.rules.length > 0 && !sa.audience) {
    throw new ConfigError(`${at}.audience is required with rules`, { path: `${at}.audience` });
  }
  sa.rules.forEach((rule, i) => {
    const path = `${at}.rules[${i}]`;
    if (!DNS_SUBDOMAIN.test(rule.namespace)) {
      throw new ConfigError(`${path}.namespace ${JSON.stringify(rule.namespace)} is not a namespace name`, { path: `${path}.namespace` });
    }
    if (rule.name !== '' && !DNS_SUBDOMAIN.test(rule.name)) {
      throw new ConfigError(`${path}.name ${JSON.stringify(rule.name)} is not a ServiceAccount name`, { path: `${path}.name` });
    }
    // A rule that grants nothing is a mistake; one that grants everything must say so with a prefix.
    if (rule.endpoints.length === 0 && rule.endpointPrefix === '') {
      throw new ConfigError(`${path} must set endpoints or endpoint_prefix`, { path });
    }
    rule.endpoints.forEach((id, j) => {
      const problem = validateEndpointId(id);
      if (problem !== undefined) throw new ConfigError(`${path}.endpoints[${j}]: ${problem}`, { path: `${path}.endpoints` });
    });
    const prefixProblem = rule.endpointPrefix === '' ? undefined : validateEndpointId(rule.endpointPrefix);
    if (prefixProblem !== undefined) {
      throw new ConfigError(`${path}.endpoint_prefix: ${prefixProblem}`, { path: `${path}.endpoint_prefix` });
    }
  });
}
