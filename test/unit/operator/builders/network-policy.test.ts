import { buildNetworkPolicy } from '../../../../operator/builders/network-policy';
import { buildStatefulSet } from '../../../../operator/builders/stateful-set';
import { makeCluster } from '../fixtures';

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('the data plane NetworkPolicy', () => {
  const inputs = { operatorNamespace: 'piko-system', apiServer: [{ ip: '10.0.0.1', port: 6443 }] };

  it("selects exactly this cluster's pods, not another cluster's in the namespace", () => {
    const np = buildNetworkPolicy(makeCluster(), inputs)!;
    const own = buildStatefulSet(makeCluster(), { image: 'i', configHash: 'h' }).spec!.template.metadata!.labels!;
    const other = buildStatefulSet(makeCluster({}, { name: 'other' }), { image: 'i', configHash: 'h' }).spec!.template.metadata!.labels!;
    expect(matches(np.spec.podSelector.matchLabels, own)).toBe(true);
    expect(matches(np.spec.podSelector.matchLabels, other)).toBe(false);
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
  });

  it('opens proxy and upstream to everyone, admin to the operator only, and all three between its own pods', () => {
    const { ingress } = buildNetworkPolicy(makeCluster(), inputs)!.spec;
    const own = { podSelector: { matchLabels: buildNetworkPolicy(makeCluster(), inputs)!.spec.podSelector.matchLabels } };
    expect(ingress).toEqual([
      { from: [own], ports: [8000, 8001, 8002].map((port) => ({ protocol: 'TCP', port })) },
      { ports: [{ protocol: 'TCP', port: 8000 }] },
      { ports: [{ protocol: 'TCP', port: 8001 }] },
      {
        ports: [{ protocol: 'TCP', port: 8002 }],
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'piko-system' } },
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'piko', 'app.kubernetes.io/component': 'operator' } },
          },
        ],
      },
    ]);
  });

  it('narrows each port to the peers the spec names, and adds the monitoring namespace to admin', () => {
    const peer = (ns: string) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } });
    const cluster = makeCluster({
      networkPolicy: { proxyFrom: [peer('ingress')], upstreamFrom: [peer('agents')], adminFrom: [peer('monitoring')] },
    });
    const { ingress } = buildNetworkPolicy(cluster, inputs)!.spec;
    expect(ingress[1]).toEqual({ ports: [{ protocol: 'TCP', port: 8000 }], from: [peer('ingress')] });
    expect(ingress[2]).toEqual({ ports: [{ protocol: 'TCP', port: 8001 }], from: [peer('agents')] });
    expect(ingress[3]!.from).toHaveLength(2);
    expect(ingress[3]!.from![1]).toEqual(peer('monitoring'));
  });

  it('lets the pods reach the apiserver by its addresses, DNS, each other, and HTTP(S) only with a JWKS', () => {
    const { egress } = buildNetworkPolicy(makeCluster(), inputs)!.spec;
    expect(egress.slice(1)).toEqual([
      {
        ports: [
          { protocol: 'UDP', port: 53 },
          { protocol: 'TCP', port: 53 },
        ],
      },
      { to: [{ ipBlock: { cidr: '10.0.0.1/32' } }], ports: [{ protocol: 'TCP', port: 6443 }] },
    ]);
    const unknown = buildNetworkPolicy(makeCluster(), { apiServer: undefined })!.spec.egress[2];
    expect(unknown).toEqual({
      ports: [
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 6443 },
      ],
    });
    const jwks = makeCluster({ auth: { upstream: { jwks: { url: 'https://idp.example/jwks.json' } } } });
    expect(buildNetworkPolicy(jwks, inputs)!.spec.egress.at(-1)).toEqual({
      ports: [
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 80 },
      ],
    });
  });

  it('is not built when disabled', () => {
    expect(buildNetworkPolicy(makeCluster({ networkPolicy: { enabled: false } }), inputs)).toBeUndefined();
  });
});
