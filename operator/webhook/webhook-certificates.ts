/**
 * The webhook's PKI as pure functions: a CA, a serving certificate for the webhook Service's DNS
 * names, and when each is due for renewal. Keys are RSA 2048 from node:crypto; node-forge writes
 * the certificates (Node reads X.509 but cannot issue it). The apiserver trusts the CA through the
 * MutatingWebhookConfiguration's caBundle, so the CA outlives many serving certificates and a
 * serving certificate can be replaced without touching the bundle.
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';

export const CA_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
export const SERVING_VALIDITY_MS = 365 * 24 * 3600 * 1000;
/** Renew once less than this share of a certificate's lifetime is left. */
export const RENEW_REMAINING = 1 / 3;

export interface KeyPairPem {
  cert: string;
  key: string;
}

/** The webhook Service's names, as the apiserver dials it (`<service>.<namespace>.svc`). */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, `${service}.${namespace}`, service];
}

function rsaKey(): { forgeKey: forge.pki.rsa.PrivateKey; forgePublic: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  return {
    forgeKey: forge.pki.privateKeyFromPem(pem),
    forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    pem,
  };
}

function base(publicKey: forge.pki.rsa.PublicKey, now: number, validityMs: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // Positive: the high bit clear.
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  // Slack for clocks a little behind ours: a minute, or a tenth of a short lifetime.
  cert.validity.notBefore = new Date(now - Math.min(60_000, validityMs / 10));
  cert.validity.notAfter = new Date(now + validityMs);
  return cert;
}

export function issueCa(now: number, validityMs = CA_VALIDITY_MS, commonName = 'piko-operator-webhook-ca'): KeyPairPem {
  const key = rsaKey();
  const cert = base(key.forgePublic, now, validityMs);
  const subject = [{ name: 'commonName', value: `${commonName}-${Math.floor(now / 1000)}` }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key.forgeKey, forge.md.sha256.create());
  return { cert: pem(cert), key: key.pem };
}

export function issueServing(ca: KeyPairPem, dnsNames: readonly string[], now: number, validityMs = SERVING_VALIDITY_MS): KeyPairPem {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const key = rsaKey();
  const cert = base(key.forgePublic, now, validityMs);
  // Never past its CA: it could not be verified after that anyway.
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter;
  cert.setSubject([{ name: 'commonName', value: dnsNames[0] ?? 'piko-operator-webhook' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: dnsNames.map((value) => ({ type: 2, value })) },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: pem(cert), key: key.pem };
}

/** forge ends its PEM lines with CRLF; everything else here (and Kubernetes) writes LF. */
function pem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

/** The first certificate of a PEM bundle. */
function first(pem: string): X509Certificate | undefined {
  const end = pem.indexOf('-----END CERTIFICATE-----');
  if (end < 0) return undefined;
  try {
    return new X509Certificate(pem.slice(0, end + '-----END CERTIFICATE-----'.length));
  } catch {
    return undefined;
  }
}

/** True when the certificate is unreadable, not yet valid, or within RENEW_REMAINING of its end. */
export function dueForRenewal(pem: string, now: number): boolean {
  const cert = first(pem);
  if (cert === undefined) return true;
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (!(from <= now && now < to)) return true;
  return to - now < (to - from) * RENEW_REMAINING;
}

/** True while `now` is within the certificate's validity. */
export function stillValid(pem: string, now: number): boolean {
  const cert = first(pem);
  return cert !== undefined && Date.parse(cert.validFrom) <= now && now < Date.parse(cert.validTo);
}

/** True when the serving certificate names every one of `dnsNames` and was signed by `caPem`. */
export function servesFor(servingPem: string, caPem: string, dnsNames: readonly string[]): boolean {
  const cert = first(servingPem);
  const ca = first(caPem);
  if (cert === undefined || ca === undefined || !cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
  const names = (cert.subjectAltName ?? '').split(', ').map((n) => n.replace(/^DNS:/, ''));
  return dnsNames.every((n) => names.includes(n));
}
