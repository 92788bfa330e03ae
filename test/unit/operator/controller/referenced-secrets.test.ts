import { missingSecretProblems, referencedSecrets, referencesSecret } from '../../../../operator/controller/referenced-secrets';
import { makeCluster } from '../fixtures';

const full = makeCluster({
  auth: {
    proxy: { hmacSecretKeyRef: { name: 'jwt', key: 'hmac' } },
    upstream: { rsaPublicKeyRef: { name: 'keys', key: 'rsa.pem' }, ecdsaPublicKeyRef: { name: 'keys', key: 'ec.pem' } },
  },
  tls: {
    proxy: { secretName: 'proxy-tls', clientCASecretRef: { name: 'ca', key: 'ca.crt' } },
    admin: { secretName: 'admin-tls' },
    forwarding: { rootCASecretRef: { name: 'ca', key: 'ca.crt' }, clientCertSecretName: 'client-tls' },
  },
  image: { pullSecrets: [{ name: 'registry' }] },
});

describe('referencedSecrets', () => {
  it('lists every Secret the spec points at with the field that names it', () => {
    expect(referencedSecrets(full.spec)).toEqual([
      { field: 'spec.auth.proxy.hmacSecretKeyRef', name: 'jwt' },
      { field: 'spec.auth.upstream.rsaPublicKeyRef', name: 'keys' },
      { field: 'spec.auth.upstream.ecdsaPublicKeyRef', name: 'keys' },
      { field: 'spec.tls.proxy.secretName', name: 'proxy-tls' },
      { field: 'spec.tls.proxy.clientCASecretRef', name: 'ca' },
      { field: 'spec.tls.admin.secretName', name: 'admin-tls' },
      { field: 'spec.tls.forwarding.rootCASecretRef', name: 'ca' },
      { field: 'spec.tls.forwarding.clientCertSecretName', name: 'client-tls' },
    ]);
    expect(referencedSecrets(makeCluster().spec)).toEqual([]);
  });

  it('tells whether a cluster refers to a Secret', () => {
    expect(referencesSecret(full, 'client-tls')).toBe(true);
    expect(referencesSecret(full, 'registry')).toBe(false);
  });
});

describe('missingSecretProblems', () => {
  it('reports each missing Secret as SecretNotFound, led by its field', () => {
    const present = new Set(['keys', 'proxy-tls', 'admin-tls', 'client-tls']);
    expect(missingSecretProblems(full, (n) => present.has(n))).toEqual([
      {
        reason: 'SecretNotFound',
        retryable: true,
        message: 'spec.auth.proxy.hmacSecretKeyRef: Secret "jwt" not found in namespace "edge"',
      },
      { reason: 'SecretNotFound', retryable: true, message: 'spec.tls.proxy.clientCASecretRef: Secret "ca" not found in namespace "edge"' },
      {
        reason: 'SecretNotFound',
        retryable: true,
        message: 'spec.tls.forwarding.rootCASecretRef: Secret "ca" not found in namespace "edge"',
      },
    ]);
  });
});
