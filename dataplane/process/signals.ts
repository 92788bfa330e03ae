/**
 * Resolves on the first SIGTERM or SIGINT. A second signal while shutting
 * down exits at once: the operator (or a person at a terminal) has given up
 * on the grace period.
 */
export function shutdownSignal(onForce: () => void = () => process.exit(1)): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (received) {
        onForce();
        return;
      }
      received = true;
      resolve(signal);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}
