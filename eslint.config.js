// @ts-check
// Type-aware linting (typescript-eslint's recommendedTypeChecked): ~25 s on this codebase, affordable for
// what it catches (floating and misused promises, unsafe `any`). Each rule tuned below says why.
import js from '@eslint/js';
import graphqlPlugin from '@graphql-eslint/eslint-plugin';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // Generated types (npm run codegen, npm run example:codegen) are checked by tsc, not written by hand; the example's bundle is built.
  { ignores: ['node_modules/', '.data/', 'load/out/', '**/generated/', 'examples/web/dist/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    // The JavaScript and TypeScript rules only: the .graphql files below have a parser and rules of their own.
    files: ['**/*.{js,mjs,cjs,ts,mts,cts}'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Apollo plugin hooks, context functions and test doubles are async by contract; no-floating-promises and
      // no-misused-promises catch the promise mistakes that matter.
      '@typescript-eslint/require-await': 'off',
      // Our service objects are closures declared with method syntax (`server.close`, `http.post`): passing one on is safe, and the rule cannot tell.
      '@typescript-eslint/unbound-method': 'off',
      // `'largest' | string` names the known values for readers and editors on purpose.
      '@typescript-eslint/no-redundant-type-constituents': 'off',
      // A message about a value a type guard rejected prints it, and the value is typed `never` there.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowNever: true }],
      // `_root, _args` hold the resolver signature's positional slots; `{ secret: _dropped, ...rest }` omits a key.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['test/**'],
    rules: {
      // Tests read untyped GraphQL and SQL results and assert their shape with expect: that assertion is the check.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['eslint.config.js'], extends: [tseslint.configs.disableTypeChecked] },
  {
    // The subgraphs' SDL is what frontends read (in the explorer, in their editors, in generated types): every type,
    // field, argument, enum value and input field says what it is.
    files: ['subgraphs/*/schema.graphql'],
    languageOptions: { parser: graphqlPlugin.parser },
    plugins: { '@graphql-eslint': graphqlPlugin },
    rules: {
      '@graphql-eslint/require-description': [
        'error',
        { types: true, FieldDefinition: true, InputValueDefinition: true, EnumValueDefinition: true, DirectiveDefinition: true },
      ],
    },
  },
);
