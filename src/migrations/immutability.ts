/**
 * Shipped migrations are immutable (issue 21): once a release applied one, its file must never change,
 * because drizzle's migrator compares only timestamps and would silently leave such a database with the
 * old statements while a fresh one gets the new. migrate() refuses before anything is applied.
 * `npm test` checks the files themselves against drizzle/meta/checksums.json (scripts/migration-checksums.mjs).
 */
import { MigrationChangedError } from '../errors'
import type { JournalMigration } from './journal'
import { MIGRATIONS_RELATION, type MigrationQuery, type RecordedMigration } from './migrations-table'

/**
 * The journal's migrations whose timestamp (`when`, drizzle's `created_at`) is recorded with another
 * hash and never with their own, in journal order.
 */
export function changedMigrations(
  journal: readonly JournalMigration[],
  recorded: readonly RecordedMigration[],
): JournalMigration[] {
  return journal.filter((m) => {
    const rows = recorded.filter((r) => r.createdAt === String(m.when))
    return rows.length > 0 && !rows.some((r) => r.hash === m.hash)
  })
}

/**
 * Reads {@link MIGRATIONS_RELATION} and refuses when it records a shipped migration with another hash.
 * @returns the recorded rows, for the caller's report.
 * @throws MigrationChangedError naming the changed migrations.
 */
export async function refuseChangedMigrations(
  query: MigrationQuery,
  journal: readonly JournalMigration[],
): Promise<RecordedMigration[]> {
  const recorded = await query<RecordedMigration>(
    `select hash, created_at::text as "createdAt" from ${MIGRATIONS_RELATION} order by id`,
  )
  const changed = changedMigrations(journal, recorded)
  if (changed.length > 0) {
    const tags = changed.map((m) => m.tag)
    throw new MigrationChangedError(
      `refusing to migrate: ${MIGRATIONS_RELATION} records ${tags.join(', ')} with another hash than the ` +
        `shipped ${tags.length === 1 ? 'file' : 'files'} (changed after it was applied). Shipped migrations are ` +
        `immutable: this package's drizzle/ was edited, or a build changed a released migration. Nothing was applied.`,
      tags,
    )
  }
  return recorded
}
