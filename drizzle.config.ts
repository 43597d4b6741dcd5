import { defineConfig } from 'drizzle-kit'

// audit_logs is partitioned, which drizzle-kit cannot express: it lives in a custom migration and is
// kept out of the tables drizzle-kit diffs (src/schema/tables.ts lists the others).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema/tables.ts',
  out: './drizzle',
  strict: true,
  verbose: true,
  entities: { roles: false },
  // The library's own migrations table (src/migrations/migrations-table.ts), so that `drizzle-kit migrate` on
  // this repository records where migrate() does, apart from any app's `drizzle.__drizzle_migrations`.
  migrations: { schema: 'callsheet_migrations', table: 'applied' },
})
