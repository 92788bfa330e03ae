/**
 * Entry point of the `piko` binary (bin/piko runs dist/dataplane/cli/main.js).
 * The run functions are the only singletons wired here.
 */
import { runCli } from './program';
import { packageVersion } from './version';

export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runCli(argv, {
    // Each command loads only its own modules: a sidecar agent does without
    // the server's, and everything does without the operator's Kubernetes
    // client (0.4 s and 80 MB at start-up).
    /* eslint-disable @typescript-eslint/no-require-imports -- the lazy loads above */
    runServer: (config) => (require('../server/run-server') as typeof import('../server/run-server')).runServer(config),
    runAgent: (config) => (require('../agent/run-agent') as typeof import('../agent/run-agent')).runAgent(config),
    runForward: (config) => (require('../forward/run-forward') as typeof import('../forward/run-forward')).runForward(config),
    runOperator: (config) => (require('../../operator/run-operator') as typeof import('../../operator/run-operator')).runOperator(config),
    /* eslint-enable @typescript-eslint/no-require-imports */
    version: packageVersion(),
  });
}

if (require.main === module) {
  // `piko ... --help | head` closes stdout early; like a Go binary taking
  // SIGPIPE, stop quietly instead of crashing on an unhandled EPIPE.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  // exitCode rather than exit(): pending log writes still flush.
  void main().then((code) => {
    process.exitCode = code;
  });
}
