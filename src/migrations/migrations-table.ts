/**
 * Where the library records its own migrations, and the two steps around drizzle's migrator that make
 * that record trustworthy: adopting the rows an older version left in drizzle's default table, and
 * refusing to report success while a shipped migration is not recorded.
 *
 * Why a table of our own: drizzle's migrator applies only the journal entries newer than the newest
 * `created_at` in its table. An app whose drizzle-kit migrations use the default table
 * (`drizzle.__drizzle_migrations`) shares it with us, and after the app's newer rows ours were silently
 * skipped. Why the schema `callsheet_migrations` and not `callsheet_private`: the distribution rules
 * (src/distribution/citus-shape.ts) classify every table in `public` and `callsheet_private`, and this
 * table is a coordinator-local bookkeeping table, like drizzle's own; a schema of its own keeps it out of
 * both the app's drizzle-kit (which looks at `public` by default) and those rules. Only the owner that
 * runs migrate() may use it: PUBLIC (hence the app role) is revoked on the schema and the table.
 */
import { MigrationError, MigrationsNotAppliedError } from '../errors'
import type { JournalMigration } from './journal'

/** The schema of the library's migrations table. */
export const MIGRATIONS_SCHEMA = 'callsheet_migrations'
/** The library's migrations table (drizzle's layout: id, hash, created_at), in {@link MIGRATIONS_SCHEMA}. */
export const MIGRATIONS_TABLE = 'applied'
/** The qualified name, for SQL and messages. */
export const MIGRATIONS_RELATION = `${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`
/** Where versions before issue 18 recorded our migrations (drizzle's default, possibly shared with the app). */
export const LEGACY_MIGRATIONS_RELATION = 'drizzle.__drizzle_migrations'

/** A connection (or transaction) that runs one statement with positional parameters. */
export type MigrationQuery = <T>(text: string, params?: unknown[]) => Promise<T[]>

/** A row of drizzle's migrations table; `created_at` as text (it is a bigint). */
export interface RecordedMigration {
  readonly hash: string
  readonly createdAt: string | null
}

/**
 * The rows of ours to copy from the legacy table: the journal's migrations, in order, whose hash it
 * records (other rows are the app's and stay out). They must be contiguous from the first migration;
 * otherwise, or when a journal entry's timestamp is recorded with another hash (the file changed after
 * it ran), what was applied cannot be told, and this refuses rather than guess.
 *
 * @throws MigrationError naming the migrations in question.
 */
export function planAdoption(
  journal: readonly JournalMigration[],
  legacy: readonly RecordedMigration[],
): { hash: string; createdAt: string }[] {
  const index = new Map(journal.map((m, i) => [m.hash, i]))
  const found = new Map<number, RecordedMigration>()
  for (const row of legacy) {
    const i = index.get(row.hash)
    if (i !== undefined && !found.has(i)) found.set(i, row)
  }
  const gaps = journal.filter((_, i) => !found.has(i) && i < Math.max(-1, ...found.keys()))
  if (gaps.length > 0) {
    const recorded = [...found.keys()].sort((a, b) => a - b).map((i) => journal[i]?.tag)
    throw new MigrationError(
      `${LEGACY_MIGRATIONS_RELATION} records ${recorded.join(', ')} of this package's migrations but not ` +
        `${gaps.map((m) => m.tag).join(', ')} before them: cannot tell what was applied. Once you know, insert ` +
        `the applied ones' (hash, created_at) rows into ${MIGRATIONS_RELATION} and run migrate() again.`,
    )
  }
  const changed = journal.filter(
    (m, i) => !found.has(i) && legacy.some((r) => r.createdAt === String(m.when) && r.hash !== m.hash),
  )
  if (changed.length > 0)
    throw new MigrationError(
      `${LEGACY_MIGRATIONS_RELATION} records ${changed.map((m) => m.tag).join(', ')} with a different hash ` +
        `(the file changed after it ran?): cannot tell what was applied. Once you know, insert the applied ` +
        `ones' (hash, created_at) rows into ${MIGRATIONS_RELATION} and run migrate() again.`,
    )
  return [...found.entries()]
    .sort(([a], [b]) => a - b)
    .map(([i, row]) => ({ hash: row.hash, createdAt: row.createdAt ?? String(journal[i]?.when) }))
}

