// Lint: typescript-eslint's recommended type-aware rules (projectService: tsconfig.json for the sources,
// test/tsconfig.json for the tests), the house rule of no `any` at module boundaries, and the layering of DESIGN.md:
// relay/ (outside) and verifier/ (inside) never import each other; sneakernet/ and keys/ import neither.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** An import of one of these top-level folders, from anywhere below the repository root. */
const folder = (name) => `^(\\.\\./)+${name}(/|$)`;
const boundary = (files, forbidden, why) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: forbidden.map((name) => ({ regex: folder(name), message: `${why} (see DESIGN.md, Layout).` })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'vitest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      // Command bodies handed to report() are async whether or not they await, so that every command has one shape.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // vitest's asymmetric matchers (expect.any, expect.stringMatching) are typed `any` by vitest itself.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  {
    // Every failure an operator can see is an EcluseError with its code (sneakernet/errors.ts): a bare Error would
    // surface as "E_INTERNAL ... a bug". Invariants that only a bug can break throw EcluseError('E_INTERNAL', ...).
    files: ['sneakernet/**', 'keys/**', 'relay/**', 'verifier/**', 'cli/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Error'], CallExpression[callee.name='Error']",
          message: 'throw an EcluseError(code, message, context) from sneakernet/errors.ts, not a bare Error',
        },
      ],
    },
  },
  {
    // sneakernet/ and keys/ name the check that failed from one typed list (sneakernet/check-ids.ts): `checkId('...')`,
    // never a free-text string that a test or the audit log could not rely on.
    files: ['sneakernet/**', 'keys/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Error'], CallExpression[callee.name='Error']",
          message: 'throw an EcluseError(code, message, context) from sneakernet/errors.ts, not a bare Error',
        },
        {
          selector: "Property[key.name='check'] > Literal",
          message: "name the failed check with checkId('...') from sneakernet/check-ids.ts, not a free-text string",
        },
      ],
    },
  },
  boundary(
    ['relay/**'],
    ['verifier', 'cli'],
    'the export station never imports the import station or the CLI: share through sneakernet/ or keys/',
  ),
  boundary(
    ['verifier/**'],
    ['relay', 'cli'],
    'the import station never imports the export station or the CLI: share through sneakernet/ or keys/',
  ),
  boundary(
    ['keys/**'],
    ['relay', 'verifier', 'cli'],
    'keys/ is trust only: it imports sneakernet/ and nothing of the stations',
  ),
  boundary(
    ['sneakernet/**'],
    ['keys', 'relay', 'verifier', 'cli'],
    'sneakernet/ is the on-media format: it imports none of the other folders',
  ),
);
