import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from './control-plane';

const execFileAsync = promisify(execFile);

// A cold build of the binaries (first run on a machine) compiles Kubernetes: allow for it. A
// warm start takes a few seconds.
const START_TIMEOUT_MS = 60 * 60 * 1000;
const EVENT_TIMEOUT_MS = 30_000;

interface WatchEvent {
  phase: string;
  object: k8s.KubernetesObject;
}

/**
 * Resolves with the first watch event `match` accepts. Watching from a resourceVersion read
 * before the change makes the event arrive even if the change lands before the watch is open.
 * The caller awaits the promise only after making the change, so it is marked handled here: a
 * watch failing first must fail the test at that await, not as an unhandled rejection.
 */
function nextEvent(
  kc: k8s.KubeConfig,
  watchPath: string,
  query: Record<string, string>,
  match: (event: WatchEvent) => boolean,
): Promise<WatchEvent> {
  const event = watchFor(kc, watchPath, query, match);
  event.catch(() => undefined);
  return event;
}

async function watchFor(
  kc: k8s.KubeConfig,
  watchPath: string,
  query: Record<string, string>,
  match: (event: WatchEvent) => boolean,
): Promise<WatchEvent> {
  let abort: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<WatchEvent>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no matching event on ${watchPath} within ${EVENT_TIMEOUT_MS} ms`)), EVENT_TIMEOUT_MS);
      new k8s.Watch(kc)
        .watch(
          watchPath,
          query,
          (phase: string, object: k8s.KubernetesObject) => {
            if (match({ phase, object })) {
              resolve({ phase, object });
            }
          },
          (err: unknown) => reject(new Error(`watch on ${watchPath} ended before a matching event`, { cause: err })),
        )
        .then((controller) => {
          abort = controller;
        }, reject);
    });
  } finally {
    clearTimeout(timer);
    abort?.abort();
  }
}

function configMap(name: string, data: Record<string, string>, owner?: k8s.V1ConfigMap): k8s.V1ConfigMap {
  const metadata: k8s.V1ObjectMeta = { name };
  if (owner !== undefined) {
    metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: owner.metadata?.name ?? '', uid: owner.metadata?.uid ?? '' }];
  }
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata, data };
}

describe('control plane', () => {
  const namespace = `piko-cp-test-${process.pid}`;
  let cp: ControlPlane;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;

  beforeAll(async () => {
    cp = await startControlPlane({ withControllerManager: true });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    if (cp === undefined) {
      return;
    }
    // On an existing cluster the namespace must go; ours is thrown away whole.
    if (core !== undefined && !cp.canRestart) {
      await core.deleteNamespace({ name: namespace });
    }
    await cp.stop();
  });

  it('serves the admin kubeconfig to kubectl and ships helm', async () => {
    const kubectl = path.join(cp.binDir, 'kubectl');
    const ns = await execFileAsync(kubectl, [`--kubeconfig=${cp.kubeconfigPath}`, 'get', 'namespace', 'default', '-o', 'name']);
    expect(ns.stdout.trim()).toBe('namespace/default');
    const version = await execFileAsync(kubectl, [`--kubeconfig=${cp.kubeconfigPath}`, 'version', '-o', 'json']);
    const versions = JSON.parse(version.stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
    expect(versions.clientVersion.gitVersion).toBe('v1.37.2');
    expect(versions.serverVersion.gitVersion).toMatch(/^v1\.\d+\.\d+/);
    const helm = await execFileAsync(path.join(cp.binDir, 'helm'), ['version', '--short']);
    expect(helm.stdout.trim()).toMatch(/^v4\.3\.1/);
  });

  it('stores a lease and a config map and reports changes to a watch', async () => {
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = await coordination.createNamespacedLease({
      namespace,
      body: { metadata: { name: 'holder' }, spec: { holderIdentity: 'pod-a', leaseDurationSeconds: 15 } },
    });
    expect(lease.spec?.holderIdentity).toBe('pod-a');

    const created = await core.createNamespacedConfigMap({ namespace, body: configMap('watched', { a: '1' }) });
    const modified = nextEvent(
      kc,
      `/api/v1/namespaces/${namespace}/configmaps`,
      { fieldSelector: 'metadata.name=watched', resourceVersion: created.metadata?.resourceVersion ?? '' },
      (e) => e.phase === 'MODIFIED',
    );
    await core.replaceNamespacedConfigMap({
      name: 'watched',
      namespace,
      body: { ...created, data: { a: '2' } },
    });
    const event = await modified;
    expect((event.object as k8s.V1ConfigMap).data).toEqual({ a: '2' });
  });

  it('lets a service account do what its role allows and forbids the rest', async () => {
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'configmap-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
      },
    });
    await core.createNamespacedConfigMap({ namespace, body: configMap('readable', { k: 'v' }) });

    const saConfig = new k8s.KubeConfig();
    saConfig.loadFromFile(await cp.kubeconfigForServiceAccount(namespace, 'reader'));
    const saCore = saConfig.makeApiClient(k8s.CoreV1Api);
    const list = await saCore.listNamespacedConfigMap({ namespace });
    expect(list.items.map((cm) => cm.metadata?.name)).toContain('readable');

    const leases = saConfig.makeApiClient(k8s.CoordinationV1Api).listNamespacedLease({ namespace });
    await expect(leases).rejects.toMatchObject({ code: 403 });
    await expect(saCore.deleteNamespacedConfigMap({ name: 'readable', namespace })).rejects.toMatchObject({ code: 403 });
  });

  it('keeps its data across an apiserver restart', async () => {
    await core.createNamespacedConfigMap({ namespace, body: configMap('durable', { kept: 'yes' }) });
    if (!cp.canRestart) {
      // An existing cluster (PIKO_TEST_KUBECONFIG) is not ours to stop: the handle says so.
      await expect(cp.stopApiServer()).rejects.toMatchObject({ code: 'CONTROL_PLANE_RESTART_UNSUPPORTED' });
    } else {
      await cp.stopApiServer();
      await expect(core.readNamespacedConfigMap({ name: 'durable', namespace })).rejects.toThrow();
      await cp.startApiServer();
    }
    const read = await core.readNamespacedConfigMap({ name: 'durable', namespace });
    expect(read.data).toEqual({ kept: 'yes' });
  });

  it('garbage-collects an object whose owner is deleted', async () => {
    const owner = await core.createNamespacedConfigMap({ namespace, body: configMap('owner', {}) });
    const owned = await core.createNamespacedConfigMap({ namespace, body: configMap('owned', { x: 'y' }, owner) });
    const deleted = nextEvent(
      kc,
      `/api/v1/namespaces/${namespace}/configmaps`,
      { fieldSelector: 'metadata.name=owned', resourceVersion: owned.metadata?.resourceVersion ?? '' },
      (e) => e.phase === 'DELETED',
    );
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace });
    const event = await deleted;
    expect(event.object.metadata?.uid).toBe(owned.metadata?.uid);
    await expect(core.readNamespacedConfigMap({ name: 'owned', namespace })).rejects.toMatchObject({ code: 404 });
  });
});

describe('startControlPlane with PIKO_TEST_KUBECONFIG', () => {
  it(
    'rejects a kubeconfig it cannot read with a coded error',
    async () => {
      const saved = process.env['PIKO_TEST_KUBECONFIG'];
      process.env['PIKO_TEST_KUBECONFIG'] = path.join(__dirname, 'no-such-kubeconfig');
      try {
        await expect(startControlPlane()).rejects.toMatchObject({ code: 'CONTROL_PLANE_BAD_KUBECONFIG' });
      } finally {
        if (saved === undefined) {
          delete process.env['PIKO_TEST_KUBECONFIG'];
        } else {
          process.env['PIKO_TEST_KUBECONFIG'] = saved;
        }
      }
    },
    START_TIMEOUT_MS,
  );
});
