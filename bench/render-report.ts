import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeReports, type BenchResults } from './lib/report';

/**
 * Rewrites docs/benchmarks/{README.md,results.svg} from a raw result file
 * without measuring again, e.g. after changing the report's layout.
 *
 *   ts-node --transpile-only bench/render-report.ts [bench/results/latest.json] [profile-summary.md]
 */
const root = path.resolve(__dirname, '..');
const file = process.argv[2] ?? path.join(root, 'bench', 'results', 'latest.json');
const summaryFile = process.argv[3] ?? path.join(root, 'bench', 'results', 'profile-summary.md');
const results = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults;
const profileSummary = fs.existsSync(summaryFile) ? fs.readFileSync(summaryFile, 'utf8') : undefined;
process.stdout.write(
  writeReports(results, path.join(root, 'docs', 'benchmarks'), {
    writeDocs: true,
    ...(profileSummary === undefined ? {} : { profileSummary }),
  }),
);
