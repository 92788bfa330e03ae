import { FORWARD_AUTH_HEADER, ForwardAuth } from '../../../../dataplane/proxy/remote/forward-auth';
import { weightedPick } from '../../../../dataplane/proxy/remote/remote-dialer';

describe('ForwardAuth', () => {
  const auth = new ForwardAuth('a-shared-secret-of-some-length');
  const now = Date.UTC(2026, 10, 25, 12, 0, 0);

  it('accepts its own signature and names the forwarding node', () => {
    const header = auth.sign('node-a', now);
    expect(auth.verify({ [FORWARD_AUTH_HEADER]: header }, now + 5000)).toBe('node-a');
  });

  it('refuses a signature made with another secret', () => {
    const forged = new ForwardAuth('another-secret-entirely-here').sign('node-a', now);
    expect(auth.verify({ [FORWARD_AUTH_HEADER]: forged }, now)).toBeUndefined();
  });

  it('refuses a stale signature, a tampered node id and malformed values', () => {
    const header = auth.sign('node-a', now);
    expect(auth.verify({ [FORWARD_AUTH_HEADER]: header }, now + 120_000)).toBeUndefined();
    expect(auth.verify({ [FORWARD_AUTH_HEADER]: header.replace('node-a', 'node-b') }, now)).toBeUndefined();
    for (const bad of ['', 'x', 'a.b', 'node.12.zz', `node-a.${Math.floor(now / 1000)}.`, `node-a.1e3.${'0'.repeat(64)}`]) {
      expect(auth.verify({ [FORWARD_AUTH_HEADER]: bad }, now)).toBeUndefined();
    }
    expect(auth.verify({}, now)).toBeUndefined();
  });

  it('allows node ids that contain dots', () => {
    const header = auth.sign('piko-0.piko.default', now);
    expect(auth.verify({ [FORWARD_AUTH_HEADER]: header }, now)).toBe('piko-0.piko.default');
  });
});

describe('weightedPick', () => {
  it('draws in proportion to the weights', () => {
    const weights = [1, 3, 0, 6];
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 1000; i++) counts[weightedPick(weights, i / 1000)]! += 1;
    expect(counts).toEqual([100, 300, 0, 600]);
  });
});
