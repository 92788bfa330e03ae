import { reasonForField, validateSpec } from '../../../../operator/builders/validate-spec';
import type { PikoClusterSpecInput } from '../../../../operator/api/pikocluster-spec';
import { makeCluster } from '../fixtures';

const problems = (spec: PikoClusterSpecInput) => validateSpec(makeCluster(spec));

describe('validateSpec', () => {
  it('finds nothing wrong with the defaults', () => {
    expect(problems({})).toEqual([]);
  });

  it('refuses pod labels that are invalid or that the selector owns', () => {
    expect(problems({ podLabels: { 'app.kubernetes.io/instance': 'other', 'bad key!': 'v', ok: 'bad value!' } })).toEqual([
      {
        field: 'spec.podLabels["app.kubernetes.io/instance"]',
        reason: 'InvalidPodLabels',
        message: 'spec.podLabels["app.kubernetes.io/instance"]: is set by the operator (it selects the pods)',
      },
      {
        field: 'spec.podLabels["bad key!"]',
        reason: 'InvalidPodLabels',
        message: 'spec.podLabels["bad key!"]: is not a valid label key',
      },
      {
        field: 'spec.podLabels["ok"]',
        reason: 'InvalidPodLabels',
        message: 'spec.podLabels["ok"]: "bad value!" is not a valid label value',
      },
    ]);
  });

  it('refuses invalid annotation keys and the config-hash annotation', () => {
    expect(problems({ podAnnotations: { 'piko.dev/config-hash': 'x' } }).map((p) => p.reason)).toEqual(['InvalidPodAnnotations']);
    expect(problems({ services: { proxy: { annotations: { '/x': 'y' } } } })).toEqual([
      expect.objectContaining({ field: 'spec.services.proxy.annotations["/x"]', reason: 'InvalidServicesProxyAnnotations' }),
    ]);
    expect(problems({ podAnnotations: { [`${'a'.repeat(64)}`]: 'x' } }).map((p) => p.field)).toEqual([
      `spec.podAnnotations["${'a'.repeat(64)}"]`,
    ]);
  });

  it('checks inside tolerations and topology spread constraints, which the schema stores as given', () => {
    expect(
      problems({
        scheduling: {
          tolerations: [{ operator: 'Exists', value: 'x' }, { operator: 'Maybe' }, { effect: 'Sometimes' }],
          topologySpreadConstraints: [{ maxSkew: 0, topologyKey: '', whenUnsatisfiable: 'Never' } as never],
        },
      }).map((p) => [p.field, p.reason]),
    ).toEqual([
      ['spec.scheduling.tolerations[0].value', 'InvalidSchedulingTolerations'],
      ['spec.scheduling.tolerations[1].operator', 'InvalidSchedulingTolerations'],
      ['spec.scheduling.tolerations[2].effect', 'InvalidSchedulingTolerations'],
      ['spec.scheduling.topologySpreadConstraints[0].maxSkew', 'InvalidSchedulingTopologySpreadConstraints'],
      ['spec.scheduling.topologySpreadConstraints[0].topologyKey', 'InvalidSchedulingTopologySpreadConstraints'],
      ['spec.scheduling.topologySpreadConstraints[0].whenUnsatisfiable', 'InvalidSchedulingTopologySpreadConstraints'],
    ]);
  });

  it('checks inside env valueFrom, which the schema stores as given', () => {
    expect(
      problems({
        env: [
          { name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
          { name: 'B', valueFrom: {} },
          { name: 'C', valueFrom: { fieldRef: { fieldPath: 'metadata.name' }, configMapKeyRef: { name: 'c', key: 'k' } } },
          { name: 'D', valueFrom: { secretKeyRef: { name: 's' } } as never },
          { name: 'E', valueFrom: { fileKeyRef: {} } as never },
          { name: 'F', value: 'plain' },
        ],
      }).map((p) => [p.field, p.reason]),
    ).toEqual([
      ['spec.env[1].valueFrom', 'InvalidEnv'],
      ['spec.env[2].valueFrom', 'InvalidEnv'],
      ['spec.env[3].valueFrom.secretKeyRef.key', 'InvalidEnv'],
      ['spec.env[4].valueFrom', 'InvalidEnv'],
    ]);
  });

  it('refuses durations the pattern admits but Go cannot hold', () => {
    expect(problems({ gracePeriod: '9999999999h' })).toEqual([
      expect.objectContaining({ field: 'spec.gracePeriod', reason: 'InvalidGracePeriod' }),
    ]);
    expect(problems({ auth: { proxy: { jwks: { url: 'https://x/jwks', cacheTTL: '9999999999h' } } } })).toEqual([
      expect.objectContaining({ field: 'spec.auth.proxy.jwks.cacheTTL', reason: 'InvalidAuthProxyJwksCacheTTL' }),
    ]);
  });

  it('refuses a JWKS URL that does not parse', () => {
    expect(problems({ auth: { upstream: { jwks: { url: 'https://[bad' } } } })).toEqual([
      expect.objectContaining({ field: 'spec.auth.upstream.jwks.url', reason: 'InvalidAuthUpstreamJwksUrl' }),
    ]);
  });

  it('refuses a disruption budget that blocks every eviction, unless there are no pods', () => {
    for (const maxUnavailable of [0, '0%']) {
      expect(problems({ podDisruptionBudget: { maxUnavailable } })).toEqual([
        expect.objectContaining({ field: 'spec.podDisruptionBudget.maxUnavailable', reason: 'InvalidPodDisruptionBudgetMaxUnavailable' }),
      ]);
    }
    expect(problems({ replicas: 0, podDisruptionBudget: { maxUnavailable: 0 } })).toEqual([]);
    expect(problems({ podDisruptionBudget: { enabled: false, maxUnavailable: 0 } })).toEqual([]);
  });

  it('names reasons after fields, as condition reasons allow', () => {
    expect(reasonForField('spec.podLabels["a.b/c"]')).toBe('InvalidPodLabels');
    expect(reasonForField('spec.scheduling.tolerations[3].operator')).toBe('InvalidSchedulingTolerationsOperator');
    expect(reasonForField('metadata.name')).toBe('InvalidMetadataName');
  });
});
