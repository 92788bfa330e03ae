import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { ClientTlsConfig, TlsConfig } from '../config/tls-config';

export type TlsConfigErrorCode =
  'ERR_TLS_FILE_UNREADABLE' | 'ERR_TLS_MISSING_CERT' | 'ERR_TLS_MISSING_KEY' | 'ERR_TLS_INVALID_PEM' | 'ERR_TLS_INVALID_KEY_PAIR';

/**
 * A TLS block that cannot be turned into a secure context. `field` is the
 * config path at fault (`proxy.tls.cert`), so start-up can say which flag to
 * fix.
 */
export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
  constructor(
    readonly code: TlsConfigErrorCode,
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type ServerTlsOptions = tls.SecureContextOptions & {
  requestCert: boolean;
  rejectUnauthorized: boolean;
};

/**
 * Server options for a TLS block, or undefined when TLS is off (neither cert
 * nor key set, as Piko decides). `field` prefixes error messages, e.g.
 * `proxy.tls`. Files are read now so a bad path fails start-up, not the first
 * handshake.
 */
export function serverTlsOptions(cfg: TlsConfig, field = 'tls'): ServerTlsOptions | undefined {
  if (!cfg.cert && !cfg.key) return undefined;
  if (!cfg.cert) {
    throw new TlsConfigError('ERR_TLS_MISSING_CERT', `${field}.cert`, `${field}.cert is required when ${field}.key is set`);
  }
  if (!cfg.key) {
    throw new TlsConfigError('ERR_TLS_MISSING_KEY', `${field}.key`, `${field}.key is required when ${field}.cert is set`);
  }
  const options: ServerTlsOptions = {
    cert: readPem(cfg.cert, `${field}.cert`),
    key: readPem(cfg.key, `${field}.key`),
    // Piko: client_cas switches on RequireAndVerifyClientCert; without it no
    // client certificate is asked for.
    requestCert: false,
    rejectUnauthorized: false,
  };
  checkKeyPair(options, `${field}.cert`, `${field}.key`);
  if (cfg.clientCas) {
    options.ca = readCertificates(cfg.clientCas, `${field}.client_cas`);
    options.requestCert = true;
    options.rejectUnauthorized = true;
  }
  return options;
}

/**
 * Dial options for a TLS client block (node-to-node, agent and forward toward
 * the server). Root CAs replace the system roots, as Go's RootCAs does;
 * `serverName` overrides both SNI and the name the certificate is checked
 * against.
 */
export function clientTlsOptions(cfg: ClientTlsConfig, field = 'tls.client'): tls.ConnectionOptions {
  const options: tls.ConnectionOptions = { rejectUnauthorized: !cfg.insecureSkipVerify };
  if (cfg.cert || cfg.key) {
    if (!cfg.cert) {
      throw new TlsConfigError('ERR_TLS_MISSING_CERT', `${field}.cert`, `${field}.cert is required when ${field}.key is set`);
    }
    if (!cfg.key) {
      throw new TlsConfigError('ERR_TLS_MISSING_KEY', `${field}.key`, `${field}.key is required when ${field}.cert is set`);
    }
    options.cert = readPem(cfg.cert, `${field}.cert`);
    options.key = readPem(cfg.key, `${field}.key`);
    checkKeyPair(options, `${field}.cert`, `${field}.key`);
  }
  if (cfg.rootCas) options.ca = readCertificates(cfg.rootCas, `${field}.root_cas`);
  if (cfg.serverName) options.servername = cfg.serverName;
  return options;
}

/**
 * An HTTPS server when the block enables TLS, plain HTTP otherwise. The
 * caller attaches listeners and calls listen; both server kinds emit the
 * same events, so it need not care which it got.
 */
export function createHttpServer(
  tlsCfg: TlsConfig | undefined,
  handler?: http.RequestListener,
  serverOptions: http.ServerOptions = {},
  field = 'tls',
): http.Server | https.Server {
  const tlsOptions = tlsCfg === undefined ? undefined : serverTlsOptions(tlsCfg, field);
  if (tlsOptions === undefined) {
    return handler ? http.createServer(serverOptions, handler) : http.createServer(serverOptions);
  }
  const options: https.ServerOptions = { ...serverOptions, ...tlsOptions };
  return handler ? https.createServer(options, handler) : https.createServer(options);
}

function readPem(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new TlsConfigError('ERR_TLS_FILE_UNREADABLE', field, `${field}: cannot read ${path}: ${reason}`, { cause: err });
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

// Node accepts a CA bundle with no certificate in it and then rejects every
// peer; Go refuses such a file at load time, and so do we.
function readCertificates(path: string, field: string): Buffer {
  const pem = readPem(path, field);
  const blocks = pem.toString('utf8').match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) {
    throw new TlsConfigError('ERR_TLS_INVALID_PEM', field, `${field}: no PEM certificate in ${path}`);
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new TlsConfigError('ERR_TLS_INVALID_PEM', field, `${field}: invalid certificate in ${path}`, { cause: err });
    }
  }
  return pem;
}

// createSecureContext parses the pair and checks the key matches the
// certificate, so a wrong file fails here rather than on the first handshake.
function checkKeyPair(options: tls.SecureContextOptions, certField: string, keyField: string): void {
  try {
    tls.createSecureContext({ cert: options.cert, key: options.key });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new TlsConfigError('ERR_TLS_INVALID_KEY_PAIR', certField, `${certField}, ${keyField}: cannot load key pair: ${reason}`, {
      cause: err,
    });
  }
}
