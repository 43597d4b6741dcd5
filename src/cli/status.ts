import { readJournal } from '../migrations/journal'
import { LEGACY_MIGRATIONS_RELATION, MIGRATIONS_RELATION } from '../migrations/migrations-table'
import type { CliSql } from './connection'
import { formatTable } from './output'

/**
 * State of one migration:
 * - `applied`: recorded in the database with the same hash as the file;
 * - `changed`: recorded (same journal timestamp) but the file's hash differs — the file was edited after it ran;
 * - `pending`: newer than the last recorded migration, so `migrate` will apply it;
 * - `skipped`: not recorded, but older than the last recorded one — drizzle will never apply it.
 */
type MigrationState = 'applied' | 'changed' | 'pending' | 'skipped'

interface MigrationEntry {
  readonly tag: string
  /** The journal's `when` (ms), which drizzle records as `created_at`. */
  readonly when: number
  readonly hash: string
  readonly state: MigrationState
}

export interface MigrationStatus {
  readonly migrations: readonly MigrationEntry[]
  readonly applied: number
  readonly pending: number
  /** Rows in `callsheet_migrations.applied` that match no journal entry (a newer package ran here?). */
  readonly unknown: readonly { readonly hash: string; readonly createdAt: number }[]
  /**
   * How many of our migrations are recorded only in `drizzle.__drizzle_migrations` (a database migrated
   * before the library had a table of its own): the states above are read from those rows, and the next
   * `migrate()` copies them. 0 once adopted.
   */
  readonly legacy: number
  /** True when every migration is applied unchanged, nothing unknown is recorded, and nothing is left to adopt. */
  readonly upToDate: boolean
}

/** Compares the shipped journal with what is recorded in `callsheet_migrations.applied`. */
export async function migrationStatus(sql: CliSql): Promise<MigrationStatus> {
  const journal = readJournal()
  const ours = await recordedIn(sql, MIGRATIONS_RELATION)
  // Not adopted yet (migrated before issue 18): what the next migrate() will copy from drizzle's table.
  const legacy =
    ours.length > 0
      ? []
      : (await recordedIn(sql, LEGACY_MIGRATIONS_RELATION)).filter((r) => journal.some((j) => j.hash === r.hash))
  const recorded = ours.length > 0 ? ours : legacy
  // drizzle applies every journal entry newer than the newest recorded created_at.
  const last = recorded.reduce((max, r) => Math.max(max, r.createdAt), Number.NEGATIVE_INFINITY)
  const migrations = journal.map((entry): MigrationEntry => {
    let state: MigrationState
    if (recorded.some((r) => r.hash === entry.hash)) state = 'applied'
    else if (recorded.some((r) => r.createdAt === entry.when)) state = 'changed'
    else if (entry.when > last) state = 'pending'
    else state = 'skipped'
    return { ...entry, state }
  })
  const unknown = recorded.filter((r) => !journal.some((j) => j.hash === r.hash || j.when === r.createdAt))
  const count = (state: MigrationState) => migrations.filter((m) => m.state === state).length
  return {
    migrations,
    applied: count('applied') + count('changed'),
    pending: count('pending'),
    unknown,
    legacy: legacy.length,
    upToDate: migrations.every((m) => m.state === 'applied') && unknown.length === 0 && legacy.length === 0,
  }
}

async function recordedIn(sql: CliSql, relation: string): Promise<{ hash: string; createdAt: number }[]> {
  const [table] = await sql<{ exists: boolean }[]>`select to_regclass(${relation}) is not null as exists`
  if (table?.exists !== true) return []
  const rows = await sql.unsafe<{ hash: string; created_at: string | null }[]>(
    `select hash, created_at::text as created_at from ${relation} order by id`,
  )
  return rows.map((r) => ({ hash: r.hash, createdAt: Number(r.created_at ?? 0) }))
}

/** What `doctor` reports as wrong with the migrations (none when up to date). */
export function migrationProblems(status: MigrationStatus): string[] {
  const problems = status.migrations.filter((m) => m.state !== 'applied').map((m) => `${m.tag} ${m.state}`)
  if (status.unknown.length > 0)
    problems.push(`${status.unknown.length} recorded migration(s) not in this package's journal`)
  if (status.legacy > 0)
    problems.push(
      `${status.legacy} recorded only in ${LEGACY_MIGRATIONS_RELATION} (an older version migrated this database): run migrate to record them in ${MIGRATIONS_RELATION}`,
    )
  return problems
}

/** `callsheet-db status` as text: one row per migration, then the counts. */
export function formatMigrationStatus(status: MigrationStatus): string {
  const rows = status.migrations.map((m) => [m.state, m.tag, new Date(m.when).toISOString()])
  const unknown = status.unknown.map((u) => [
    'unknown',
    `hash ${u.hash.slice(0, 12)}…`,
    new Date(u.createdAt).toISOString(),
  ])
  const legacy =
    status.legacy === 0
      ? ''
      : `\n${status.legacy} recorded only in ${LEGACY_MIGRATIONS_RELATION} (migrated by an older version): the next migrate copies them to ${MIGRATIONS_RELATION}.`
  return `${formatTable([...rows, ...unknown], '  ')}\n\n${status.applied} applied, ${status.pending} pending${
    status.upToDate ? '' : ' — not up to date'
  }.${legacy}`
}
