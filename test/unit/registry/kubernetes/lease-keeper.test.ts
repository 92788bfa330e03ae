import { Registry } from 'prom-client';
import type { LeaseObject } from '../../../../dataplane/registry/kubernetes/objects';
import { LeaseKeeper } from '../../../../dataplane/registry/kubernetes/lease-keeper';
import { createKubernetesRegistryMetrics } from '../../../../dataplane/registry/kubernetes/metrics';
import { parseLease } from '../../../../dataplane/registry/kubernetes/objects';
import { RESOURCES } from '../../../../dataplane/kube/client';
import { FakeKubeClient } from '../../kube/fake-kube-client';

const NS = 'piko-system';
import { RecordSigner } from '../../../../dataplane/registry/kubernetes/record-signature';

const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);

describe('LeaseKeeper', () => {
  let server: FakeKubeClient;
  let keeper: LeaseKeeper;
  let errors: number[];
  let recovered: number;

  beforeEach(() => {
    jest.useFakeTimers({ now: T0, doNotFake: ['queueMicrotask', 'nextTick'] });
    server = new FakeKubeClient();
    errors = [];
    recovered = 0;
    keeper = new LeaseKeeper({
      signer: new RecordSigner('cluster-secret-0123456789'),
      client: server,
      namespace: NS,
      cluster: 'piko',
      nodeId: 'piko-0',
      proxyAddr: '10.0.0.1:8000',
      adminAddr: '10.0.0.1:8002',
      durationMs: 15_000,
      renewIntervalMs: 5_000,
      owner: { apiVersion: 'v1', kind: 'Pod', name: 'piko-0', uid: 'pod-uid' },
      metrics: createKubernetesRegistryMetrics(new Registry()),
      onRenewError: (_, retryInMs) => errors.push(retryInMs),
      onRenewRecovered: () => recovered++,
    });
  });

  afterEach(async () => {
    await keeper.stop();
    jest.useRealTimers();
  });

  function stored(): LeaseObject {
    return server.objectsOf(RESOURCES.leases).get('piko-node-piko-0') as LeaseObject;
  }

  it('writes the Lease with the pod as owner and renews it every interval', async () => {
    const uid = await keeper.renewOnce();
    expect(uid).toBe(stored().metadata.uid);
    expect(stored().metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Pod', uid: 'pod-uid' });
    expect(parseLease(stored())?.renewTimeMs).toBe(T0);
    keeper.start();
    await jest.advanceTimersByTimeAsync(20_000);
    expect(server.writesOf('Lease')).toHaveLength(5);
    expect(parseLease(stored())?.renewTimeMs).toBe(T0 + 20_000);
    expect(stored().spec?.acquireTime).toBe('2026-11-02T10:00:00.000000Z');
  });

  it('retries a failed renewal sooner, never later than the interval, and never throws', async () => {
    await keeper.renewOnce();
    keeper.start();
    server.down = true;
    await jest.advanceTimersByTimeAsync(30_000);
    expect(errors.length).toBeGreaterThan(6);
    expect(Math.max(...errors)).toBeLessThanOrEqual(5_000);
    expect(errors[0]).toBeLessThan(1_000);
    server.down = false;
    await jest.advanceTimersByTimeAsync(5_000);
    expect(recovered).toBe(1);
    expect(parseLease(stored())?.renewTimeMs).toBeGreaterThan(T0 + 30_000);
  });

  it('deletes the Lease on release, and answers false when it is already gone', async () => {
    await keeper.renewOnce();
    await expect(keeper.release()).resolves.toBe(true);
    expect(server.objectsOf(RESOURCES.leases).size).toBe(0);
    await expect(keeper.release()).resolves.toBe(false);
  });
});
