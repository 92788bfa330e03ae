import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** PEM file paths of a throwaway PKI for TLS and mTLS tests. */
export interface TlsFixtures {
  caCert: string;
  caKey: string;
  /** Valid for localhost, 127.0.0.1 and ::1. */
  serverCert: string;
  serverKey: string;
  /** Signed by the same CA, for client authentication. */
  clientCert: string;
  clientKey: string;
}

// `req` insists on a config with a distinguished_name section; the extension
// sections are selected per certificate below.
const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

/**
 * Writes a CA, a server certificate and a client certificate (ECDSA P-256,
 * quick to generate) into `dir` with the openssl CLI, and returns their
 * paths. Valid for two days from now.
 */
export function makeTlsFixtures(dir: string): TlsFixtures {
  return makeTlsFixturesWithSans(dir, 'DNS:localhost,IP:127.0.0.1,IP:::1');
}

/** As makeTlsFixtures, with the server certificate naming `sans` (openssl's subjectAltName syntax). */
export function makeTlsFixturesWithSans(dir: string, sans: string): TlsFixtures {
  const config = join(dir, 'openssl.cnf');
  writeFileSync(config, OPENSSL_CONFIG.replace('subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1', `subjectAltName = ${sans}`));
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  };
  const genKey = (path: string): void => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path);

  const f: TlsFixtures = {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };

  genKey(f.caKey);
  openssl(
    'req',
    '-new',
    '-x509',
    '-config',
    config,
    '-extensions',
    'ca',
    '-key',
    f.caKey,
    '-subj',
    '/CN=piko test CA',
    '-days',
    '2',
    '-out',
    f.caCert,
  );

  const issue = (cert: string, key: string, subject: string, extensions: string): void => {
    genKey(key);
    const csr = `${cert}.csr`;
    openssl('req', '-new', '-config', config, '-key', key, '-subj', subject, '-out', csr);
    openssl(
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      f.caCert,
      '-CAkey',
      f.caKey,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '2',
      '-extfile',
      config,
      '-extensions',
      extensions,
      '-out',
      cert,
    );
  };
  issue(f.serverCert, f.serverKey, '/CN=localhost', 'server');
  issue(f.clientCert, f.clientKey, '/CN=piko test client', 'client');
  return f;
}
