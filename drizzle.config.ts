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
})
