import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { CONDITION_REASON } from '../../../../operator/api/pikocluster-status';
import { deriveStatus, type ObservedState } from '../../../../operator/status/derive-status';
import type { PikoCluster } from '../../../../operator/api/pikocluster';
import { makeCluster } from '../fixtures';

const NOW = new Date('2025-03-01T12:00:00Z');
const LATER = new Date('2025-03-01T12:05:00Z');

function sts(status: Partial<NonNullable<V1StatefulSet['status']>>, generation = 1): V1StatefulSet {
  return {
    metadata: { name: 'piko', generation },
    status: {
      observedGeneration: generation,
      currentRevision: 'r1',
      updateRevision: 'r1',
      replicas: 3,
      readyReplicas: 3,
      updatedReplicas: 3,
      ...status,
    },
  };
}

function pod(name: string, ready = true, extra: Partial<NonNullable<V1Pod['status']>> = {}): V1Pod {
  return {
    metadata: { name },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }], ...extra },
  };
}

const PODS = [pod('piko-0'), pod('piko-1'), pod('piko-2')];

function conditions(cluster: PikoCluster, observed: ObservedState, now = NOW) {
  return Object.fromEntries((deriveStatus(cluster, observed, now).conditions ?? []).map((c) => [c.type, `${c.status} ${c.reason}`]));
}

