import { KubeApiError } from '../../../dataplane/kube/errors';
import { RESOURCES } from '../../../dataplane/kube/client';
import { LeaderElector, LEADER_ELECTION_LEASE_NAME, type ElectionLease } from '../../../dataplane/kube/leader-election';
import { FakeKubeClient } from './fake-kube-client';

interface Candidate {
  elector: LeaderElector;
  log: string[];
}

describe('LeaderElector', () => {
  let client: FakeKubeClient;
  const running: LeaderElector[] = [];

  function candidate(identity: string, owner?: { name: string; uid: string }): Candidate {
    const log: string[] = [];
    const elector = new LeaderElector({
      client,
      namespace: 'ops',
      identity,
      ...(owner ? { owner } : {}),
      onStartedLeading: () => log.push(`start@${Date.now()}`),
      onStoppedLeading: () => log.push(`stop@${Date.now()}`),
      // No jitter: a candidate retries exactly every retry period.
      random: () => 0,
    });
    running.push(elector);
    elector.start();
    return { elector, log };
  }

  const lease = (): ElectionLease | undefined => client.stored<ElectionLease>(RESOURCES.leases, 'ops', LEADER_ELECTION_LEASE_NAME);

  /** Advances the clock a second at a time until `cond` holds; returns the time it took. */
  async function until(cond: () => boolean, limitMs: number): Promise<number> {
    const start = Date.now();
    while (!cond()) {
      if (Date.now() - start > limitMs) throw new Error(`not within ${limitMs} ms`);
      await jest.advanceTimersByTimeAsync(100);
    }
    return Date.now() - start;
  }

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    client = new FakeKubeClient();
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((e) => e.stop({ release: false })));
    jest.useRealTimers();
  });

  it('takes a free Lease at once and renews it every retry period', async () => {
    const a = candidate('a');
    await jest.advanceTimersByTimeAsync(0);
    expect(a.elector.isLeader).toBe(true);
    expect(a.log).toEqual(['start@1000000']);
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    const before = lease()?.metadata.resourceVersion;
    await jest.advanceTimersByTimeAsync(2_000);
    expect(lease()?.metadata.resourceVersion).not.toBe(before);
    expect(lease()?.spec?.renewTime).toBe('1970-01-01T00:16:42.000000Z');
    expect(client.writes().filter((w) => w.startsWith('update'))).toHaveLength(1);
  });

  it('keeps a standby waiting while the leader renews', async () => {
    const a = candidate('a');
    await jest.advanceTimersByTimeAsync(0);
    const b = candidate('b');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(a.elector.isLeader).toBe(true);
    expect(b.elector.isLeader).toBe(false);
    expect(b.log).toEqual([]);
    expect(lease()?.spec?.holderIdentity).toBe('a');
  });

  it('takes over from a killed leader once the Lease has not changed for its duration', async () => {
    const a = candidate('a');
    await jest.advanceTimersByTimeAsync(0);
    const b = candidate('b');
    await jest.advanceTimersByTimeAsync(10_000);
    await a.elector.stop({ release: false });
    const waited = await until(() => b.elector.isLeader, 30_000);
    // B last saw the record change at most one retry period before the kill.
    expect(waited).toBeGreaterThanOrEqual(15_000 - 2_000);
    expect(waited).toBeLessThanOrEqual(15_000 + 2_000);
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('hands over within a retry period when the leader releases the Lease', async () => {
    const a = candidate('a');
    await jest.advanceTimersByTimeAsync(0);
    const b = candidate('b');
    await jest.advanceTimersByTimeAsync(5_000);
    await a.elector.stop();
    expect(a.log).toEqual(['start@1000000', 'stop@1005000']);
    // Released by deleting it: nothing is left behind by an operator that is uninstalled.
    expect(lease()).toBeUndefined();
    const waited = await until(() => b.elector.isLeader, 30_000);
    expect(waited).toBeLessThanOrEqual(2_000);
    expect(lease()?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 0 });
  });

  it('still releases the Lease when a renewal it never saw landed (aborted by stop, applied by the apiserver)', async () => {
    const a = candidate('a');
    await jest.advanceTimersByTimeAsync(0);
    const b = candidate('b');
    await jest.advanceTimersByTimeAsync(1_000);
    // The apiserver applied a renewal of a's whose answer a never read: a new version, a's name.
    client.put(RESOURCES.leases, { ...lease()!, spec: { ...lease()!.spec, renewTime: '2026-01-01T00:00:00.000000Z' } });
    await a.elector.stop();
    expect(lease()).toBeUndefined();
    expect(await until(() => b.elector.isLeader, 30_000)).toBeLessThanOrEqual(2_000);
  });

  it('leaves a Lease someone else took alone when releasing', async () => {
    const a = candidate('a');
    await jest.advanceTimersByTimeAsync(0);
    client.put(RESOURCES.leases, { ...lease()!, spec: { ...lease()!.spec, holderIdentity: 'z' } });
    await a.elector.stop();
    expect(lease()?.spec?.holderIdentity).toBe('z');
  });

  it("names the leader's pod as the Lease's owner, and the new leader's after a takeover", async () => {
    const a = candidate('a', { name: 'operator-a', uid: 'uid-a' });
    await jest.advanceTimersByTimeAsync(0);
    expect(lease()?.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'operator-a', uid: 'uid-a' }]);
    const b = candidate('b', { name: 'operator-b', uid: 'uid-b' });
    await a.elector.stop({ release: false });
    await until(() => b.elector.isLeader, 30_000);
    expect(lease()?.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'operator-b', uid: 'uid-b' }]);
  });

  it('stops leading at once when it cannot renew within the renew deadline', async () => {
    const a = candidate('a');
    await jest.advanceTimersByTimeAsync(0);
    const failedAt = Date.now();
    client.fail('get', new KubeApiError('UNAVAILABLE', 'connection refused'), { times: 1_000 });
    const waited = await until(() => !a.elector.isLeader, 30_000);
    expect(waited).toBeGreaterThanOrEqual(10_000);
    expect(waited).toBeLessThanOrEqual(12_000);
    expect(a.log).toEqual(['start@1000000', `stop@${failedAt + waited}`]);
  });

  it('steps down as soon as it sees another holder renewing', async () => {
    const a = candidate('a');
    await jest.advanceTimersByTimeAsync(0);
    const current = lease()!;
    client.put(RESOURCES.leases, { ...current, spec: { ...current.spec, holderIdentity: 'intruder' } });
    const waited = await until(() => !a.elector.isLeader, 30_000);
    expect(waited).toBeLessThanOrEqual(2_000);
    expect(lease()?.spec?.holderIdentity).toBe('intruder');
  });

  it('lets only one of two racing candidates win a free Lease', async () => {
    const a = candidate('a');
    const b = candidate('b');
    await jest.advanceTimersByTimeAsync(0);
    expect([a.elector.isLeader, b.elector.isLeader].filter(Boolean)).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(30_000);
    expect([a.elector.isLeader, b.elector.isLeader].filter(Boolean)).toHaveLength(1);
  });

  it('refuses timings where a leader could outlive its Lease', () => {
    const base = { client, namespace: 'ops', identity: 'x', onStartedLeading: () => undefined, onStoppedLeading: () => undefined };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(RangeError);
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 5_000, retryPeriodMs: 5_000 })).toThrow(RangeError);
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 15_500 })).toThrow(RangeError);
  });
});
