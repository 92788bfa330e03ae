import { ClusterView } from '../../../../dataplane/registry/kubernetes/cluster-view';
import type { ConfigMapObject, LeaseObject } from '../../../../dataplane/registry/kubernetes/objects';
import { buildLease, buildShard, serializeShard } from '../../../../dataplane/registry/kubernetes/objects';
import { RecordSigner } from '../../../../dataplane/registry/kubernetes/record-signature';

const signer = new RecordSigner('cluster-secret-0123456789');

const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);
const DURATION = 15_000;

function lease(nodeId: string, renewTimeMs: number, durationMs = DURATION): LeaseObject {
  return signer.sealLease(
    buildLease({
      cluster: 'piko',
      nodeId,
      proxyAddr: `${nodeId}:8000`,
      adminAddr: `${nodeId}:8002`,
      durationMs,
      acquireTimeMs: T0,
      renewTimeMs,
    }),
  );
}

function shard(nodeId: string, index: number, endpoints: Record<string, number>): ConfigMapObject {
  return signer.sealShard(buildShard({ cluster: 'piko', nodeId, index, json: serializeShard(new Map(Object.entries(endpoints))) }));
}

function holders(view: ClusterView, endpointId: string): Record<string, number> {
  return Object.fromEntries(view.lookup(endpointId).map((h) => [h.node.id, h.upstreams]));
}

