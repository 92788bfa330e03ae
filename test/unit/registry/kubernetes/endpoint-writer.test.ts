import { Registry } from 'prom-client';
import { EndpointWriter } from '../../../../dataplane/registry/kubernetes/endpoint-writer';
import { KubeApiError } from '../../../../dataplane/kube/errors';
import { type ConfigMapObject } from '../../../../dataplane/registry/kubernetes/objects';
import { createKubernetesRegistryMetrics, type KubernetesRegistryMetrics } from '../../../../dataplane/registry/kubernetes/metrics';
import { buildShard, parseShard, parseShardJson, serializeShard } from '../../../../dataplane/registry/kubernetes/objects';
import { RESOURCES } from '../../../../dataplane/kube/client';
import { FakeKubeClient } from '../../kube/fake-kube-client';

const NS = 'piko-system';
import { RecordSigner } from '../../../../dataplane/registry/kubernetes/record-signature';

const FLUSH = 500;
const OWNER = { apiVersion: 'v1', kind: 'Pod', name: 'piko-0', uid: 'pod-uid' };

function published(server: FakeKubeClient): Record<string, number> {
  const out: Record<string, number> = {};
  for (const cm of server.objectsOf(RESOURCES.configMaps).values()) {
    const json = (cm as ConfigMapObject).data?.['endpoints.json'] ?? '';
    for (const [id, n] of parseShardJson(json)) out[id] = n;
  }
  return out;
}

