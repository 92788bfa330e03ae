import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The package version. The package.json is found by walking up from this
 * file, because the file runs from dataplane/cli (ts-node, tests) and from
 * dist/dataplane/cli (the build) at different depths.
 */
export function packageVersion(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'piko-k8s' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No readable package.json at this level; keep walking up.
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
