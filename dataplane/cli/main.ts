/**
 * Entry point of the `piko` binary (bin/piko runs dist/dataplane/cli/main.js).
 * The run functions are the only singletons wired here.
 */
import { runAgent } from '../agent/run-agent';
import { runForward } from '../forward/run-forward';
import { runServer } from '../server/run-server';
import { runCli } from './program';
import { packageVersion } from './version';

export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runCli(argv, {
    runServer,
    runAgent,
    runForward,
    // Loaded on demand: the Kubernetes client costs 0.4 s and 80 MB at start-up, which agents and servers do without.
    runOperator: (config) =>
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the lazy load above
      (require('../../operator/run-operator') as typeof import('../../operator/run-operator')).runOperator(config),
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
