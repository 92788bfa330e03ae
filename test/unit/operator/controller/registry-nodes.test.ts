import type { ConfigMapObject, LeaseObject } from '../../../../dataplane/registry/kubernetes/objects';
import { buildLease, buildShard, serializeShard } from '../../../../dataplane/registry/kubernetes/objects';
import { analyseRegistry } from '../../../../operator/controller/registry-nodes';

const NOW = 1_800_000_000_000;
const GRACE = 10_000;
let rv = 0;

function lease(nodeId: string, renewAgoMs: number, durationMs = 15_000): LeaseObject {
  const l = buildLease({
    cluster: 'piko',
    nodeId,
    proxyAddr: '10.0.0.1:8000',
    adminAddr: '10.0.0.1:8002',
    durationMs,
    acquireTimeMs: NOW - renewAgoMs,
    renewTimeMs: NOW - renewAgoMs,
  });
  return { ...l, metadata: { ...l.metadata, namespace: 'ns', resourceVersion: String(++rv) } };
}

function shard(nodeId: string, index: number, endpoints: [string, number][]): ConfigMapObject {
  const s = buildShard({ cluster: 'piko', nodeId, index, json: serializeShard(new Map(endpoints)) });
  return { ...s, metadata: { ...s.metadata, namespace: 'ns', resourceVersion: String(++rv) } };
}

describe('analyseRegistry', () => {
  it('reports live nodes with their endpoints merged over shards, the larger count winning', () => {
    const out = analyseRegistry({
      leases: [lease('piko-1', 1_000), lease('piko-0', 2_000)],
      shards: [
        shard('piko-0', 0, [['a', 2]]),
        shard('piko-0', 1, [
          ['a', 1],
          ['b', 3],
        ]),
        shard('piko-1', 0, [['c', 1]]),
      ],
      podNames: new Set(['piko-0', 'piko-1']),
      nowMs: NOW,
      graceMs: GRACE,
    });
    expect(out.nodes).toEqual([
      { id: 'piko-0', endpoints: { a: 2, b: 3 } },
      { id: 'piko-1', endpoints: { c: 1 } },
    ]);
    expect(out.garbage).toEqual([]);
    // piko-0 renewed 2 s ago with 15 s: it expires first, in 13 s.
    expect(out.nextChangeAtMs).toBe(NOW + 13_000);
  });

  it('leaves out an expired node, and keeps its objects while its pod exists', () => {
    const out = analyseRegistry({
      leases: [lease('piko-2', 60_000)],
      shards: [shard('piko-2', 0, [['a', 1]])],
      podNames: new Set(['piko-2']),
      nowMs: NOW,
      graceMs: GRACE,
    });
    expect(out.nodes).toEqual([]);
    expect(out.garbage).toEqual([]);
    expect(out.nextChangeAtMs).toBeUndefined();
  });

  it('collects the Lease and shards of a node whose Lease expired and whose pod is gone', () => {
    const l = lease('piko-7', 60_000);
    const s = shard('piko-7', 0, [['a', 1]]);
    const out = analyseRegistry({ leases: [l], shards: [s], podNames: new Set(), nowMs: NOW, graceMs: GRACE });
    expect(out.garbage).toEqual([
      { kind: 'Lease', name: 'piko-node-piko-7', resourceVersion: l.metadata.resourceVersion },
      { kind: 'ConfigMap', name: 'piko-endpoints-piko-7-0', resourceVersion: s.metadata.resourceVersion },
    ]);
  });

  it('waits out the grace after expiry before collecting, and says when to look again', () => {
    // Expired 5 s ago: within the 10 s grace.
    const out = analyseRegistry({ leases: [lease('piko-7', 20_000)], shards: [], podNames: new Set(), nowMs: NOW, graceMs: GRACE });
    expect(out.garbage).toEqual([]);
    expect(out.nextChangeAtMs).toBe(NOW + 5_000);
  });

  it('collects shards left without any Lease when no pod has their node id', () => {
    const out = analyseRegistry({
      leases: [],
      shards: [shard('gone-1', 0, [['a', 1]]), shard('piko-0', 0, [['b', 1]])],
      podNames: new Set(['piko-0']),
      nowMs: NOW,
      graceMs: GRACE,
    });
    expect(out.garbage.map((g) => g.name)).toEqual(['piko-endpoints-gone-1-0']);
    expect(out.nodes).toEqual([]);
  });

  it('never counts a node whose Lease was never renewed as live', () => {
    const l = lease('piko-0', 0);
    delete l.spec!.renewTime;
    const out = analyseRegistry({ leases: [l], shards: [], podNames: new Set(), nowMs: NOW, graceMs: GRACE });
    expect(out.nodes).toEqual([]);
    expect(out.garbage.map((g) => g.kind)).toEqual(['Lease']);
  });
});
