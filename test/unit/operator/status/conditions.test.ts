import { formatTime, getCondition, isConditionTrue, setCondition } from '../../../../operator/status/conditions';
import type { Condition } from '../../../../operator/api/pikocluster-status';

const T0 = new Date('2025-01-02T03:04:05.678Z');
const T1 = new Date('2025-01-02T03:09:00.000Z');

describe('setCondition', () => {
  it('adds a condition with observedGeneration and a whole-second transition time', () => {
    expect(setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Creating', message: 'm' }, 4, T0)).toEqual([
      {
        type: 'Ready',
        status: 'False',
        observedGeneration: 4,
        lastTransitionTime: '2025-01-02T03:04:05Z',
        reason: 'Creating',
        message: 'm',
      },
    ]);
  });

  it('keeps lastTransitionTime while the status stays, updating reason, message and generation', () => {
    const before = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Creating', message: 'a' }, 1, T0);
    const after = setCondition(before, { type: 'Ready', status: 'False', reason: 'Scaling', message: 'b' }, 2, T1);
    expect(after).toEqual([
      {
        type: 'Ready',
        status: 'False',
        observedGeneration: 2,
        lastTransitionTime: '2025-01-02T03:04:05Z',
        reason: 'Scaling',
        message: 'b',
      },
    ]);
  });

  it('moves lastTransitionTime when the status flips', () => {
    const before = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Creating', message: '' }, 1, T0);
    const after = setCondition(before, { type: 'Ready', status: 'True', reason: 'AllReplicasReady', message: '' }, 1, T1);
    expect(after[0]?.lastTransitionTime).toBe('2025-01-02T03:09:00Z');
  });

  it('does not modify the list it is given and keeps the order Ready, Progressing, Degraded', () => {
    const start: Condition[] = setCondition(undefined, { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' }, 1, T0);
    const frozen = structuredClone(start);
    let list = setCondition(start, { type: 'Ready', status: 'True', reason: 'AllReplicasReady', message: '' }, 1, T0);
    list = setCondition(list, { type: 'Progressing', status: 'False', reason: 'RolloutComplete', message: '' }, 1, T0);
    expect(start).toEqual(frozen);
    expect(list.map((c) => c.type)).toEqual(['Ready', 'Progressing', 'Degraded']);
    expect(getCondition(list, 'Progressing')?.reason).toBe('RolloutComplete');
    expect(isConditionTrue(list, 'Ready')).toBe(true);
    expect(isConditionTrue(list, 'Degraded')).toBe(false);
  });

  it('caps the message at the API limit', () => {
    const [c] = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Pending', message: 'x'.repeat(40_000) }, 1, T0);
    expect(c?.message).toHaveLength(32768);
  });

  it('formats time as metav1.Time does', () => {
    expect(formatTime(T0)).toBe('2025-01-02T03:04:05Z');
  });
});
