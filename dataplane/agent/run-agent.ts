import type { AgentConfig } from '../config/agent-config';
import { createLogger, type Logger } from '../log/logger';
import { Agent, type AgentError } from './agent';
import { onShutdownSignal } from '../process/signals';

export interface RunAgentDeps {
  /** Built from `config.log` when absent. */
  logger?: Logger;
  /** Stops the agent like a first SIGTERM (for embedding and tests). */
  stop?: AbortSignal;
}

/**
 * `piko agent`: runs until SIGINT or SIGTERM, then shuts down gracefully
 * within `grace_period`; a second signal cuts everything at once. Rejects
 * when a listener cannot connect at start-up or is refused for good later,
 * as Piko's agent exits with an error then.
 */
export async function runAgent(config: AgentConfig, deps: RunAgentDeps = {}): Promise<void> {
  const logger = deps.logger ?? createLogger({ level: config.log.level, subsystems: config.log.subsystems, format: config.log.format });
  const log = logger.child({ subsystem: 'main' });
  const agent = new Agent(config, { logger });
  const stop = new AbortController();
  let failure: AgentError | undefined;

  agent.on('error', (err) => {
    failure ??= err;
    stop.abort(err);
  });
  const removeSignalHandlers = onShutdownSignal((signal, count) => {
    if (count === 1) {
      log.info('received shutdown signal', { signal });
      stop.abort(new Error(signal));
    } else {
      log.warn('received a second shutdown signal; stopping now', { signal });
      agent.destroy();
    }
  });

  const onStop = (): void => stop.abort(new Error('stopped'));
  deps.stop?.addEventListener('abort', onStop, { once: true });
  if (deps.stop?.aborted) onStop();

  try {
    log.info('starting piko agent', { listeners: config.listeners.length });
    try {
      await agent.start(stop.signal);
    } catch (err) {
      // A signal during start-up is a request to stop, not a failure.
      if (stop.signal.aborted && failure === undefined) {
        log.info('stopped during start-up');
        return;
      }
      throw err;
    }
    if (!stop.signal.aborted) {
      await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    await agent.shutdown();
    if (failure) throw failure;
  } finally {
    removeSignalHandlers();
    deps.stop?.removeEventListener('abort', onStop);
  }
}
