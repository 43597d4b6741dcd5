import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    // Fails a file whose process is wedged (its main thread blocked for minutes) instead of hanging the run.
    setupFiles: ['test/harness/stall-watchdog.ts', 'test/harness/secret.ts'],
    reporters: ['default', './test/harness/engines-reporter.ts'],
    // Each file opens its own PGlite (~2 s, ~700 MB) and scratch PostgreSQL database.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
  },
})
