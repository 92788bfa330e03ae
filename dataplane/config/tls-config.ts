import { ConfigError } from './errors';
import { bool, group, str, type GroupSpec } from './schema';

/**
 * How this process dials a TLS server: node to node (`proxy.tls.client`),
 * agent and forward to the server (`connect.tls`), agent to a local HTTPS
 * service (`listeners[].tls`). Paths are PEM files.
 */
export interface ClientTlsConfig {
  /** Client certificate for mTLS; needs `key`. */
  cert?: string;
  key?: string;
  /** Replaces the system roots, as Go's RootCAs does. */
  rootCas?: string;
  insecureSkipVerify: boolean;
  /** Name to verify instead of the dialled host (node-to-node only). */
  serverName?: string;
}

/** A server port's TLS block (`proxy.tls`, `upstream.tls`, `admin.tls`). */
export interface TlsConfig {
  /** Setting cert and key turns TLS on for the port. */
  cert?: string;
  key?: string;
  /** When set, clients must present a certificate signed by one of these. */
  clientCas?: string;
  client: ClientTlsConfig;
}

/** Piko's `--<port>.tls.*` flags and `<port>.tls` YAML keys. */
export function serverTlsSpec(port: string): GroupSpec {
  return group({
    cert: str('', `Path to the PEM certificate for the ${port} port; with --${port}.tls.key it turns TLS on.`, {
      optional: true,
      arg: '<path>',
    }),
    key: str('', `Path to the PEM private key for the ${port} port.`, { optional: true, arg: '<path>' }),
    client_cas: str('', `Path to PEM client certificate authorities; when set, ${port} clients must present a certificate they signed.`, {
      optional: true,
      arg: '<path>',
    }),
    client: clientTlsSpec(port === 'proxy' ? 'other Piko nodes when forwarding requests' : `other Piko nodes (${port} port)`, true),
  });
}

/**
 * A client TLS block. `toward` completes "when connecting to ..." in help
 * text; `withServerName` adds Piko's node-to-node `server_name`.
 */
export function clientTlsSpec(toward: string, withServerName: boolean, yamlOnly = false): GroupSpec {
  const flag = yamlOnly ? ({ flag: false } as const) : {};
  return group({
    cert: str('', `Path to a PEM client certificate to present to ${toward} (mTLS).`, {
      optional: true,
      arg: '<path>',
      ...flag,
    }),
    key: str('', 'Path to the PEM private key of the client certificate.', { optional: true, arg: '<path>', ...flag }),
    root_cas: str('', `Path to PEM root certificate authorities to verify ${toward}; the system roots by default.`, {
      optional: true,
      arg: '<path>',
      ...flag,
    }),
    insecure_skip_verify: bool(false, `Accept any certificate and host name from ${toward}.`, flag),
    ...(withServerName
      ? {
          server_name: str(
            '',
            `Host name to verify in the certificate of ${toward} instead of the dialled host; {node} stands for the peer's node ID.`,
            {
              optional: true,
              ...flag,
            },
          ),
        }
      : {}),
  });
}

/** Cert and key come as a pair, here and in the client block. */
export function validateTlsConfig(tls: TlsConfig, path: string): void {
  validatePair(tls.cert, tls.key, path);
  validateClientTlsConfig(tls.client, `${path}.client`);
}

export function validateClientTlsConfig(tls: ClientTlsConfig, path: string): void {
  validatePair(tls.cert, tls.key, path);
}

function validatePair(cert: string | undefined, key: string | undefined, path: string): void {
  if (cert !== undefined && key === undefined) {
    throw new ConfigError(`${path}.key is required when ${path}.cert is set`, { path: `${path}.key` });
  }
  if (key !== undefined && cert === undefined) {
    throw new ConfigError(`${path}.cert is required when ${path}.key is set`, { path: `${path}.cert` });
  }
}
