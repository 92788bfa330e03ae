/**
 * Upstreams authenticated by their ServiceAccount: tokens minted by a real apiserver's
 * TokenRequest API, for the cluster's audience, verified by the server with TokenReview under a
 * Role that grants exactly `create` on `tokenreviews`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { SignJWT } from 'jose';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { connectRawUpstream, type RawUpstream } from '../../helpers/raw-upstream';
import { startControlPlane, type ControlPlane } from '../../k8s/control-plane';
import { serviceAccountAudience } from '../../../dataplane/auth/service-account-audience';

const START_TIMEOUT_MS = 60 * 60 * 1000;
const AUDIENCE = serviceAccountAudience('piko-system', 'piko');
const UPSTREAM_SECRET = 'upstream-secret-0123456789abcdef';
const SERVER_NS = 'sa-auth-server';

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let rbac: k8s.RbacAuthorizationV1Api;
let dir: string;
const upstreams: RawUpstream[] = [];

async function serviceAccount(namespace: string, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
}

/** A token as the kubelet projects it: from TokenRequest, for `audience`, ten minutes long (the API's minimum). */
async function tokenFor(namespace: string, name: string, audience = AUDIENCE): Promise<string> {
  const res = await core.createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { spec: { audiences: [audience], expirationSeconds: 600 } },
  });
  const token = res.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  return token;
}

function configFile(name: string, yaml: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, yaml);
  return file;
}

const RULES = `upstream:
  service_accounts:
    audience: ${AUDIENCE}
    cache_ttl: CACHE_TTL
    rules:
      - {namespace: team-a, name: web, endpoints: [web]}
      - {namespace: team-b, endpoint_prefix: b-}
`;

/** A server that may review tokens: its ServiceAccount is granted create on tokenreviews, nothing else. */
async function startServer(cacheTtl = '5m', flags: Record<string, string> = {}): Promise<TestServer> {
  return startTestServer(
    { 'upstream.auth.hmac_secret_key': UPSTREAM_SECRET, ...flags },
    { kubeconfigPath: await cp.kubeconfigForServiceAccount(SERVER_NS, 'piko') },
    { configPath: configFile(`server-${cacheTtl}.yaml`, RULES.replace('CACHE_TTL', cacheTtl)) },
  );
}

function connect(srv: TestServer, endpoint: string, token: string, body = 'ok'): Promise<RawUpstream> {
  return connectRawUpstream(srv.upstreamUrl, endpoint, (_req, res) => res.end(body), { authorization: `Bearer ${token}` }).then((u) => {
    upstreams.push(u);
    return u;
  });
}

beforeAll(async () => {
  cp = await startControlPlane();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piko-sa-auth-'));
  await serviceAccount(SERVER_NS, 'piko');
  await serviceAccount(SERVER_NS, 'no-review');
  await serviceAccount('team-a', 'web');
  await serviceAccount('team-a', 'batch');
  await serviceAccount('team-b', 'anything');
  await rbac.createClusterRole({
    body: {
      metadata: { name: 'sa-auth-token-reviewer' },
      rules: [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: 'sa-auth-token-reviewer' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sa-auth-token-reviewer' },
      subjects: [{ kind: 'ServiceAccount', namespace: SERVER_NS, name: 'piko' }],
    },
  });
}, START_TIMEOUT_MS);

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
  await stopAllTestServers();
});

