import { buildGatewayRoutes } from '../../../../operator/builders/gateway-routes';
import { exposureUrls } from '../../../../operator/builders/exposure-urls';
import { makeCluster } from '../fixtures';

describe('the Gateway API routes of spec.exposure.gateway', () => {
  it('routes the proxy hosts through an HTTPRoute allowing a little over proxyTimeout, and agents through one without a request timeout', () => {
    const cluster = makeCluster({
      proxyTimeout: '2m30s',
      services: { proxy: { type: 'ClusterIP', port: 443 }, upstream: { type: 'ClusterIP' } },
      exposure: {
        gateway: {
          gatewayRef: { name: 'edge' },
          proxy: { host: '*.tunnel.example.com', extraHosts: ['tunnel.example.com'], route: 'HTTPRoute', scheme: 'https' },
          upstream: { host: 'agents.tunnel.example.com', route: 'HTTPRoute', sectionName: 'agents', scheme: 'http' },
        },
      },
    });
    const [proxy, upstream] = buildGatewayRoutes(cluster);
    expect(proxy).toMatchObject({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'piko-proxy', namespace: cluster.metadata.namespace, ownerReferences: [{ kind: 'PikoCluster', controller: true }] },
    });
    expect(proxy!.spec).toEqual({
      // No namespace: the Gateway is in the cluster's.
      parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge' }],
      hostnames: ['*.tunnel.example.com', 'tunnel.example.com'],
      // The Service's port, which spec.services may set apart from the pods'.
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          backendRefs: [{ name: 'piko-proxy', port: 443 }],
          timeouts: { request: '155s' },
        },
      ],
    });
    expect(upstream!.spec.parentRefs).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge', sectionName: 'agents' },
    ]);
    expect(upstream!.spec.rules[0]!.timeouts).toEqual({ request: '0s' });
    expect(upstream!.spec.rules[0]!.backendRefs).toEqual([{ name: 'piko-upstream', port: 8001 }]);
    expect(exposureUrls(cluster)).toEqual({ proxy: 'https://<endpoint>.tunnel.example.com', upstream: 'http://agents.tunnel.example.com' });
  });

  it('disables the proxy route timeout with proxyTimeout 0s, and caps it at what a Gateway API duration can say', () => {
    const timeout = (proxyTimeout: string) =>
      buildGatewayRoutes(
        makeCluster({ proxyTimeout, exposure: { gateway: { gatewayRef: { name: 'edge' }, proxy: { host: 'tunnel.example.com' } } } }),
      )[0]!.spec.rules[0]!.timeouts;
    expect(timeout('0s')).toEqual({ request: '0s' });
    expect(timeout('1500ms')).toEqual({ request: '7s' });
    expect(timeout('1000h')).toEqual({ request: '99999s' });
  });

  it('passes TLS through by SNI with a TLSRoute and bytes with a TCPRoute, whose URLs follow the pods own TLS', () => {
    const cluster = makeCluster({
      tls: { upstream: { secretName: 'agents-tls' } },
      exposure: {
        gateway: {
          gatewayRef: { name: 'edge', namespace: 'gateways' },
          proxy: { host: 'tunnel.example.com', route: 'TCPRoute', sectionName: 'tcp-8000' },
          upstream: { host: 'agents.tunnel.example.com', route: 'TLSRoute' },
        },
      },
    });
    const [proxy, upstream] = buildGatewayRoutes(cluster);
    expect(proxy).toMatchObject({ kind: 'TCPRoute', metadata: { name: 'piko-proxy' } });
    expect(proxy!.spec).toEqual({
      parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge', namespace: 'gateways', sectionName: 'tcp-8000' }],
      rules: [{ backendRefs: [{ name: 'piko-proxy', port: 8000 }] }],
    });
    expect(upstream).toMatchObject({ kind: 'TLSRoute', metadata: { name: 'piko-upstream' } });
    expect(upstream!.spec).toMatchObject({
      hostnames: ['agents.tunnel.example.com'],
      rules: [{ backendRefs: [{ name: 'piko-upstream' }] }],
    });
    expect(upstream!.spec.rules[0]).not.toHaveProperty('timeouts');
    expect(exposureUrls(cluster)).toEqual({ proxy: 'http://tunnel.example.com', upstream: 'https://agents.tunnel.example.com' });
  });

  it('builds nothing without spec.exposure.gateway, and prefers its URLs over the Ingresses', () => {
    expect(buildGatewayRoutes(makeCluster())).toEqual([]);
    const both = makeCluster({
      exposure: {
        ingress: { proxy: { host: 'old.example.com' }, upstream: { host: 'agents-old.example.com' } },
        gateway: { gatewayRef: { name: 'edge' }, proxy: { host: 'new.example.com' } },
      },
    });
    expect(exposureUrls(both)).toEqual({ proxy: 'https://new.example.com', upstream: 'http://agents-old.example.com' });
  });
});