describe('ClusterView', () => {
  let view: ClusterView;
  let changes: number;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    changes = 0;
    view = new ClusterView({ selfKey: 'self', signer, onChange: () => changes++ });
    view.thaw();
  });

  afterEach(() => {
    view.close();
    jest.useRealTimers();
  });

  it('returns other live nodes holding the endpoint with their counts, never this node', () => {
    view.upsertLease(lease('self', T0));
    view.upsertLease(lease('a', T0));
    view.upsertLease(lease('b', T0));
    view.upsertShard(shard('self', 0, { e: 5 }));
    view.upsertShard(shard('a', 0, { e: 2 }));
    view.upsertShard(shard('b', 0, { e: 1, f: 1 }));
    expect(holders(view, 'e')).toEqual({ a: 2, b: 1 });
    expect(holders(view, 'f')).toEqual({ b: 1 });
    expect(view.lookup('e')[0]?.node).toMatchObject({ proxyAddr: 'a:8000', adminAddr: 'a:8002', status: 'active' });
    expect(view.lookup('unknown')).toEqual([]);
  });

  it('follows count changes and removals', () => {
    view.upsertLease(lease('a', T0));
    view.upsertShard(shard('a', 0, { e: 2 }));
    view.upsertShard(shard('a', 0, { e: 3 }));
    expect(holders(view, 'e')).toEqual({ a: 3 });
    view.upsertShard(shard('a', 0, { other: 1 }));
    expect(holders(view, 'e')).toEqual({});
    view.removeShard(shard('a', 0, {}));
    expect(holders(view, 'other')).toEqual({});
  });

  it('merges shards, taking the larger count while an endpoint is in two', () => {
    view.upsertLease(lease('a', T0));
    view.upsertShard(shard('a', 0, { e: 1, x: 1 }));
    view.upsertShard(shard('a', 1, { e: 4, y: 1 }));
    expect(holders(view, 'e')).toEqual({ a: 4 });
    view.upsertShard(shard('a', 1, { y: 1 }));
    expect(holders(view, 'e')).toEqual({ a: 1 });
    expect(view.others()[0]?.endpoints).toEqual({ e: 1, x: 1, y: 1 });
  });

  it('ignores endpoints of a node without a Lease, and forgets a node whose Lease is deleted', () => {
    view.upsertShard(shard('a', 0, { e: 1 }));
    expect(holders(view, 'e')).toEqual({});
    view.upsertLease(lease('a', T0));
    expect(holders(view, 'e')).toEqual({ a: 1 });
    view.removeLease(lease('a', T0));
    expect(holders(view, 'e')).toEqual({});
    expect(view.others()).toEqual([]);
  });

  it("tells when each node's Lease was renewed: as written at first, then when this node saw a renewal arrive", () => {
    // The holder's clock runs 3 s behind ours.
    view.upsertLease(lease('a', T0 - 3_000));
    expect(view.others()[0]?.leaseRenewedAtMs).toBe(T0 - 3_000);
    jest.advanceTimersByTime(5_000);
    view.upsertLease(lease('a', T0 + 2_000));
    expect(view.others()[0]?.leaseRenewedAtMs).toBe(T0 + 5_000);
  });

  it('drops a node when its Lease expires, on time, with no event', () => {
    view.upsertLease(lease('a', T0));
    view.upsertShard(shard('a', 0, { e: 1 }));
    const before = changes;
    jest.advanceTimersByTime(DURATION - 1);
    expect(holders(view, 'e')).toEqual({ a: 1 });
    jest.advanceTimersByTime(2);
    expect(holders(view, 'e')).toEqual({});
    expect(changes).toBeGreaterThan(before);
    expect(view.others()[0]?.status).toBe('unreachable');
    expect(view.statusCounts()).toEqual({ active: 0, unreachable: 1 });
  });

  it('keeps a renewing node live and brings an expired one back when it renews', () => {
    view.upsertLease(lease('a', T0));
    view.upsertShard(shard('a', 0, { e: 1 }));
    for (let i = 1; i <= 5; i++) {
      jest.advanceTimersByTime(5_000);
      view.upsertLease(lease('a', T0 + i * 5_000));
    }
    expect(holders(view, 'e')).toEqual({ a: 1 });
    jest.advanceTimersByTime(DURATION + 1);
    expect(holders(view, 'e')).toEqual({});
    view.upsertLease(lease('a', Date.now()));
    expect(holders(view, 'e')).toEqual({ a: 1 });
  });

  it('tells listeners when routing can change, not on every renewal of a live node', () => {
    view.upsertLease(lease('a', T0));
    view.upsertShard(shard('a', 0, { e: 1 }));
    const settled = changes;
    for (let i = 1; i <= 5; i++) {
      jest.advanceTimersByTime(5_000);
      view.upsertLease(lease('a', T0 + i * 5_000));
    }
    expect(changes).toBe(settled);
    // The renewals still count: the node is live past its first Lease's deadline.
    expect(holders(view, 'e')).toEqual({ a: 1 });
    // A node that moved is news.
    view.upsertLease(
      signer.sealLease(
        buildLease({
          cluster: 'piko',
          nodeId: 'a',
          proxyAddr: 'a2:8000',
          adminAddr: 'a:8002',
          durationMs: DURATION,
          acquireTimeMs: T0,
          renewTimeMs: Date.now(),
        }),
      ),
    );
    expect(changes).toBe(settled + 1);
    expect(view.lookup('e')[0]?.node.proxyAddr).toBe('a2:8000');
    // So is one that expired and came back.
    jest.advanceTimersByTime(DURATION + 1);
    const expired = changes;
    expect(expired).toBeGreaterThan(settled + 1);
    view.upsertLease(lease('a', Date.now()));
    expect(changes).toBe(expired + 1);
    expect(holders(view, 'e')).toEqual({ a: 1 });
  });

  it('drops a Lease that is already stale when first listed', () => {
    view.upsertLease(lease('dead', T0 - DURATION - 1));
    view.upsertShard(shard('dead', 0, { e: 1 }));
    expect(holders(view, 'e')).toEqual({});
  });

  it('keeps a node whose clock runs behind alive while renewals are seen', () => {
    const behind = 20_000;
    view.upsertLease(lease('slow', T0 - behind));
    view.upsertShard(shard('slow', 0, { e: 1 }));
    // First sighting: judged by its own renew time only.
    expect(holders(view, 'e')).toEqual({});
    jest.advanceTimersByTime(5_000);
    view.upsertLease(lease('slow', Date.now() - behind));
    expect(holders(view, 'e')).toEqual({ slow: 1 });
    jest.advanceTimersByTime(DURATION - 1);
    expect(holders(view, 'e')).toEqual({ slow: 1 });
  });

  it('expires nobody while the Lease watch is down, and gives live nodes one duration after it returns', () => {
    view.upsertLease(lease('a', T0));
    view.upsertLease(lease('gone', T0 - DURATION - 1));
    view.upsertShard(shard('a', 0, { e: 1 }));
    view.upsertShard(shard('gone', 0, { e: 1 }));
    jest.advanceTimersByTime(5_000);
    view.freeze(Date.now());
    jest.advanceTimersByTime(60_000);
    expect(holders(view, 'e')).toEqual({ a: 1 });

    view.thaw();
    expect(holders(view, 'e')).toEqual({ a: 1 });
    jest.advanceTimersByTime(DURATION - 1);
    expect(holders(view, 'e')).toEqual({ a: 1 });
    // No renewal seen within the grace: gone. The node expired before the outage never came back.
    jest.advanceTimersByTime(2);
    expect(holders(view, 'e')).toEqual({});
  });

  it('keeps a node that renews after the outage', () => {
    view.upsertLease(lease('a', T0));
    view.upsertShard(shard('a', 0, { e: 1 }));
    view.freeze(Date.now());
    jest.advanceTimersByTime(30_000);
    view.thaw();
    jest.advanceTimersByTime(3_000);
    view.upsertLease(lease('a', Date.now()));
    jest.advanceTimersByTime(DURATION - 1);
    expect(holders(view, 'e')).toEqual({ a: 1 });
  });

  it('freezes as of an earlier instant, reviving a node that expired since', () => {
    view.upsertLease(lease('a', T0));
    view.upsertShard(shard('a', 0, { e: 1 }));
    jest.advanceTimersByTime(DURATION + 1_000);
    expect(holders(view, 'e')).toEqual({});
    // Our own last good renewal was before a's deadline: its silence proves nothing.
    view.freeze(T0 + 1_000);
    expect(holders(view, 'e')).toEqual({ a: 1 });
    view.freeze(Date.now());
    expect(holders(view, 'e')).toEqual({ a: 1 });
    view.thaw();
    jest.advanceTimersByTime(DURATION - 1);
    expect(holders(view, 'e')).toEqual({ a: 1 });
    jest.advanceTimersByTime(2);
    expect(holders(view, 'e')).toEqual({});
  });

  it('judges by the current time until the first sync, and a freeze before it keeps nothing', () => {
    const fresh = new ClusterView({ selfKey: 'self', signer });
    fresh.upsertLease(lease('a', T0));
    fresh.upsertShard(shard('a', 0, { e: 1 }));
    fresh.freeze(T0);
    jest.advanceTimersByTime(DURATION + 1);
    expect(fresh.lookup('e')).toEqual([]);
    fresh.thaw();
    expect(fresh.lookup('e')).toEqual([]);
    fresh.close();
  });

  it('skips a node that published no proxy address', () => {
    const l = lease('a', T0);
    delete l.metadata.annotations!['piko.dev/proxy-addr'];
    view.upsertLease(l);
    view.upsertShard(shard('a', 0, { e: 1 }));
    expect(view.lookup('e')).toEqual([]);
  });

  describe('waitFor', () => {
    it('resolves at once when a holder is known', async () => {
      view.upsertLease(lease('a', T0));
      view.upsertShard(shard('a', 0, { e: 1 }));
      await expect(view.waitFor('e', 1000)).resolves.toBe(true);
    });

    it('resolves when a shard event brings the endpoint', async () => {
      view.upsertLease(lease('a', T0));
      const waiting = view.waitFor('e', 1000);
      view.upsertShard(shard('a', 0, { other: 1 }));
      view.upsertShard(shard('a', 0, { e: 1 }));
      await expect(waiting).resolves.toBe(true);
    });

    it('resolves when the holder Lease appears after its shard', async () => {
      view.upsertShard(shard('a', 0, { e: 1 }));
      const waiting = view.waitFor('e', 1000);
      view.upsertLease(lease('a', T0));
      await expect(waiting).resolves.toBe(true);
    });

    it('ignores this node and resolves false at the timeout', async () => {
      view.upsertLease(lease('self', T0));
      const waiting = view.waitFor('e', 1000);
      view.upsertShard(shard('self', 0, { e: 1 }));
      jest.advanceTimersByTime(1000);
      await expect(waiting).resolves.toBe(false);
    });

    it('resolves false on close', async () => {
      const waiting = view.waitFor('e', 60_000);
      view.close();
      await expect(waiting).resolves.toBe(false);
      await expect(view.waitFor('e', 1000)).resolves.toBe(false);
    });
  });
});
