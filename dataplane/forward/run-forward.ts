import { onShutdownSignal } from '../process/signals';
import type { ForwardConfig } from '../config/forward-config';
import { createLogger, type Logger } from '../log/logger';
import { Forwarder } from './forwarder';

export interface RunForwardDeps {
  /** Built from `config.log` when absent. */
  logger?: Logger;
  /** Stops forwarding like SIGTERM (for embedding and tests). */
  stop?: AbortSignal;
}

/**
 * `piko forward`: listens on the configured ports until SIGINT or SIGTERM,
 * then stops listening and closes the forwarded connections, as Piko does.
 */
export async function runForward(config: ForwardConfig, deps: RunForwardDeps = {}): Promise<void> {
  const logger = deps.logger ?? createLogger({ level: config.log.level, subsystems: config.log.subsystems, format: config.log.format });
  const log = logger.child({ subsystem: 'main' });
  const forwarder = new Forwarder(config, { logger });
  let onStop!: () => void;
  const stopped = new Promise<void>((resolve) => (onStop = resolve));
  const removeSignalHandlers = onShutdownSignal((signal) => {
    log.info('received shutdown signal', { signal });
    onStop();
  });
  deps.stop?.addEventListener('abort', onStop, { once: true });
  if (deps.stop?.aborted) onStop();
  try {
    await forwarder.start();
    await stopped;
  } finally {
    removeSignalHandlers();
    deps.stop?.removeEventListener('abort', onStop);
    await forwarder.close();
  }
}
