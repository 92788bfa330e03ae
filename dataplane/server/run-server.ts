import type { ServerConfig } from '../config/server-config';
import { createLogger } from '../log/logger';
import { shutdownSignal } from '../process/signals';
import type { ClusterRegistry } from '../registry/cluster-registry';
import { Server } from './server';

type KubernetesRegistryModule = typeof import('../registry/kubernetes/kubernetes-registry');

/** `piko server`: runs one node until SIGTERM/SIGINT, then shuts down gracefully. */
export async function runServer(config: ServerConfig): Promise<void> {
  const logger = createLogger({ level: config.log.level, subsystems: config.log.subsystems });
  const { cluster } = config;
  const server: Server = new Server(config, {
    logger,
    ...(cluster.registry === 'kubernetes'
      ? {
          createRegistry: (addrs): ClusterRegistry => {
            // Loaded only here: the Kubernetes client costs a single node
            // tens of MiB of memory and start-up time it would never use.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const kube = require('../registry/kubernetes/kubernetes-registry') as KubernetesRegistryModule;
            return kube.createKubernetesRegistry({
              ...addrs,
              clusterName: cluster.name,
              // loadServerConfig refuses the kubernetes registry without a secret.
              secret: cluster.secret ?? '',
              namespace: cluster.kubernetes.namespace,
              leaseDurationMs: cluster.kubernetes.leaseDurationMs,
              renewIntervalMs: cluster.kubernetes.renewIntervalMs,
              metricsRegistry: server.metricsRegistry,
              logger: logger.child({ subsystem: 'registry' }),
            });
          },
        }
      : {}),
  });
  const signal = shutdownSignal();
  await server.start();
  const received = await signal;
  logger.info('received signal', { signal: received });
  await server.shutdown();
}
