/**
 * Builds the SDK as the npm package users install (`piko-k8s`): the compiled modules the SDK's
 * entry point reaches and nothing else, an ESM entry beside the CommonJS one, and a package.json
 * that depends on what those modules require (ws) and on nothing the server, agent or operator
 * need (the Kubernetes client, winston). Run after `tsc -p tsconfig.build.json`:
 *
 *   node dist/dataplane/client/sdk-package.js [--out dist/sdk]
 *
 * then `npm pack` (or `npm publish`) in the output directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const DIST = path.resolve(__dirname, '..', '..');
const ROOT = path.resolve(DIST, '..');
const ENTRY = path.join(DIST, 'dataplane', 'client', 'index.js');

interface RootPackage {
  version: string;
  license: string;
  description: string;
  engines: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

/** The compiled files the entry reaches, as paths relative to dist/, and the packages they require. */
export function sdkClosure(entry = ENTRY): { files: string[]; packages: string[]; typePackages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const types = new Set<string>();
  const typePackages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const source = fs.readFileSync(file, 'utf8');
    for (const [, spec] of source.matchAll(/require\("([^"]+)"\)/g)) {
      if (spec === undefined) continue;
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.endsWith('.js') ? spec : `${spec}.js`));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
    visitTypes(file.replace(/\.js$/, '.d.ts'));
  };
  // Declarations import types the code never requires (`import type`): those modules ship too.
  const visitTypes = (file: string): void => {
    if (types.has(file) || !fs.existsSync(file)) return;
    types.add(file);
    const source = fs.readFileSync(file, 'utf8');
    for (const [, spec] of source.matchAll(/(?:from |import\()['"]([^'"]+)['"]/g)) {
      if (spec === undefined || spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        typePackages.add(spec);
        continue;
      }
      const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, ''));
      if (fs.existsSync(`${target}.js`)) visit(`${target}.js`);
      else visitTypes(`${target}.d.ts`);
    }
  };
  visit(entry);
  return {
    files: [...files].map((f) => path.relative(DIST, f)).sort(),
    packages: [...packages].sort(),
    typePackages: [...typePackages].sort(),
  };
}

export function buildSdkPackage(out: string): { files: string[]; dependencies: Record<string, string> } {
  const root = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as RootPackage;
  const { files, packages, typePackages } = sdkClosure();
  fs.rmSync(out, { recursive: true, force: true });
  for (const js of files) {
    for (const file of [js, js.replace(/\.js$/, '.d.ts')]) {
      const from = path.join(DIST, file);
      if (!fs.existsSync(from)) continue;
      fs.mkdirSync(path.dirname(path.join(out, file)), { recursive: true });
      fs.copyFileSync(from, path.join(out, file));
    }
  }
  const dependencies: Record<string, string> = Object.fromEntries(
    packages.map((p) => {
      const range = root.dependencies[p];
      if (range === undefined) throw new Error(`the SDK requires ${p}, which package.json does not depend on`);
      return [p, range];
    }),
  );
  // Its declarations name ws's types: a TypeScript user type-checks them with @types/ws.
  for (const p of typePackages) {
    const types = `@types/${p}`;
    if (root.devDependencies[types] !== undefined) dependencies[types] = root.devDependencies[types];
  }
  // ESM: the same module, its exports named so `import { listen } from 'piko-k8s'` works; one
  // copy of the code, so a CommonJS and an ESM importer share one instance.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const names = Object.keys(require(ENTRY) as object).filter((n) => n !== '__esModule');
  fs.writeFileSync(
    path.join(out, 'index.mjs'),
    `import sdk from './dataplane/client/index.js';\nexport const { ${names.join(', ')} } = sdk;\n`,
  );
  fs.writeFileSync(path.join(out, 'index.d.mts'), "export * from './dataplane/client/index.js';\n");
  const pkg = {
    name: 'piko-k8s',
    version: root.version,
    description: 'Client SDK of piko-k8s: register endpoints with a Piko server (listen) and dial them (dial); wire compatible with Piko.',
    license: root.license,
    engines: root.engines,
    main: './dataplane/client/index.js',
    types: './dataplane/client/index.d.ts',
    exports: {
      '.': {
        import: { types: './index.d.mts', default: './index.mjs' },
        require: { types: './dataplane/client/index.d.ts', default: './dataplane/client/index.js' },
      },
      './package.json': './package.json',
    },
    files: ['dataplane', 'index.mjs', 'index.d.mts'],
    dependencies,
  };
  fs.writeFileSync(path.join(out, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  fs.copyFileSync(path.join(ROOT, 'docs', 'sdk.md'), path.join(out, 'README.md'));
  return { files, dependencies };
}

if (require.main === module) {
  const at = process.argv.indexOf('--out');
  const out = path.resolve(at > 0 ? process.argv[at + 1]! : path.join(DIST, 'sdk'));
  const { files, dependencies } = buildSdkPackage(out);
  process.stdout.write(`${out}: ${files.length} modules, dependencies ${JSON.stringify(dependencies)}\n`);
}
