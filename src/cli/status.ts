import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { migrationsFolder } from '../migrations/migrations-folder'
import type { CliSql } from './connection'

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
  /** Rows in `drizzle.__drizzle_migrations` that match no journal entry (a newer package ran here?). */
  readonly unknown: readonly { readonly hash: string; readonly createdAt: number }[]
  /** True when every migration is applied unchanged and nothing unknown is recorded. */
  readonly upToDate: boolean
}

interface JournalFile {
  entries: { tag: string; when: number }[]
}

/** The journal entries with the hash drizzle computes for each (sha256 of the whole .sql file). */
export function readJournal(folder = migrationsFolder()): { tag: string; when: number; hash: string }[] {
  const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as JournalFile
  return journal.entries.map((entry) => {
    const text = readFileSync(join(folder, `${entry.tag}.sql`)).toString()
    return { tag: entry.tag, when: entry.when, hash: createHash('sha256').update(text).digest('hex') }
  })
}

/** Compares the shipped journal with what drizzle recorded in `drizzle.__drizzle_migrations`. */
export async function migrationStatus(sql: CliSql): Promise<MigrationStatus> {
  const journal = readJournal()
  const [table] = await sql<{ exists: boolean }[]>`
    select to_regclass('drizzle.__drizzle_migrations') is not null as exists`
  const recorded = table?.exists
    ? (
        await sql<{ hash: string; created_at: string | null }[]>`
        select hash, created_at::text as created_at from drizzle.__drizzle_migrations order by id`
      ).map((r) => ({
        hash: r.hash,
        createdAt: Number(r.created_at ?? 0),
      }))
    : []
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
    upToDate: migrations.every((m) => m.state === 'applied') && unknown.length === 0,
  }
}
