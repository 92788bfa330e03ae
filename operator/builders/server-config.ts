/**
 * server.yaml for `piko server --config.path ... --config.expand-env`,
 * rendered from the spec with Piko's YAML keys. Per-pod values ('${POD_IP}')
 * and secrets ('${PIKO_CLUSTER_SECRET}') are environment references the
 * server expands at start-up, so one ConfigMap serves every pod and holds no
 * secret.
 */
import { createHash } from 'node:crypto';
import { Scalar, stringify } from 'yaml';
import { serviceAccountAudience } from '../../dataplane/auth/service-account-audience';
import { ENDPOINT_PLACEHOLDER } from '../../dataplane/config/server-config';
import type { PikoCluster } from '../api/pikocluster';
import type { PortAuthSpec } from '../api/spec-auth';
import { authKeys, type AuthKey } from './auth-keys';
import { podServerName } from './certificates';
import { exposureUrls } from './exposure-urls';
import { ENV_CLUSTER_SECRET, ENV_POD_IP, ENV_POD_NAME, PORTS, type PortName } from './pod-paths';
import { tlsFiles, type ForwardingTlsFiles, type PortTlsFiles } from './tls-files';

type Yaml = { [key: string]: Yaml | Yaml[] | string[] | string | number | boolean | Scalar };

/**
 * A single-quoted `${NAME}`: after expansion YAML takes the value verbatim
 * unless it holds a single quote or a line break, which pod names, IPs and
 * the generated secret never do.
 */
function envRef(template: string): Scalar {
  const s = new Scalar(template);
  s.type = Scalar.QUOTE_SINGLE;
  return s;
}

// Always bracketed: "[10.0.0.7]:8000" and "[fd00::7]:8000" both parse as
// host and port, and the operator cannot know the pod's IP family.
const advertise = (port: number): Scalar => envRef(`[\${${ENV_POD_IP}}]:${port}`);

function authYaml(auth: PortAuthSpec, hmac: AuthKey | undefined): Yaml {
  const out: Yaml = {};
  if (hmac !== undefined) out['hmac_secret_key'] = envRef(`\${${hmac.env}}`);
  if (auth.audience !== undefined) out['audience'] = auth.audience;
  if (auth.issuer !== undefined) out['issuer'] = auth.issuer;
  if (auth.disableDisconnectOnExpiry !== undefined) out['disable_disconnect_on_expiry'] = auth.disableDisconnectOnExpiry;
  if (auth.jwks !== undefined) {
    const jwks: Yaml = { endpoint: auth.jwks.url };
    if (auth.jwks.cacheTTL !== undefined) jwks['cache_ttl'] = auth.jwks.cacheTTL;
    if (auth.jwks.timeout !== undefined) jwks['timeout'] = auth.jwks.timeout;
    out['jwks'] = jwks;
  }
  return out;
}

function tlsYaml(files: PortTlsFiles, forwarding: ForwardingTlsFiles | undefined): Yaml {
  const out: Yaml = { cert: files.cert, key: files.key };
  if (files.clientCas !== undefined) out['client_cas'] = files.clientCas;
  if (forwarding !== undefined) {
    const client: Yaml = {};
    if (forwarding.cert !== undefined) client['cert'] = forwarding.cert;
    if (forwarding.key !== undefined) client['key'] = forwarding.key;
    if (forwarding.rootCas !== undefined) client['root_cas'] = forwarding.rootCas;
    if (forwarding.serverName !== undefined) client['server_name'] = forwarding.serverName;
    if (forwarding.insecureSkipVerify) client['insecure_skip_verify'] = true;
    if (Object.keys(client).length > 0) out['client'] = client;
  }
  return out;
}

export function renderServerConfig(cluster: PikoCluster): string {
  const spec = cluster.spec;
  const keys = authKeys(spec);
  const tls = tlsFiles(spec);
  // Agents print where their endpoint is reached; only a wildcard host has a place for its ID.
  const publicUrl = exposureUrls(cluster)?.proxy;
  const port = (name: PortName): Yaml => {
    const out: Yaml = { bind_addr: `:${spec.ports[name]}`, advertise_addr: advertise(spec.ports[name]) };
    if (name === 'proxy') {
      out['timeout'] = spec.proxyTimeout;
      out['upstream_wait'] = spec.upstreamWait;
      if (publicUrl?.includes(ENDPOINT_PLACEHOLDER)) out['public_url'] = publicUrl;
    }
    const auth = spec.auth?.[name];
    if (auth !== undefined)
      out['auth'] = authYaml(
        auth,
        keys.find((k) => k.port === name && k.kind === 'hmac'),
      );
    const accounts = name === 'upstream' ? spec.auth?.upstream?.serviceAccounts : undefined;
    if (accounts !== undefined && accounts.length > 0) {
      out['service_accounts'] = {
        audience: serviceAccountAudience(cluster.metadata.namespace, cluster.metadata.name),
        rules: accounts.map((r) => {
          const rule: Yaml = { namespace: r.namespace };
          if (r.name !== undefined) rule['name'] = r.name;
          if (r.endpoints !== undefined) rule['endpoints'] = [...r.endpoints];
          if (r.endpointPrefix !== undefined) rule['endpoint_prefix'] = r.endpointPrefix;
          return rule;
        }),
      };
    }
    const files = tls.ports[name];
    // Piko's proxy.tls.client is what a pod dials other pods' proxy ports with.
    // With issued certificates, each pod proves its own name ({node}) to the pod forwarding to it.
    const forwarding =
      tls.forwarding !== undefined && tls.forwarding.serverName === undefined && spec.tls?.issuerRef !== undefined
        ? { ...tls.forwarding, serverName: podServerName(cluster) }
        : tls.forwarding;
    if (files !== undefined) out['tls'] = tlsYaml(files, name === 'proxy' ? forwarding : undefined);
    return out;
  };
  const doc: Yaml = {};
  for (const name of PORTS) doc[name] = port(name);
  doc['cluster'] = {
    node_id: envRef(`\${${ENV_POD_NAME}}`),
    name: cluster.metadata.name,
    registry: 'kubernetes',
    secret: envRef(`\${${ENV_CLUSTER_SECRET}}`),
    kubernetes: {
      namespace: cluster.metadata.namespace,
      lease_duration: spec.registry.leaseDuration,
      renew_interval: spec.registry.renewInterval,
    },
  };
  doc['log'] = { level: spec.logLevel };
  doc['grace_period'] = spec.gracePeriod;
  return `# Rendered by piko-operator from PikoCluster ${cluster.metadata.namespace}/${cluster.metadata.name}.\n${stringify(doc, { lineWidth: 0 })}`;
}

/** Hex SHA-256 of the rendered config, for the pod-template annotation. */
export function configHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
