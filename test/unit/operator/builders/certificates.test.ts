import { buildCertificates, issuedSecretNames } from '../../../../operator/builders/certificates';
import { renderServerConfig } from '../../../../operator/builders/server-config';
import { missingSecretProblems } from '../../../../operator/controller/referenced-secrets';
import { makeCluster } from '../fixtures';

const issued = makeCluster({
  tls: {
    issuerRef: { name: 'internal-ca', kind: 'ClusterIssuer' },
    proxy: { secretName: 'piko-proxy-tls' },
    upstream: { secretName: 'piko-upstream-tls' },
    forwarding: { rootCASecretRef: { name: 'piko-proxy-tls', key: 'ca.crt' }, clientCertSecretName: 'piko-forwarding-tls' },
  },
  exposure: {
    gateway: {
      gatewayRef: { name: 'edge' },
      proxy: { host: '*.tunnel.example.com' },
      upstream: { host: 'agents.tunnel.example.com', route: 'TLSRoute' },
    },
  },
});

describe('the Certificates of spec.tls.issuerRef', () => {
  it("issue each port's Secret for the pods' and Services' names, and the public host the pods answer for past a TLSRoute", () => {
    const certs = buildCertificates(issued);
    expect(certs.map((c) => [c.kind, c.metadata.name, c.spec.secretName])).toEqual([
      ['Certificate', 'piko-proxy', 'piko-proxy-tls'],
      ['Certificate', 'piko-upstream', 'piko-upstream-tls'],
      ['Certificate', 'piko-forwarding', 'piko-forwarding-tls'],
    ]);
    const [proxy, upstream, forwarding] = certs;
    expect(proxy!.spec).toEqual({
      secretName: 'piko-proxy-tls',
      issuerRef: { name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
      // The proxy host goes through an HTTPRoute: the Gateway holds its certificate, not the pods.
      dnsNames: [
        '*.piko-nodes.edge.svc',
        '*.piko-nodes.edge.svc.cluster.local',
        'piko-proxy',
        'piko-proxy.edge',
        'piko-proxy.edge.svc',
        'piko-proxy.edge.svc.cluster.local',
      ],
      usages: ['digital signature', 'key encipherment', 'server auth'],
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
    });
    expect(upstream!.spec.dnsNames[0]).toBe('agents.tunnel.example.com');
    expect(forwarding!.spec.usages).toContain('client auth');
    expect(forwarding!.spec.dnsNames).toEqual(['*.piko-nodes.edge.svc', '*.piko-nodes.edge.svc.cluster.local']);
  });

  it('make each pod prove its own name to the pod forwarding to it, unless the spec names another', () => {
    expect(renderServerConfig(issued)).toContain('server_name: "{node}.piko-nodes.edge.svc"');
    const named = makeCluster({
      tls: { ...issued.spec.tls, forwarding: { ...issued.spec.tls!.forwarding, serverName: 'piko.internal' } },
    });
    expect(renderServerConfig(named)).toContain('server_name: piko.internal');
  });

  it('count the Secrets they write as coming, not missing; a Secret named by hand still must exist', () => {
    expect([...issuedSecretNames(issued)].sort()).toEqual(['piko-forwarding-tls', 'piko-proxy-tls', 'piko-upstream-tls']);
    expect(missingSecretProblems(issued, () => false)).toEqual([]);
    const byHand = makeCluster({ tls: { admin: { secretName: 'admin-tls' } } });
    expect(buildCertificates(byHand)).toEqual([]);
    expect(missingSecretProblems(byHand, () => false)).toHaveLength(1);
  });
});
