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