async function writeCount(metrics: KubernetesRegistryMetrics, result?: string): Promise<number> {
  const { values } = await metrics.apiserverWritesTotal.get();
  return values
    .filter((v) => v.labels.kind === 'ConfigMap' && (result === undefined || v.labels.result === result))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('EndpointWriter', () => {
  let server: FakeKubeClient;
  let metrics: KubernetesRegistryMetrics;
  let writer: EndpointWriter;

  function makeWriter(maxShardBytes = 256 * 1024): EndpointWriter {
    return new EndpointWriter({
      signer: new RecordSigner('cluster-secret-0123456789'),
      client: server,
      namespace: NS,
      cluster: 'piko',
      nodeId: 'piko-0',
      flushIntervalMs: FLUSH,
      maxShardBytes,
      metrics,
    });
  }

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick'] });
    server = new FakeKubeClient();
    metrics = createKubernetesRegistryMetrics(new Registry());
    writer = makeWriter();
    writer.setOwner(OWNER);
  });

  afterEach(async () => {
    await writer.stop();
    jest.useRealTimers();
  });

  it('writes the first change at once and a synchronous burst as one write', async () => {
    writer.start();
    for (let i = 0; i < 100; i++) writer.set(`e${i}`, 1);
    await jest.advanceTimersByTimeAsync(0);
    expect(server.writesOf('ConfigMap')).toHaveLength(1);
    expect(Object.keys(published(server))).toHaveLength(100);
    const cm = server.objectsOf(RESOURCES.configMaps).get('piko-endpoints-piko-0-0') as ConfigMapObject;
    expect(cm.metadata.ownerReferences).toEqual([OWNER]);
  });

  it('writes at most once per flush interval under 500 changes/s, ending with the latest table', async () => {
    writer.start();
    const seconds = 10;
    for (let t = 0; t < seconds * 1000; t += 2) {
      writer.set(`e${t % 97}`, (t % 5) + 1);
      if (t % 7 === 0) writer.set(`e${(t * 3) % 97}`, 0);
      await jest.advanceTimersByTimeAsync(2);
    }
    await jest.advanceTimersByTimeAsync(FLUSH);
    const writes = await writeCount(metrics);
    expect(writes).toBeLessThanOrEqual((seconds * 1000) / FLUSH + 2);
    expect(writes).toBeGreaterThanOrEqual((seconds * 1000) / FLUSH - 1);
    expect(published(server)).toEqual(Object.fromEntries(writer.snapshot()));
    expect(writer.pending).toBe(false);
  });

  it('retries with backoff while the apiserver is down and writes the latest table when it returns', async () => {
    writer.start();
    server.down = true;
    writer.set('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    writer.set('e', 2);
    writer.set('f', 1);
    await jest.advanceTimersByTimeAsync(20_000);
    const failed = server.writesOf('ConfigMap').filter((w) => !w.ok).length;
    // 500 ms doubling: 0, 0.5, 1.5, 3.5, 7.5, 15.5 s: a handful, not one per flush interval.
    expect(failed).toBeGreaterThanOrEqual(4);
    expect(failed).toBeLessThanOrEqual(7);
    expect(await writeCount(metrics, 'error')).toBe(failed);
    server.down = false;
    await jest.advanceTimersByTimeAsync(35_000);
    expect(published(server)).toEqual({ e: 2, f: 1 });
    expect(writer.pending).toBe(false);
  });

  it('counts a 409 as a conflict and writes again', async () => {
    writer.start();
    server.failNext.set('piko-endpoints-piko-0-0', new KubeApiError('CONFLICT', 'conflict', 409));
    writer.set('e', 1);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(await writeCount(metrics, 'conflict')).toBe(1);
    expect(await writeCount(metrics, 'success')).toBe(1);
    expect(published(server)).toEqual({ e: 1 });
  });

  it('deletes a shard that empties rather than writing it empty', async () => {
    writer.start();
    writer.set('e', 1);
    await jest.advanceTimersByTimeAsync(FLUSH);
    writer.set('e', 0);
    await jest.advanceTimersByTimeAsync(FLUSH);
    expect(server.objectsOf(RESOURCES.configMaps).size).toBe(0);
    expect(server.writesOf('ConfigMap', 'delete')).toHaveLength(1);
  });

  it('deletes leftovers of an earlier run and skips an unchanged shard', async () => {
    const json = serializeShard(new Map([['kept', 1]]));
    const kept = server.put(
      RESOURCES.configMaps,
      buildShard({ namespace: NS, cluster: 'piko', nodeId: 'piko-0', index: 0, json, owner: OWNER }),
    );
    const stale = server.put(
      RESOURCES.configMaps,
      buildShard({ namespace: NS, cluster: 'piko', nodeId: 'piko-0', index: 3, json: serializeShard(new Map([['old', 1]])) }),
    );
    writer.observed(0, parseShard(kept as ConfigMapObject), kept.metadata?.resourceVersion);
    writer.observed(3, parseShard(stale as ConfigMapObject), stale.metadata?.resourceVersion);
    writer.set('kept', 1);
    writer.start();
    await jest.advanceTimersByTimeAsync(5 * FLUSH);
    expect(server.writesOf('ConfigMap')).toEqual([{ kind: 'ConfigMap', operation: 'delete', name: 'piko-endpoints-piko-0-3', ok: true }]);
    expect(published(server)).toEqual({ kept: 1 });
  });

  it('ignores echoes of its own writes', async () => {
    writer.start();
    writer.set('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    const first = server.objectsOf(RESOURCES.configMaps).get('piko-endpoints-piko-0-0') as ConfigMapObject;
    writer.set('e', 2);
    await jest.advanceTimersByTimeAsync(FLUSH);
    // The watch delivers the first write late, after the second succeeded.
    writer.observed(0, parseShard(first), first.metadata.resourceVersion);
    await jest.advanceTimersByTimeAsync(5 * FLUSH);
    expect(server.writesOf('ConfigMap')).toHaveLength(2);
    expect(published(server)).toEqual({ e: 2 });
  });

  it('rewrites a shard someone else deleted or edited', async () => {
    writer.start();
    writer.set('e', 1);
    await jest.advanceTimersByTimeAsync(FLUSH);
    server.remove(RESOURCES.configMaps, NS, 'piko-endpoints-piko-0-0');
    writer.observed(0, undefined);
    await jest.advanceTimersByTimeAsync(FLUSH);
    expect(published(server)).toEqual({ e: 1 });

    const edited = server.put(
      RESOURCES.configMaps,
      buildShard({ namespace: NS, cluster: 'piko', nodeId: 'piko-0', index: 0, json: serializeShard(new Map([['x', 9]])), owner: OWNER }),
    );
    writer.observed(0, parseShard(edited as ConfigMapObject), edited.metadata?.resourceVersion);
    await jest.advanceTimersByTimeAsync(FLUSH);
    expect(published(server)).toEqual({ e: 1 });
  });

  it('rewrites every shard when the owner changes', async () => {
    writer.start();
    writer.set('e', 1);
    await jest.advanceTimersByTimeAsync(FLUSH);
    writer.setOwner({ ...OWNER, uid: 'new-uid' });
    await jest.advanceTimersByTimeAsync(FLUSH);
    const cm = server.objectsOf(RESOURCES.configMaps).get('piko-endpoints-piko-0-0') as ConfigMapObject;
    expect(cm.metadata.ownerReferences?.[0]?.uid).toBe('new-uid');
  });

  it('grows to several shards, one write per slot, and deletes the extra ones after shrinking', async () => {
    await writer.stop();
    writer = makeWriter(300);
    writer.setOwner(OWNER);
    writer.start();
    for (let i = 0; i < 60; i++) writer.set(`endpoint-${i}`, 1);
    expect(writer.shardCount).toBeGreaterThan(2);
    const shards = writer.shardCount;
    await jest.advanceTimersByTimeAsync(0);
    expect(server.writesOf('ConfigMap')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(shards * FLUSH);
    expect(server.objectsOf(RESOURCES.configMaps).size).toBe(shards);
    expect(Object.keys(published(server))).toHaveLength(60);
    for (const cm of server.objectsOf(RESOURCES.configMaps).values()) {
      expect(Buffer.byteLength((cm as ConfigMapObject).data?.['endpoints.json'] ?? '')).toBeLessThanOrEqual(300);
    }

    for (let i = 1; i < 60; i++) writer.set(`endpoint-${i}`, 0);
    expect(writer.shardCount).toBe(1);
    await jest.advanceTimersByTimeAsync((shards + 1) * FLUSH);
    expect(published(server)).toEqual({ 'endpoint-0': 1 });
    expect(server.objectsOf(RESOURCES.configMaps).size).toBe(1);
  });

  it('stops writing after stop()', async () => {
    writer.start();
    writer.set('e', 1);
    await jest.advanceTimersByTimeAsync(0);
    await writer.stop();
    writer.set('e', 2);
    await jest.advanceTimersByTimeAsync(10 * FLUSH);
    expect(published(server)).toEqual({ e: 1 });
    await writer.deleteAll();
    expect(server.objectsOf(RESOURCES.configMaps).size).toBe(0);
  });
});
