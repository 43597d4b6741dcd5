/** The steps of migrate() once it holds the migration lock, the same on PGlite and on a server. */
import { runAppMigrations, type AppMigrations } from './app-migrations'
import { applyMigrations, type FolderMigration } from './apply-migrations'
import { refuseChangedMigrations } from './immutability'
import type { JournalMigration } from './journal'
import {
  MIGRATIONS_SCHEMA,
  MIGRATIONS_TABLE,
  adoptLegacyRecords,
  ensureMigrationsTable,
  missingMigrations,
  verifyApplied,
  type MigrationQuery,
} from './migrations-table'
import type { MigrateReport, Progress } from './progress'

/** What the steps need of the connection (PGlite, or migrate's dedicated server connection). */
export interface MigrationSession {
  readonly query: MigrationQuery
  transaction<T>(run: (query: MigrationQuery) => Promise<T>): Promise<T>
  /** Audit partitions, runtime login, key: after ours, before the app's. */
  afterOurs(): Promise<void>
}

export async function runSteps(
  session: MigrationSession,
  ours: readonly FolderMigration[],
  journal: readonly JournalMigration[],
  app: AppMigrations | undefined,
  progress: Progress,
): Promise<MigrateReport> {
  const { query } = session
  progress.report('locked')
  await ensureMigrationsTable(query)
  progress.report('adopting')
  await session.transaction((tx) => adoptLegacyRecords(tx, journal))
  // Before anything is applied: a recorded migration whose file changed since is refused.
  const before = await refuseChangedMigrations(query, journal)
  // Once verifyApplied passes every shipped migration is recorded, so those missing before are the ones applied.
  const applied = missingMigrations(
    journal,
    before.map((r) => r.hash),
  ).map((m) => m.tag)
  progress.report('applying', applied)
  await applyMigrations(session, ours, MIGRATIONS_SCHEMA, MIGRATIONS_TABLE)
  await verifyApplied(query, journal)
  progress.report('applied', applied)
  progress.report('partitions')
  await session.afterOurs()
  let appApplied: string[] = []
  if (app) {
    const [exists] = await query<{ exists: boolean }>('select to_regclass($1) is not null as exists', [app.relation])
    const recorded = exists?.exists === true ? await query<{ hash: string }>(`select hash from ${app.relation}`) : []
    appApplied = missingMigrations(
      app.journal,
      recorded.map((r) => r.hash),
    ).map((m) => m.tag)
    progress.report('app-applying', appApplied)
    const { migrationsSchema, migrationsTable } = app.config
    await runAppMigrations(app, () => applyMigrations(session, app.migrations, migrationsSchema, migrationsTable))
    await verifyApplied(query, app.journal, app.relation, "the app's")
    progress.report('app-applied', appApplied)
  }
  const warnings = await migrationWarnings(query)
  const durationMs = progress.elapsed()
  progress.report('done')
  return { applied, appApplied, durationMs, warnings }
}

/** The `similarity_op` pg_trgm installed with migration 0001, wherever its schema is. */
const SIMILARITY_OP_SQL = `select p.proleakproof as leakproof, format('%I.similarity_op(text, text)', n.nspname) as name
  from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
  join pg_catalog.pg_extension e on e.oid = d.refobjid and e.extname = 'pg_trgm'
 where p.proname = 'similarity_op'`

/** What migrated but does not work as it should (see `MigrateReport.warnings`). */
async function migrationWarnings(query: MigrationQuery): Promise<string[]> {
  const warnings: string[] = []
  for (const op of await query<{ leakproof: boolean; name: string }>(SIMILARITY_OP_SQL)) {
    if (!op.leakproof) {
      warnings.push(
        `${op.name} is not LEAKPROOF (migration 0006 needs a superuser to declare it): tenant fuzzy search ` +
          'cannot use its trigram index under row-level security and reads every row of the tenant (measured ≈ 35× ' +
          `slower at 200,000 contacts). As a superuser, run: ALTER FUNCTION ${op.name} LEAKPROOF`,
      )
    }
  }
  return warnings
}
