import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { buildCrd } from '../../../../operator/api/crd';
import { GENERATED_FILES } from '../../../../operator/api/generated-files';
import { pikoClusterSpecSchema } from '../../../../operator/api/pikocluster';
import type { PikoClusterSpecInput } from '../../../../operator/api/pikocluster-spec';
import { applyDefaults } from '../../../../operator/api/schema-defaults';
import { structuralProblems, valueProblems } from '../../../../operator/api/schema-check';
import type { JSONSchemaProps } from '../../../../operator/api/schema-builder';

const ROOT = path.resolve(__dirname, '../../../..');

// Every rule in the schema, by the path of the object it sits on.
function rules(s: JSONSchemaProps, at = ''): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const own = (s['x-kubernetes-validations'] ?? []).map((v) => v.rule);
  if (own.length > 0) out[at || '<root>'] = own;
  for (const [key, prop] of Object.entries(s.properties ?? {})) Object.assign(out, rules(prop, at ? `${at}.${key}` : key));
  return out;
}

describe('PikoCluster CRD', () => {
  it.each(GENERATED_FILES.map((f) => [f.path, f]))('%s is what `npm run gen:crd` writes', (_path, file) => {
    expect(readFileSync(path.join(ROOT, file.path), 'utf8')).toBe(file.render());
  });

  it('names the resource piko.dev/v1alpha1 PikoCluster, namespaced, short name pkc', () => {
    const crd = buildCrd();
    expect(crd.metadata.name).toBe('pikoclusters.piko.dev');
    expect(crd.spec.group).toBe('piko.dev');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual({
      kind: 'PikoCluster',
      listKind: 'PikoClusterList',
      plural: 'pikoclusters',
      singular: 'pikocluster',
      shortNames: ['pkc'],
      categories: ['piko'],
    });
    const [version] = crd.spec.versions;
    expect(version).toMatchObject({ name: 'v1alpha1', served: true, storage: true });
  });

  it('has the status and scale subresources and the printer columns', () => {
    const [version] = buildCrd().spec.versions;
    expect(version?.subresources).toEqual({
      status: {},
      scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
    });
    expect(version?.additionalPrinterColumns.filter((c) => !c.priority).map((c) => c.name)).toEqual([
      'Ready',
      'Replicas',
      'Endpoints',
      'Upstreams',
      'Age',
    ]);
    expect(version?.additionalPrinterColumns[0]?.jsonPath).toBe('.status.conditions[?(@.type=="Ready")].status');
  });

  it('is structural, with every default and enum value valid and every field described', () => {
    const schema = buildCrd().spec.versions[0]?.schema.openAPIV3Schema;
    expect(schema).toBeDefined();
    expect(structuralProblems(schema!)).toEqual([]);
  });

  it('the committed YAML parses back to the CRD object', () => {
    const text = readFileSync(path.join(ROOT, 'crds/pikocluster.yaml'), 'utf8');
    expect(parse(text)).toEqual(JSON.parse(JSON.stringify(buildCrd())));
  });

  it('says in CEL what a plain schema cannot', () => {
    const schema = buildCrd().spec.versions[0]!.schema.openAPIV3Schema;
    const all = rules(schema);
    expect(Object.keys(all).sort()).toEqual([
      '<root>',
      'spec',
      'spec.auth.admin',
      'spec.auth.proxy',
      'spec.auth.upstream',
      'spec.env',
      'spec.exposure.gateway.proxy',
      'spec.gracePeriod',
      'spec.ports',
      'spec.registry',
      'spec.registry.leaseDuration',
      'spec.registry.renewInterval',
      'spec.services.proxy',
      'spec.services.upstream',
      'spec.tls',
    ]);
    expect(all['spec.registry']).toEqual(['duration(self.renewInterval) < duration(self.leaseDuration)']);
    expect(all['spec.ports']).toEqual(['self.proxy != self.upstream && self.proxy != self.admin && self.upstream != self.admin']);
    expect(all['<root>']?.[0]).toContain('self.metadata.name.matches(');
    expect(all['spec']).toEqual([
      expect.stringContaining("self.exposure.gateway.proxy.route != 'TLSRoute' || (has(self.tls) && has(self.tls.proxy))"),
      expect.stringContaining("self.exposure.gateway.upstream.route != 'TLSRoute' || (has(self.tls) && has(self.tls.upstream))"),
    ]);
  });

  it('defaults an empty spec to a complete one', () => {
    expect(applyDefaults(pikoClusterSpecSchema(), {})).toEqual({
      replicas: 3,
      agent: {
        logLevel: 'info',
        resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '128Mi' } },
        tokenExpirationSeconds: 3600,
      },
      networkPolicy: { enabled: true },
      monitoring: { podMonitor: { enabled: false, interval: '30s' } },
      image: { pullPolicy: 'IfNotPresent' },
      ports: { proxy: 8000, upstream: 8001, admin: 8002 },
      proxyTimeout: '30s',
      upstreamWait: '5s',
      services: { proxy: { type: 'ClusterIP' }, upstream: { type: 'ClusterIP' } },
      registry: { leaseDuration: '15s', renewInterval: '5s' },
      logLevel: 'info',
      gracePeriod: '60s',
      podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
    });
  });

  it('accepts a spec using every field', () => {
    const spec: PikoClusterSpecInput = {
      replicas: 5,
      image: { repository: 'registry.example.com:5000/piko', tag: 'v1.2.3', pullPolicy: 'Always', pullSecrets: [{ name: 'regcred' }] },
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi', cpu: 2 } },
      ports: { proxy: 9000, upstream: 9001, admin: 9002 },
      proxyTimeout: '1m',
      upstreamWait: '0s',
      auth: {
        proxy: { hmacSecretKeyRef: { name: 'piko-auth', key: 'hmac' }, audience: 'piko', issuer: 'https://issuer.example.com' },
        upstream: { jwks: { url: 'https://issuer.example.com/jwks.json', cacheTTL: '10m', timeout: '5s' } },
        admin: { ecdsaPublicKeyRef: { name: 'piko-auth', key: 'ecdsa.pem' } },
      },
      tls: {
        proxy: { secretName: 'piko-proxy-tls', clientCASecretRef: { name: 'piko-ca', key: 'ca.crt' } },
        upstream: { secretName: 'piko-upstream-tls' },
        forwarding: {
          rootCASecretRef: { name: 'piko-ca', key: 'ca.crt' },
          serverName: 'piko.internal',
          clientCertSecretName: 'piko-node-tls',
        },
      },
      services: {
        proxy: { type: 'LoadBalancer', loadBalancerClass: 'service.k8s.aws/nlb', annotations: { 'a.example.com/x': 'y' }, port: 443 },
        upstream: { type: 'NodePort', nodePort: 30001 },
      },
      registry: { leaseDuration: '30s', renewInterval: '10s' },
      logLevel: 'debug',
      gracePeriod: '2m',
      scheduling: {
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'edge', effect: 'NoSchedule' }],
        affinity: { podAntiAffinity: {} },
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' }],
        priorityClassName: 'edge-critical',
      },
      podDisruptionBudget: { enabled: true, maxUnavailable: '34%' },
      podLabels: { team: 'edge' },
      podAnnotations: { 'prometheus.io/scrape': 'true' },
    };
    expect(valueProblems(pikoClusterSpecSchema(), applyDefaults(pikoClusterSpecSchema(), spec), 'spec')).toEqual([]);
  });

  it('refuses what the plain schema can say', () => {
    const schema = pikoClusterSpecSchema();
    const problems = (spec: unknown): string[] => valueProblems(schema, applyDefaults(schema, spec), 'spec');
    expect(problems({ replicas: -1 })).toEqual(['spec.replicas: must be at least 0']);
    expect(problems({ ports: { proxy: 80 } })).toEqual(['spec.ports.proxy: must be at least 1024']);
    expect(problems({ gracePeriod: '60' })).toEqual([expect.stringMatching(/^spec.gracePeriod: must match/)]);
    expect(problems({ podDisruptionBudget: { maxUnavailable: '150%' } })).toEqual([
      expect.stringMatching(/^spec.podDisruptionBudget.maxUnavailable: must match/),
    ]);
    expect(problems({ services: { proxy: { type: 'ExternalName' } } })).toEqual([
      'spec.services.proxy.type: must be one of "ClusterIP", "NodePort", "LoadBalancer"',
    ]);
    expect(problems({ auth: { proxy: { hmacSecretKeyRef: { name: 'Bad_Name', key: 'k' } } } })).toEqual([
      expect.stringMatching(/^spec.auth.proxy.hmacSecretKeyRef.name: must match/),
    ]);
    expect(problems({ tls: { proxy: {} } })).toEqual(['spec.tls.proxy.secretName: is required']);
  });
});
