import {
  buildLease,
  buildShard,
  clusterSelector,
  LABEL_NODE,
  leaseDurationSeconds,
  leaseName,
  nodeKey,
  parseLease,
  parseShard,
  parseShardJson,
  serializeShard,
  shardName,
} from '../../../../dataplane/registry/kubernetes/objects';
import { microTime } from '../../../../dataplane/kube/client';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe('nodeKey', () => {
  it('keeps an ID that is already a valid name and label value', () => {
    expect(nodeKey('piko-0')).toBe('piko-0');
    expect(nodeKey('abc123x')).toBe('abc123x');
  });

  it.each(['Piko_0', 'node~1', 'UPPER', '-lead', 'x'.repeat(64), '.', '~~~', 'a'.repeat(128)])(
    'turns %j into a lower-case key of at most 63 characters',
    (id) => {
      const key = nodeKey(id);
      expect(key).toMatch(DNS_LABEL);
      expect(key.length).toBeLessThanOrEqual(63);
    },
  );

  it('keeps IDs that sanitise alike apart', () => {
    expect(nodeKey('Node_A')).not.toBe(nodeKey('node-a'));
    expect(nodeKey('node_a')).not.toBe(nodeKey('node~a'));
  });
});

describe('names', () => {
  it('prefixes names with the cluster so clusters can share a namespace', () => {
    expect(leaseName('piko', 'piko-0')).toBe('piko-node-piko-0');
    expect(shardName('piko', 'piko-0', 3)).toBe('piko-endpoints-piko-0-3');
    expect(clusterSelector('blue')).toBe('app.kubernetes.io/component=registry,piko.dev/cluster=blue');
  });
});

describe('microTime', () => {
  it('writes six fractional digits as the apiserver parses MicroTime', () => {
    expect(microTime(Date.UTC(2026, 10, 2, 10, 5, 35, 123))).toBe('2026-11-02T10:05:35.123000Z');
  });
});

describe('Lease', () => {
  it('round-trips the node, addresses, renew time and duration', () => {
    const lease = buildLease({
      cluster: 'piko',
      nodeId: 'Node_1',
      proxyAddr: '10.0.0.1:8000',
      adminAddr: '10.0.0.1:8002',
      durationMs: 2500,
      acquireTimeMs: 1_000,
      renewTimeMs: 1_700_000_000_123,
      owner: { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'u' },
    });
    expect(lease.metadata.name).toBe(`piko-node-${nodeKey('Node_1')}`);
    expect(lease.spec?.holderIdentity).toBe('Node_1');
    expect(lease.spec?.leaseDurationSeconds).toBe(3);
    expect(lease.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'u' }]);
    expect(lease.metadata.labels).toMatchObject({
      'app.kubernetes.io/name': 'piko',
      'app.kubernetes.io/component': 'registry',
      'piko.dev/cluster': 'piko',
      [LABEL_NODE]: nodeKey('Node_1'),
    });
    expect(parseLease(lease)).toEqual({
      nodeKey: nodeKey('Node_1'),
      nodeId: 'Node_1',
      proxyAddr: '10.0.0.1:8000',
      adminAddr: '10.0.0.1:8002',
      renewTimeMs: 1_700_000_000_123,
      durationMs: 3000,
    });
  });

  it('reads an unparsable renew time as never renewed (so the Lease counts as expired)', () => {
    const lease = buildLease({
      cluster: 'piko',
      nodeId: 'n',
      proxyAddr: 'a:1',
      adminAddr: 'a:2',
      durationMs: 15_000,
      acquireTimeMs: 0,
      renewTimeMs: 0,
    });
    lease.spec!.renewTime = 'yesterday';
    expect(parseLease(lease)).toBeDefined();
    expect(parseLease(lease)?.renewTimeMs).toBeUndefined();
  });

  it('ignores a Lease without our node label', () => {
    expect(parseLease({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'kube-scheduler' } })).toBeUndefined();
  });

  it('never rounds the duration down', () => {
    expect(leaseDurationSeconds(1)).toBe(1);
    expect(leaseDurationSeconds(15_000)).toBe(15);
    expect(leaseDurationSeconds(15_001)).toBe(16);
  });
});

describe('endpoint shard', () => {
  it('serialises with sorted keys so equal tables are equal strings', () => {
    const a = serializeShard(
      new Map([
        ['b', 1],
        ['a', 2],
      ]),
    );
    const b = serializeShard(
      new Map([
        ['a', 2],
        ['b', 1],
      ]),
    );
    expect(a).toBe(b);
    expect(a).toBe('{"version":1,"endpoints":{"a":2,"b":1}}');
  });

  it('round-trips through a ConfigMap, IDs with ~ included', () => {
    const json = serializeShard(new Map([['my~endpoint', 3]]));
    const cm = buildShard({ cluster: 'piko', nodeId: 'piko-0', index: 2, json });
    expect(cm.metadata.name).toBe('piko-endpoints-piko-0-2');
    expect(cm.metadata.labels?.['piko.dev/shard']).toBe('2');
    const parsed = parseShard(cm);
    expect(parsed?.index).toBe(2);
    expect(parsed?.nodeKey).toBe('piko-0');
    expect([...(parsed?.endpoints ?? [])]).toEqual([['my~endpoint', 3]]);
  });

  it.each([
    ['not json', '{'],
    ['another version', '{"version":2,"endpoints":{"a":1}}'],
    ['no table', '{"version":1}'],
  ])('reads %s as an empty table', (_, json) => {
    expect(parseShardJson(json).size).toBe(0);
  });

  it('drops counts that are not positive integers', () => {
    const table = parseShardJson('{"version":1,"endpoints":{"a":1,"b":0,"c":-1,"d":1.5,"e":"2"}}');
    expect([...table]).toEqual([['a', 1]]);
  });

  it('ignores a ConfigMap without a shard label', () => {
    const cm = buildShard({ cluster: 'piko', nodeId: 'n', index: 0, json: '{}' });
    delete cm.metadata.labels!['piko.dev/shard'];
    expect(parseShard(cm)).toBeUndefined();
  });
});
