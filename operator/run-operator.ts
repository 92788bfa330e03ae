/** `piko operator`: runs one operator replica until SIGTERM/SIGINT. */
import { FIELD_MANAGER } from './field-manager';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from '../dataplane/config/errors';
import type { OperatorConfig } from './operator-config';
import { createLogger, type Logger } from '../dataplane/log/logger';
import { createMetricsRegistry } from '../dataplane/metrics/registry';
import { shutdownSignal } from '../dataplane/process/signals';
import { Operator } from './operator';
import { ClientNodeKubeClient, loadKubeConfig } from '../dataplane/kube/client-node';
import { HttpEndpoints, metricsRoutes, probeRoutes } from './runtime/http-endpoints';

export interface RunOperatorDeps {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Resolves when the operator should stop; the first SIGTERM or SIGINT by default. */
  stopSignal?: Promise<unknown>;
  /** Told the bound addresses once the servers listen (tests bind port 0). */
  onListening?: (addrs: { metrics?: string; health: string; webhook?: string }) => void;
}

export async function runOperator(config: OperatorConfig, deps: RunOperatorDeps = {}): Promise<void> {
  const env = deps.env ?? process.env;
  const logger = deps.logger ?? createLogger({ level: config.log.level, subsystems: config.log.subsystems, format: config.log.format });
  const client = new ClientNodeKubeClient(kubeConfig(config.kubeconfig), { fieldManager: FIELD_MANAGER });
  const stop = deps.stopSignal ?? shutdownSignal();
  const registry = createMetricsRegistry();
  // client-go's identity: the host (the pod, in a cluster) and a random part, unique per process.
  const identity = `${env['POD_NAME'] || hostname()}_${randomUUID()}`;
  const operator = new Operator({
    client,
    namespaces: config.namespaces,
    defaultImage: config.defaultImage,
    tokenReviewerClusterRole: config.tokenReviewerClusterRole,
    operatorNamespace: config.leaderElectionNamespace,
    logger,
    metricsRegistry: registry,
    leaderElection: config.leaderElect
      ? {
          namespace: config.leaderElectionNamespace,
          ...(env['POD_NAME'] && env['POD_UID'] ? { pod: { name: env['POD_NAME'], uid: env['POD_UID'] } } : {}),
        }
      : false,
    identity,
  });
  const metrics = config.metricsBindAddr === '0' ? undefined : new HttpEndpoints(metricsRoutes(registry), logger);
  const probes = new HttpEndpoints(
    probeRoutes(() => operator.notReady()),
    logger,
  );
  const injector =
    config.webhook.bindAddr === ''
      ? undefined
      : // eslint-disable-next-line @typescript-eslint/no-require-imports
        new (require('./webhook/sidecar-injector') as typeof import('./webhook/sidecar-injector')).SidecarInjector({
          config: config.webhook,
          namespace: config.leaderElectionNamespace,
          client,
          lookup: (namespace, name) => operator.controller.pikoCluster(namespace, name),
          notReady: () => operator.controller.notReady(),
          defaultImage: config.defaultImage,
          logger: logger.child({ subsystem: 'webhook' }),
          metricsRegistry: registry,
        });
  try {
    const metricsAddr = await metrics?.start(config.metricsBindAddr, '--metrics-bind-addr');
    const healthAddr = await probes.start(config.healthBindAddr, '--health-bind-addr');
    // Every replica serves admissions, the standbys too: the Service spreads them over all.
    operator.start();
    const webhookAddr = await injector?.start();
    deps.onListening?.({
      ...(metricsAddr === undefined ? {} : { metrics: `${metricsAddr.address}:${metricsAddr.port}` }),
      health: `${healthAddr.address}:${healthAddr.port}`,
      ...(webhookAddr === undefined ? {} : { webhook: `${webhookAddr.address}:${webhookAddr.port}` }),
    });
    logger.info('operator started', {
      identity,
      namespaces: config.namespaces.length > 0 ? config.namespaces : '(all)',
      leaderElect: config.leaderElect,
      defaultImage: config.defaultImage,
    });
    const received = await stop;
    logger.info('received signal', { signal: String(received) });
    // Drain and release the Lease first, so a standby takes over at once;
    // the probe server goes last, so the kubelet sees us alive until then.
    await operator.stop({ releaseLease: true });
  } finally {
    await injector?.close();
    await client.close();
    await metrics?.close();
    await probes.close();
  }
}

function kubeConfig(path: string): ReturnType<typeof loadKubeConfig> {
  const where = path === '' ? 'the default kubeconfig' : path;
  let kc: ReturnType<typeof loadKubeConfig>;
  try {
    kc = loadKubeConfig(path || undefined);
  } catch (err) {
    throw new ConfigError(`kubeconfig: cannot load ${where}: ${err instanceof Error ? err.message : String(err)}`, {
      path: 'kubeconfig',
      cause: err,
    });
  }
  if (kc.getCurrentCluster() === null) throw new ConfigError(`kubeconfig: ${where} names no current cluster`, { path: 'kubeconfig' });
  return kc;
}
