import type { PikoClusterStatus } from '../../../../operator/api/pikocluster-status';
import { statusEqual } from '../../../../operator/status/status-equal';

describe('statusEqual', () => {
  it('ignores key order and undefined fields', () => {
    expect(statusEqual({ replicas: 1, endpoints: 2 }, { endpoints: 2, replicas: 1, upstreams: undefined })).toBe(true);
    expect(statusEqual(undefined, {})).toBe(true);
  });

  it('sees any changed value, nested or in a list', () => {
    const a: PikoClusterStatus = {
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: 't', reason: 'R', message: 'm' }],
    };
    expect(statusEqual(a, structuredClone(a))).toBe(true);
    expect(statusEqual(a, { conditions: [{ ...a.conditions![0]!, message: 'n' }] })).toBe(false);
    expect(statusEqual({ replicas: 1 }, { replicas: 2 })).toBe(false);
    expect(statusEqual({ nodes: [] }, {})).toBe(false);
  });
});
