import { KubeApiError } from '../../../dataplane/kube/errors';
import { RESOURCES, type KubeObject } from '../../../dataplane/kube/client';
import { ListWatch } from '../../../dataplane/kube/list-watch';
import { CachedInformer } from '../../../dataplane/kube/cached-informer';
import { FakeKubeClient } from './fake-kube-client';

const cm = (name: string, labels: Record<string, string> = { app: 'x' }, data: Record<string, string> = {}): KubeObject =>
  ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns', labels }, data }) as KubeObject;

/** Lets the informer's promise chains run. */
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ListWatch', () => {
  let client: FakeKubeClient;
  let seen: string[];
  let errors: unknown[];
  let listed: number;
  let lw: ListWatch<KubeObject>;

  beforeEach(() => {
    client = new FakeKubeClient();
    seen = [];
    errors = [];
    listed = 0;
    lw = new ListWatch<KubeObject>({
      client,
      type: RESOURCES.configMaps,
      namespace: 'ns',
      labelSelector: 'app=x',
      handlers: {
        upsert: (o) => seen.push(`+${o.metadata?.name}@${o.metadata?.resourceVersion}`),
        remove: (o) => seen.push(`-${o.metadata?.name}`),
        listed: () => listed++,
        error: (e) => errors.push(e),
      },
      watchTimeoutSeconds: () => 300,
    });
  });

  afterEach(async () => {
    await lw.stop();
  });

  it('lists, then watches from the list version, filtered by the selector', async () => {
    client.put(RESOURCES.configMaps, cm('a'));
    client.put(RESOURCES.configMaps, cm('other', { app: 'y' }));
    await lw.start();
    await tick();
    expect(listed).toBe(1);
    expect(seen).toEqual(['+a@101']);
    const watch = client.calls.find((c) => c.verb === 'watch');
    expect(watch).toMatchObject({ resource: 'configmaps', namespace: 'ns' });
    client.put(RESOURCES.configMaps, cm('b'));
    client.put(RESOURCES.configMaps, cm('a', { app: 'x' }, { k: 'v' }));
    client.remove(RESOURCES.configMaps, 'ns', 'b');
    expect(seen).toEqual(['+a@101', '+b@103', '+a@104', '-b']);
  });

  it('resumes a watch the server ended from the last version, without listing again', async () => {
    await lw.start();
    await tick();
    client.put(RESOURCES.configMaps, cm('a'));
    client.endWatches('configmaps');
    await tick();
    expect(client.calls.filter((c) => c.verb === 'list')).toHaveLength(1);
    expect(client.calls.filter((c) => c.verb === 'watch')).toHaveLength(2);
    expect(client.openWatches).toBe(1);
  });

  it('resumes from its resourceVersion and gets what happened while it was stopped', async () => {
    client.put(RESOURCES.configMaps, cm('a'));
    client.put(RESOURCES.configMaps, cm('b'));
    await lw.start();
    await tick();
    await lw.stop();
    client.remove(RESOURCES.configMaps, 'ns', 'b');
    client.put(RESOURCES.configMaps, cm('c'));
    await lw.start();
    await tick();
    // No relist: the watch from the last version delivered both changes.
    expect(listed).toBe(1);
    expect(seen).toEqual(['+a@101', '+b@102', '-b', '+c@104']);
    expect(errors).toEqual([]);
  });

  it('relists on 410 Gone and reports what disappeared meanwhile', async () => {
    client.put(RESOURCES.configMaps, cm('a'));
    client.put(RESOURCES.configMaps, cm('b'));
    await lw.start();
    await tick();
    // While disconnected: b is deleted and c created, and the apiserver's history no longer
    // reaches back to where the watch stopped.
    await lw.stop();
    client.remove(RESOURCES.configMaps, 'ns', 'b');
    client.put(RESOURCES.configMaps, cm('c'));
    client.compact();
    await lw.start();
    await tick();
    expect(listed).toBe(2);
    // a is unchanged and not delivered again; b is gone; c is new.
    expect(seen).toEqual(['+a@101', '+b@102', '+c@104', '-b']);
    expect(errors).toEqual([]);
    // And a watch that ends with 410 mid-stream relists too.
    client.endWatches('configmaps', new KubeApiError('GONE', 'too old resource version', 410));
    await tick();
    expect(listed).toBe(3);
    expect(seen).toEqual(['+a@101', '+b@102', '+c@104', '-b']);
  });

  it('relists after an ERROR event with code 410', async () => {
    await lw.start();
    await tick();
    client.sendWatchEvent('configmaps', { type: 'ERROR', status: { code: 410, reason: 'Expired', message: 'too old' } });
    await tick();
    expect(listed).toBe(2);
    expect(errors).toEqual([]);
  });

  it('follows bookmarks', async () => {
    await lw.start();
    await tick();
    client.sendWatchEvent('configmaps', { type: 'BOOKMARK', resourceVersion: '555' });
    client.endWatches('configmaps');
    await tick();
    expect(client.calls.filter((c) => c.verb === 'watch')).toHaveLength(2);
  });

  it('stops and reports any other failure, and start() resumes', async () => {
    client.fail('list', new KubeApiError('FORBIDDEN', 'configmaps is forbidden', 403));
    await lw.start();
    await tick();
    expect(errors).toEqual([expect.objectContaining({ code: 'FORBIDDEN' })]);
    expect(client.openWatches).toBe(0);
    await lw.start();
    await tick();
    expect(listed).toBe(1);
    expect(client.openWatches).toBe(1);
  });
});

