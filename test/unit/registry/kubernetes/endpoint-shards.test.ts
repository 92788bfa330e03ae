import { EndpointShards, entryBytes } from '../../../../dataplane/registry/kubernetes/endpoint-shards';

const KIB = 1024;

function id(i: number, length: number): string {
  return `${i}-`.padEnd(length, 'x');
}

function everyShardFits(table: EndpointShards, cap: number): void {
  for (let i = 0; i < table.shardCount; i++) {
    const json = table.json(i);
    if (json !== undefined) {
      expect(Buffer.byteLength(json)).toBeLessThanOrEqual(cap);
      expect(Buffer.byteLength(json)).toBe(table.bytes(i));
    }
  }
}

describe('EndpointShards', () => {
  it('reports the shard of a changed endpoint and nothing for a no-op', () => {
    const table = new EndpointShards({ maxShardBytes: 256 * KIB });
    expect(table.set('a', 1)).toEqual([0]);
    expect(table.set('a', 1)).toEqual([]);
    expect(table.set('a', 0)).toEqual([0]);
    expect(table.set('a', 0)).toEqual([]);
    expect(table.json(0)).toBeUndefined();
  });

  it('holds one pod of the 25-pod target (400 endpoints, 32-character IDs) in one shard', () => {
    const table = new EndpointShards({ maxShardBytes: 256 * KIB });
    for (let i = 0; i < 400; i++) table.set(id(i, 32), 1);
    expect(table.shardCount).toBe(1);
    expect(table.bytes(0)).toBeLessThan(16 * KIB);
  });

  it('splits 10,000 endpoints with 128-character IDs into 8 shards under 256 KiB each', () => {
    const table = new EndpointShards({ maxShardBytes: 256 * KIB });
    for (let i = 0; i < 10_000; i++) table.set(id(i, 128), 1);
    expect(table.shardCount).toBe(8);
    everyShardFits(table, 256 * KIB);
    const total = Array.from({ length: 8 }, (_, i) => table.bytes(i)).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(1_300_000);
  });

  it('returns every old and new shard when the count grows', () => {
    const table = new EndpointShards({ maxShardBytes: 1000 });
    let changed: number[] = [];
    let i = 0;
    while (table.shardCount === 1) changed = table.set(id(i++, 20), 1);
    expect(table.shardCount).toBe(2);
    expect(changed).toEqual([0, 1]);
    everyShardFits(table, 1000);
  });

  it('halves only once the table fits in a quarter, so it does not flap at the boundary', () => {
    const cap = 2000;
    const table = new EndpointShards({ maxShardBytes: cap });
    const ids: string[] = [];
    while (table.shardCount < 4) {
      const e = id(ids.length, 30);
      ids.push(e);
      table.set(e, 1);
    }
    const grownAt = ids.length;
    // Removing a few does not shrink it back.
    for (let k = 0; k < 3; k++) table.set(ids.pop() as string, 0);
    expect(table.shardCount).toBe(4);
    while (table.shardCount === 4 && ids.length > 0) table.set(ids.pop() as string, 0);
    expect(ids.length).toBeLessThanOrEqual(grownAt / 2);
    everyShardFits(table, cap);
    while (ids.length > 0) table.set(ids.pop() as string, 0);
    expect(table.shardCount).toBe(1);
    expect(table.size).toBe(0);
  });

  it('tracks sizes of count changes in place', () => {
    const table = new EndpointShards({ maxShardBytes: 256 * KIB });
    table.set('e', 9);
    table.set('e', 10);
    expect(table.bytes(0)).toBe(Buffer.byteLength(table.json(0) as string));
    expect(entryBytes('e', 10)).toBe('"e":10,'.length);
  });

  it('keeps the shard of an endpoint stable while the count does not change', () => {
    const table = new EndpointShards({ maxShardBytes: 1000 });
    for (let i = 0; i < 100; i++) table.set(id(i, 20), 1);
    const n = table.shardCount;
    const s = table.shardOf('some-endpoint');
    expect(table.shardOf('some-endpoint')).toBe(s);
    expect(s).toBeLessThan(n);
  });
});