/**
 * Creates {@link MIGRATIONS_RELATION} when absent, owner only. Outside any transaction, as drizzle's
 * migrator creates its table (Citus propagates CREATE SCHEMA; a multi-statement transaction needs not).
 */
export async function ensureMigrationsTable(query: MigrationQuery): Promise<void> {
  const [schema] = await query<{ exists: boolean }>(
    'select exists (select 1 from pg_catalog.pg_namespace where nspname = $1) as exists',
    [MIGRATIONS_SCHEMA],
  )
  if (schema?.exists !== true) {
    await query(`create schema if not exists ${MIGRATIONS_SCHEMA}`)
    await query(`revoke all on schema ${MIGRATIONS_SCHEMA} from public`)
  }
  const [table] = await query<{ exists: boolean }>(`select to_regclass($1) is not null as exists`, [
    MIGRATIONS_RELATION,
  ])
  if (table?.exists !== true) {
    // drizzle's own layout, so that its migrator finds the table it would have created.
    await query(
      `create table if not exists ${MIGRATIONS_RELATION} (id serial primary key, hash text not null, created_at bigint)`,
    )
    await query(`revoke all on table ${MIGRATIONS_RELATION} from public`)
  }
}

/**
 * When {@link MIGRATIONS_RELATION} (see {@link ensureMigrationsTable}) holds nothing, copies our rows from
 * {@link LEGACY_MIGRATIONS_RELATION} (see {@link planAdoption}), leaving that table as it is. Run it in
 * one transaction, under the migration lock.
 *
 * @returns how many rows were copied.
 */
export async function adoptLegacyRecords(query: MigrationQuery, journal: readonly JournalMigration[]): Promise<number> {
  const [ours] = await query<{ n: number }>(`select count(*)::int as n from ${MIGRATIONS_RELATION}`)
  if ((ours?.n ?? 0) > 0) return 0
  const [legacyTable] = await query<{ exists: boolean }>(`select to_regclass($1) is not null as exists`, [
    LEGACY_MIGRATIONS_RELATION,
  ])
  if (legacyTable?.exists !== true) return 0
  const legacy = await query<RecordedMigration>(
    `select hash, created_at::text as "createdAt" from ${LEGACY_MIGRATIONS_RELATION} order by id`,
  )
  const rows = planAdoption(journal, legacy)
  for (const row of rows)
    await query(`insert into ${MIGRATIONS_RELATION} (hash, created_at) values ($1, $2::bigint)`, [
      row.hash,
      row.createdAt,
    ])
  return rows.length
}

/** The journal's migrations whose hash is not among `recorded`, in journal order. */
export function missingMigrations(
  journal: readonly JournalMigration[],
  recorded: Iterable<string>,
): JournalMigration[] {
  const hashes = new Set(recorded)
  return journal.filter((m) => !hashes.has(m.hash))
}

/**
 * After drizzle's migrator: every migration of `journal` must be recorded in `relation` (ours by default;
 * an app's with `appMigrationsFolder`).
 * @throws MigrationsNotAppliedError naming those that are not.
 */
export async function verifyApplied(
  query: MigrationQuery,
  journal: readonly JournalMigration[],
  relation: string = MIGRATIONS_RELATION,
  whose = "this package's",
): Promise<void> {
  const rows = await query<{ hash: string }>(`select hash from ${relation}`)
  const missing = missingMigrations(
    journal,
    rows.map((r) => r.hash),
  )
  if (missing.length === 0) return
  const tags = missing.map((m) => m.tag)
  throw new MigrationsNotAppliedError(
    `migrate() ran, but ${tags.length} of ${whose} migrations are not recorded in ` +
      `${relation} (${tags.join(', ')}): drizzle's migrator applies only migrations newer than the ` +
      `newest recorded one, so a row dated later than them hides them. Compare the table with the journal ` +
      `(\`callsheet-db status\`) before changing anything.`,
    tags,
  )
}