afterAll(async () => {
  await cp?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('upstream authentication by ServiceAccount', () => {
  it('admits a ServiceAccount to the endpoints its rule names and routes requests to it', async () => {
    const srv = await startServer();
    await connect(srv, 'web', await tokenFor('team-a', 'web'), 'from web');
    await waitForUpstreams(srv.server.upstreams, 'web', 1);
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'web' } });
    expect(res).toMatchObject({ status: 200, body: 'from web' });
  });

  it('refuses an endpoint outside the rule, and a ServiceAccount no rule names', async () => {
    const srv = await startServer();
    await expect(connect(srv, 'api', await tokenFor('team-a', 'web'))).rejects.toThrow('401: {"error":"endpoint not permitted"}');
    await expect(connect(srv, 'web', await tokenFor('team-a', 'batch'))).rejects.toThrow('401: {"error":"endpoint not permitted"}');
    expect(srv.server.upstreams.count('web')).toBe(0);
  });

  it('admits any ServiceAccount of a namespace to the endpoints of its prefix only', async () => {
    const srv = await startServer();
    await connect(srv, 'b-orders', await tokenFor('team-b', 'anything'));
    await waitForUpstreams(srv.server.upstreams, 'b-orders', 1);
    await expect(connect(srv, 'orders', await tokenFor('team-b', 'anything'))).rejects.toThrow('401: {"error":"endpoint not permitted"}');
  });

  it("refuses a token for another audience (the apiserver's own), a forged token, and a token of a deleted ServiceAccount", async () => {
    const srv = await startServer('1s');
    await expect(connect(srv, 'web', await tokenFor('team-a', 'web', 'https://kubernetes.default.svc'))).rejects.toThrow(
      '401: {"error":"invalid token"}',
    );
    // Right audience, unsigned by the apiserver: the local decode passes it on, TokenReview refuses it.
    const forged = await new SignJWT({ sub: 'system:serviceaccount:team-a:web' })
      .setProtectedHeader({ alg: 'HS256' })
      .setAudience(AUDIENCE)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode('not the apiserver key'));
    await expect(connect(srv, 'web', forged)).rejects.toThrow('401: {"error":"invalid token"}');

    await serviceAccount('team-a', 'short-lived');
    await srv.server.shutdown(100);
    const srv2 = await startTestServer(
      { 'upstream.auth.hmac_secret_key': UPSTREAM_SECRET },
      { kubeconfigPath: await cp.kubeconfigForServiceAccount(SERVER_NS, 'piko') },
      {
        configPath: configFile(
          'server-deleted.yaml',
          RULES.replace('CACHE_TTL', '200ms').replace(
            'endpoints: [web]}',
            'endpoints: [web]}\n      - {namespace: team-a, name: short-lived, endpoints: [gone]}',
          ),
        ),
      },
    );
    const token = await tokenFor('team-a', 'short-lived');
    const first = await connect(srv2, 'gone', token);
    await first.close();
    await core.deleteNamespacedServiceAccount({ namespace: 'team-a', name: 'short-lived' });
    // Once our cached review is older than cache_ttl the apiserver is asked again; it forgets the
    // account once its own token cache (10 s of kube-apiserver's) lets go of it.
    const deadline = Date.now() + 30_000;
    let refused: unknown;
    while (refused === undefined && Date.now() < deadline) {
      refused = await connect(srv2, 'gone', token).then(
        (u) => u.close(),
        (err: unknown) => err,
      );
      if (refused === undefined) await delay(250);
    }
    expect(String(refused)).toContain('401: {"error":"invalid token"}');
  });

  it('keeps JWT keys working beside ServiceAccounts, for agents outside the cluster', async () => {
    const srv = await startServer();
    const jwt = await new SignJWT({ piko: { endpoints: ['outside'] } })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(UPSTREAM_SECRET));
    await connect(srv, 'outside', jwt);
    await waitForUpstreams(srv.server.upstreams, 'outside', 1);
    await connect(srv, 'web', await tokenFor('team-a', 'web'));
    await waitForUpstreams(srv.server.upstreams, 'web', 1);
  });

  it('answers 500 (which agents retry) when it may not review tokens, and when the apiserver is down; a cached review still admits', async () => {
    const denied = await startTestServer(
      {},
      { kubeconfigPath: await cp.kubeconfigForServiceAccount(SERVER_NS, 'no-review') },
      { configPath: configFile('server-denied.yaml', RULES.replace('CACHE_TTL', '5m')) },
    );
    await expect(connect(denied, 'web', await tokenFor('team-a', 'web'))).rejects.toThrow('upstream rejected with 500');
    await denied.stop(100);

    const srv = await startServer();
    const cached = await tokenFor('team-a', 'web');
    const fresh = await tokenFor('team-a', 'web');
    await (await connect(srv, 'web', cached)).close();
    await cp.stopApiServer();
    try {
      await expect(connect(srv, 'web', fresh)).rejects.toThrow('upstream rejected with 500');
      await connect(srv, 'web', cached);
      await waitForUpstreams(srv.server.upstreams, 'web', 1);
    } finally {
      await cp.startApiServer();
    }
  });
});
