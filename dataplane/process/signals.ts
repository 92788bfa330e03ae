export type ShutdownSignal = 'SIGINT' | 'SIGTERM';

/**
 * Calls `onSignal` on SIGINT or SIGTERM, once per signal received, so the
 * caller can shut down gracefully on the first and hard on the second.
 * Returns the function that removes the handlers again.
 */
export function onShutdownSignal(onSignal: (signal: ShutdownSignal, count: number) => void): () => void {
  let count = 0;
  const handler = (signal: ShutdownSignal): void => {
    count++;
    onSignal(signal, count);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/**
 * Resolves on the first SIGTERM or SIGINT. A second signal while shutting
 * down exits at once: the operator (or a person at a terminal) has given up
 * on the grace period.
 */
export function shutdownSignal(onForce: () => void = () => process.exit(1)): Promise<ShutdownSignal> {
  return new Promise((resolve) => {
    onShutdownSignal((signal, count) => {
      if (count === 1) resolve(signal);
      else onForce();
    });
  });
}