describe('deriveStatus', () => {
  it('is Ready when every pod runs the current revision and is ready', () => {
    const cluster = makeCluster({}, { generation: 7 });
    const status = deriveStatus(cluster, { statefulSet: sts({}), pods: PODS, registryNodes: [] }, NOW);
    expect(status).toMatchObject({
      observedGeneration: 7,
      replicas: 3,
      readyReplicas: 3,
      endpoints: 0,
      upstreams: 0,
      selector: 'app.kubernetes.io/name=piko,app.kubernetes.io/instance=piko,app.kubernetes.io/component=dataplane',
    });
    expect(status.conditions).toEqual([
      {
        type: 'Ready',
        status: 'True',
        observedGeneration: 7,
        lastTransitionTime: '2025-03-01T12:00:00Z',
        reason: 'AllReplicasReady',
        message: '3/3 pods ready',
      },
      {
        type: 'Progressing',
        status: 'False',
        observedGeneration: 7,
        lastTransitionTime: '2025-03-01T12:00:00Z',
        reason: 'RolloutComplete',
        message: 'every pod runs the current spec',
      },
      {
        type: 'Degraded',
        status: 'False',
        observedGeneration: 7,
        lastTransitionTime: '2025-03-01T12:00:00Z',
        reason: 'AsExpected',
        message: 'no pod is failing',
      },
    ]);
  });

  it('reports each unmet rollout step as Ready=False, Progressing=True', () => {
    const cluster = makeCluster();
    const cases: [ObservedState, string][] = [
      [{}, 'Creating'],
      [{ statefulSet: { metadata: { generation: 2 }, status: { observedGeneration: 1, replicas: 3 } } }, 'Pending'],
      [{ statefulSet: sts({ updateRevision: 'r2', updatedReplicas: 1 }) }, 'RollingUpdate'],
      [{ statefulSet: sts({ replicas: 2, updatedReplicas: 2, readyReplicas: 2 }) }, 'Scaling'],
      [{ statefulSet: sts({ readyReplicas: 1 }) }, 'WaitingForReadyReplicas'],
    ];
    for (const [observed, reason] of cases) {
      expect(conditions(cluster, observed)).toEqual({
        Ready: `False ${reason}`,
        Progressing: `True ${reason}`,
        Degraded: 'False AsExpected',
      });
    }
  });

  it('follows a scale-down until the extra pods are gone', () => {
    const cluster = makeCluster({ replicas: 2 });
    expect(conditions(cluster, { statefulSet: sts({}) }).Ready).toBe('False Scaling');
    expect(conditions(cluster, { statefulSet: sts({ replicas: 2, readyReplicas: 2, updatedReplicas: 2 }) }).Ready).toBe(
      'True AllReplicasReady',
    );
  });

  it('is Ready with no pods when scaled to zero', () => {
    const cluster = makeCluster({ replicas: 0 });
    expect(conditions(cluster, { statefulSet: sts({ replicas: 0, readyReplicas: 0, updatedReplicas: 0 }) }).Ready).toBe(
      'True ScaledToZero',
    );
  });

  it('turns spec problems into Ready=False, Progressing=False, Degraded=True with the field-naming reason', () => {
    const status = deriveStatus(
      makeCluster(),
      {
        statefulSet: sts({}),
        problems: [
          { reason: 'InvalidPodLabels', message: 'spec.podLabels["x y"]: is not a valid label key' },
          { reason: 'SecretNotFound', message: 'secret "auth" not found' },
        ],
      },
      NOW,
    );
    expect(status.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'False', 'InvalidPodLabels'],
      ['Progressing', 'False', 'InvalidPodLabels'],
      ['Degraded', 'True', 'InvalidPodLabels'],
    ]);
    expect(status.conditions?.[0]?.message).toBe('spec.podLabels["x y"]: is not a valid label key; secret "auth" not found');
  });

  it('is Degraded while a pod cannot run, naming the pod and the kubelet reason', () => {
    const waiting = (reason: string, message?: string): Partial<NonNullable<V1Pod['status']>> => ({
      containerStatuses: [
        {
          name: 'piko',
          image: 'i',
          imageID: '',
          ready: false,
          restartCount: 3,
          state: { waiting: { reason, ...(message ? { message } : {}) } },
        },
      ],
    });
    const pods = [
      pod('piko-2', false, waiting('CreateContainerConfigError', 'secret "auth" not found')),
      pod('piko-0'),
      pod('piko-1', false, waiting('CrashLoopBackOff')),
    ];
    const status = deriveStatus(makeCluster(), { statefulSet: sts({ readyReplicas: 1 }), pods }, NOW);
    const degraded = status.conditions?.find((c) => c.type === 'Degraded');
    expect(degraded).toMatchObject({
      status: 'True',
      reason: 'CrashLoopBackOff',
      message: 'pod piko-1 container piko: CrashLoopBackOff (and 1 more pod)',
    });
    expect(status.conditions?.find((c) => c.type === 'Progressing')?.status).toBe('True');
  });

  it('is Degraded when the scheduler cannot place a pod', () => {
    const pending = pod('piko-0', false, {
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' }],
    });
    expect(deriveStatus(makeCluster(), { statefulSet: sts({ readyReplicas: 2 }), pods: [pending] }, NOW).conditions?.[2]).toMatchObject({
      status: 'True',
      reason: 'Unschedulable',
      message: 'pod piko-0: 0/3 nodes are available',
    });
  });

  it("counts endpoints and upstreams of this cluster's pods, and summarises each pod", () => {
    const status = deriveStatus(
      makeCluster(),
      {
        statefulSet: sts({ readyReplicas: 2 }),
        pods: [pod('piko-1', false), pod('piko-0')],
        registryNodes: [
          { id: 'piko-0', endpoints: { a: 2, b: 1 } },
          { id: 'piko-1', endpoints: { a: 1, c: 0 } },
          // A node whose pod is gone: left for garbage collection, not counted.
          { id: 'piko-9', endpoints: { z: 5 } },
        ],
      },
      NOW,
    );
    expect(status.endpoints).toBe(2);
    expect(status.upstreams).toBe(4);
    expect(status.nodes).toEqual([
      { name: 'piko-0', ready: true, endpoints: 2, upstreams: 3 },
      { name: 'piko-1', ready: false, endpoints: 1, upstreams: 1 },
    ]);
  });

  it('keeps the last counts when the registry could not be read', () => {
    const cluster = makeCluster();
    cluster.status = { endpoints: 4, upstreams: 9, nodes: [{ name: 'piko-0', ready: true, endpoints: 4, upstreams: 9 }] };
    const status = deriveStatus(cluster, { statefulSet: sts({}), pods: [pod('piko-0'), pod('piko-1')] }, NOW);
    expect([status.endpoints, status.upstreams]).toEqual([4, 9]);
    expect(status.nodes).toEqual([
      { name: 'piko-0', ready: true, endpoints: 4, upstreams: 9 },
      { name: 'piko-1', ready: true, endpoints: 0, upstreams: 0 },
    ]);
  });

  it('keeps transition times across passes until a status flips', () => {
    const cluster = makeCluster();
    cluster.status = deriveStatus(cluster, { statefulSet: sts({ readyReplicas: 2 }) }, NOW);
    const again = deriveStatus(cluster, { statefulSet: sts({ readyReplicas: 2 }) }, LATER);
    expect(again).toEqual(cluster.status);
    const ready = deriveStatus(cluster, { statefulSet: sts({}) }, LATER);
    expect(ready.conditions?.map((c) => c.lastTransitionTime)).toEqual([
      '2025-03-01T12:05:00Z',
      '2025-03-01T12:05:00Z',
      '2025-03-01T12:00:00Z',
    ]);
  });

  it('only ever uses reasons the API accepts', () => {
    const reasons = [
      ...conditionsList({}),
      ...conditionsList({ statefulSet: sts({ readyReplicas: 0 }) }),
      ...conditionsList({ statefulSet: sts({ updateRevision: 'r2' }) }),
    ];
    for (const reason of reasons) expect(reason).toMatch(new RegExp(CONDITION_REASON));
  });
});

function conditionsList(observed: ObservedState): string[] {
  return (deriveStatus(makeCluster(), observed, NOW).conditions ?? []).map((c) => c.reason);
}