describe('CachedInformer', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 0, doNotFake: ['setImmediate'] });
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('caches by namespace and name, calls add/update/delete, and restarts after errors with backoff', async () => {
    const client = new FakeKubeClient();
    client.put(RESOURCES.configMaps, cm('a'));
    const events: string[] = [];
    const health: boolean[] = [];
    const informer = new CachedInformer<KubeObject>({
      client,
      type: RESOURCES.configMaps,
      labelSelector: 'app=x',
      backoff: { minMs: 500, maxMs: 4_000 },
      onHealthChange: (h) => health.push(h),
    });
    informer.addHandler({
      onAdd: (o) => events.push(`add ${o.metadata?.name}`),
      onUpdate: (old, o) => events.push(`update ${old.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`),
      onDelete: (o) => events.push(`delete ${o.metadata?.name}`),
    });
    informer.start();
    await informer.synced;
    expect(informer.hasSynced).toBe(true);
    expect(informer.get('ns', 'a')?.metadata?.name).toBe('a');
    client.put(RESOURCES.configMaps, cm('a', { app: 'x' }, { k: '1' }));
    client.remove(RESOURCES.configMaps, 'ns', 'a');
    expect(events).toEqual(['add a', 'update 101->102', 'delete a']);
    expect(informer.list('ns')).toEqual([]);

    // A failing apiserver: the watch ends with an error, restarts fail too.
    client.fail('list', new KubeApiError('UNAVAILABLE', 'connection refused'), { times: 2 });
    client.endWatches('configmaps', new KubeApiError('UNAVAILABLE', 'connection reset'));
    await jest.advanceTimersByTimeAsync(0);
    expect(informer.isHealthy).toBe(false);
    const watchesBefore = client.calls.filter((c) => c.verb === 'watch').length;
    await jest.advanceTimersByTimeAsync(600);
    // Restarted from the last version: a watch, not a list.
    expect(client.calls.filter((c) => c.verb === 'watch').length).toBe(watchesBefore + 1);
    expect(informer.isHealthy).toBe(false);
    client.put(RESOURCES.configMaps, cm('b'));
    expect(informer.isHealthy).toBe(true);
    expect(health).toEqual([true, false, true]);
    await informer.stop();
  });
});
