import type { ServerConfig } from '../config/server-config';
import { createLogger } from '../log/logger';
import { shutdownSignal } from '../process/signals';
import { Server } from './server';

/** `piko server`: runs one node until SIGTERM/SIGINT, then shuts down gracefully. */
export async function runServer(config: ServerConfig): Promise<void> {
  const logger = createLogger({ level: config.log.level, subsystems: config.log.subsystems });
  const server = new Server(config, { logger });
  const signal = shutdownSignal();
  await server.start();
  const received = await signal;
  logger.info('received signal', { signal: received });
  await server.shutdown();
}
