// Lint: `npm run lint` (part of `npm test`). Type-checked rules run on everything tsconfig.json covers.
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * A folder of src/ is entered through its index.ts. The exception: modules that load the S3 SDK are imported
 * directly, only from modules that are themselves loaded lazily (see docs/architecture.md).
 */
const THROUGH_INDEX = '^(\\.\\./)+(?!storage/(lifecycle|s3)\\.js$)[a-z-]+/(?!index\\.js$)[^/]+$';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      '.tokenize-wiki/**',
      'src/tokenize/native/target/**',
      'bench/results/**',
      'apps/**',
      'clusters/**',
      'infrastructure/**',
      'argocd/**',
      'images/**',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.config.ts', '*.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports' },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Off: an async method that implements a Promise-returning interface needs no await (and turns a throw into a rejection).
      '@typescript-eslint/require-await': 'off',
      // A variable a callback reads before its one assignment cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      'import-x/no-cycle': 'error',
      'import-x/no-duplicates': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: THROUGH_INDEX,
              message: 'import another folder of src/ through its index.ts (docs/architecture.md)',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Off in tests: vitest's asymmetric matchers (expect.any, expect.stringMatching) and parsed fixtures are typed any.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly', console: 'readonly' } },
  },
);
