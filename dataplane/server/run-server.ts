import type { ServerConfig } from '../config/server-config';
import { createLogger } from '../log/logger';
import { shutdownSignal } from '../process/signals';
import type { ClusterRegistry } from '../registry/cluster-registry';
import { Server } from './server';

type KubernetesRegistryModule = typeof import('../registry/kubernetes/kubernetes-registry');

/** `piko server`: runs one node until SIGTERM/SIGINT, then shuts down gracefully. */
export async function runServer(config: ServerConfig): Promise<void> {
  const logger = createLogger({ level: config.log.level, subsystems: config.log.subsystems, format: config.log.format });
  const { cluster } = config;
  const signal = shutdownSignal();
  const server = await Server.start(config, {
    logger,
    ...(cluster.registry === 'kubernetes'
      ? {
          createRegistry: ({ metricsRegistry, ...node }): ClusterRegistry => {
            // Loaded only here: the Kubernetes client costs a single node
            // tens of MiB of memory and start-up time it would never use.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const kube = require('../registry/kubernetes/kubernetes-registry') as KubernetesRegistryModule;
            return kube.createKubernetesRegistry({
              ...node,
              clusterName: cluster.name,
              // loadServerConfig refuses the kubernetes registry without a secret.
              secret: cluster.secret ?? '',
              namespace: cluster.kubernetes.namespace,
              leaseDurationMs: cluster.kubernetes.leaseDurationMs,
              renewIntervalMs: cluster.kubernetes.renewIntervalMs,
              metricsRegistry,
              logger: logger.child({ subsystem: 'registry' }),
            });
          },
        }
      : {}),
  });
  const received = await signal;
  logger.info('received signal', { signal: received });
  await server.shutdown();
}
