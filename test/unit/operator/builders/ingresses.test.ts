import { buildIngresses } from '../../../../operator/builders/ingresses';
import { exposureUrls } from '../../../../operator/builders/exposure-urls';
import { makeCluster } from '../fixtures';

describe('the Ingresses of spec.exposure', () => {
  const exposed = makeCluster({
    proxyTimeout: '2m30s',
    exposure: {
      ingress: {
        className: 'nginx',
        annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '64m', team: 'edge' },
        proxy: { host: '*.tunnel.example.com', extraHosts: ['tunnel.example.com'], tlsSecretName: 'wildcard-tls' },
        upstream: { host: 'agents.tunnel.example.com' },
      },
    },
  });

  it('routes every proxy host to the proxy Service and the upstream host to the upstream Service, with TLS where given', () => {
    const [proxy, upstream] = buildIngresses(exposed);
    expect(proxy!.metadata.name).toBe('piko-proxy');
    expect(proxy!.spec.ingressClassName).toBe('nginx');
    expect(proxy!.spec.rules.map((r) => [r.host, r.http.paths[0]!.backend.service])).toEqual([
      ['*.tunnel.example.com', { name: 'piko-proxy', port: { name: 'proxy' } }],
      ['tunnel.example.com', { name: 'piko-proxy', port: { name: 'proxy' } }],
    ]);
    expect(proxy!.spec.tls).toEqual([{ hosts: ['*.tunnel.example.com', 'tunnel.example.com'], secretName: 'wildcard-tls' }]);
    expect(upstream!.spec.rules[0]).toMatchObject({
      host: 'agents.tunnel.example.com',
      http: { paths: [{ backend: { service: { name: 'piko-upstream' } } }] },
    });
    expect(upstream!.spec.tls).toBeUndefined();
  });

  it("sets what a tunnel needs of ingress-nginx, under the spec's own annotations", () => {
    const [proxy, upstream] = buildIngresses(exposed);
    expect(proxy!.metadata.annotations).toEqual({
      'nginx.ingress.kubernetes.io/proxy-body-size': '64m',
      'nginx.ingress.kubernetes.io/proxy-read-timeout': '150',
      'nginx.ingress.kubernetes.io/proxy-send-timeout': '150',
      team: 'edge',
    });
    expect(upstream!.metadata.annotations).toMatchObject({ 'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600' });
    const traefik = makeCluster({ exposure: { ingress: { className: 'traefik', upstream: { host: 'a.example.com' } } } });
    expect(buildIngresses(traefik)[0]!.metadata.annotations).toBeUndefined();
  });

  it('reports the URLs clients and agents use, the wildcard as <endpoint>', () => {
    expect(exposureUrls(exposed)).toEqual({ proxy: 'https://<endpoint>.tunnel.example.com', upstream: 'http://agents.tunnel.example.com' });
    expect(buildIngresses(makeCluster())).toEqual([]);
    expect(exposureUrls(makeCluster())).toBeUndefined();
  });
});
