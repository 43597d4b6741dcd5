import js from '@eslint/js'
import importX from 'eslint-plugin-import-x'
import globals from 'globals'
import tseslint from 'typescript-eslint'

/**
 * The layers of src/, lowest first. A file may import from its own layer and the layers before it, never
 * after (docs/ARCHITECTURE.md draws the diagram). index.ts, the package entry, sits above them all.
 */
const LAYERS = [
  'errors',
  'support',
  'schema',
  'engine',
  'migrations',
  'distribution',
  'routing',
  'unit-of-work',
  'repositories',
  'audit',
  'ingest',
  'monitoring',
  'client',
  'testing',
  'cli',
]

const layerZones = LAYERS.slice(0, -1).map((layer, i) => ({
  target: `./src/${layer}`,
  from: [...LAYERS.slice(i + 1).map((above) => `./src/${above}`), './src/index.ts'],
  message: `src/${layer}/ is below ${LAYERS.slice(i + 1).join(', ')} (see docs/ARCHITECTURE.md): import downward only.`,
}))

export default tseslint.config(
  { ignores: ['dist/**', 'drizzle/**', 'node_modules/**', 'coverage/**', 'scripts/scratch/**', 'docs/api/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver': { node: { extensions: ['.ts', '.js'] } },
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: layerZones }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    // Type-aware rules for the library: a promise is awaited, returned or explicitly voided, never dropped
    // (a dropped query promise is a write that may run outside its unit of work).
    files: ['src/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/only-throw-error': [
        'error',
        { allowRethrowing: true, allowThrowingUnknown: true, allowThrowingAny: true },
      ],
      '@typescript-eslint/prefer-promise-reject-errors': [
        'error',
        { allowThrowingUnknown: true, allowThrowingAny: true },
      ],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // The promises' own rules. The tenant is entered by ONE statement (engine/settings-statement.ts): no other
    // file may spell its settings or functions. Drivers are the engine's business: other layers get a Db.
    files: ['src/**/*.ts'],
    ignores: ['src/engine/settings-statement.ts', 'src/schema/columns.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'Literal[value=/callsheet_enter_(tenant|organization)|app\\.(organization_id|tenant_proof|actor_id|api_key_id|request_id)/]',
          message:
            'Tenant settings are written only by src/engine/settings-statement.ts (settingsSql / settingsStatement).',
        },
        {
          selector:
            'TemplateElement[value.raw=/callsheet_enter_(tenant|organization)|app\\.(organization_id|tenant_proof|actor_id|api_key_id|request_id)/]',
          message:
            'Tenant settings are written only by src/engine/settings-statement.ts (settingsSql / settingsStatement).',
        },
        {
          selector: "BinaryExpression[operator='instanceof'][right.name='PGlite']",
          message: 'instanceof fails across two copies of a package: use isPGlite() (engine/pglite/is-pglite.ts).',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/engine/**', 'src/migrations/**', 'src/distribution/**', 'src/cli/connection.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['postgres', '@electric-sql/pglite', 'drizzle-orm/postgres-js', 'drizzle-orm/pglite'].map((name) => ({
            name,
            allowTypeImports: true,
            message: 'Only src/engine/ talks to a driver; other layers run SQL through a unit of work (Db).',
          })),
        },
      ],
    },
  },
)
