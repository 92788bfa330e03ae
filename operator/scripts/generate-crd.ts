/**
 * Writes crds/pikocluster.yaml and docs/crd-reference.md from operator/api.
 * `--check` writes nothing and exits 1 when a committed file differs, for CI.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GENERATED_FILES } from '../api/generated-files';

const ROOT = path.resolve(__dirname, '..', '..');

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

function main(argv: readonly string[]): number {
  const check = argv.includes('--check');
  let stale = 0;
  for (const file of GENERATED_FILES) {
    const target = path.join(ROOT, file.path);
    const text = file.render();
    if (readOrEmpty(target) === text) continue;
    if (check) {
      process.stderr.write(`${file.path} is out of date: run npm run gen:crd\n`);
      stale++;
    } else {
      writeFileSync(target, text);
      process.stdout.write(`wrote ${file.path}\n`);
    }
  }
  return stale === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
