// typescript-eslint's recommended rules over every TypeScript tree; `make lint` runs it, and `make test` runs `make lint`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // tsc's noUnusedLocals/noUnusedParameters already rule on these, with `_` for the deliberate ones.
      '@typescript-eslint/no-unused-vars': 'off',
    },
  },
);
