/**
 * Applies a drizzle-kit migrations folder — the library's and the app's — as drizzle's migrator does
 * (every journal entry newer than the newest recorded `created_at`, recorded as (sha256 of the file,
 * journal `when`)), with one addition (issue 21): a migration whose first line is
 * {@link NO_TRANSACTION_MARKER} runs outside the transaction, so that it can build an index with
 * `CREATE INDEX CONCURRENTLY` instead of blocking writes to the table for the whole build.
 *
 * Such a migration may hold only `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS …` and
 * `DROP INDEX CONCURRENTLY IF EXISTS …`, one per statement, so that running it again after a failure is
 * safe: each statement runs on its own; an index that a failed attempt left INVALID (PostgreSQL keeps
 * the catalog entry of an interrupted concurrent build) is dropped and built again; and the migration is
 * recorded only once every statement succeeded. The consecutive transactional migrations around it run
 * in one transaction each side, as drizzle runs them all.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { MigrationError } from '../errors'
import type { MigrationQuery } from './migrations-table'

/** The first line of a migration that runs outside the transaction. */
const NO_TRANSACTION_MARKER = '-- callsheet:no-transaction'

const BREAKPOINT = '--> statement-breakpoint'
const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`
const CREATE_CONCURRENTLY = new RegExp(
  String.raw`^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+(${IDENT})\s+ON\s+(?:ONLY\s+)?(${IDENT}(?:\s*\.\s*${IDENT})?)\s`,
  'i',
)
const DROP_CONCURRENTLY = new RegExp(
  String.raw`^DROP\s+INDEX\s+CONCURRENTLY\s+IF\s+EXISTS\s+${IDENT}(?:\s*\.\s*${IDENT})?\s*;?$`,
  'i',
)

/** One migration of a folder, as it will be applied. */
export interface FolderMigration {
  readonly tag: string
  /** The journal's `when`, recorded as `created_at`. */
  readonly when: number
  /** sha256 of the whole file, recorded as `hash` (drizzle's). */
  readonly hash: string
  /** The file split at drizzle-kit's breakpoints, each run as one query. */
  readonly statements: readonly string[]
  /** For a {@link NO_TRANSACTION_MARKER} migration: per statement, the index it builds (to repair). */
  readonly noTransaction?: readonly ({ readonly index: string; readonly table: string } | undefined)[]
}

/**
 * The migrations of a drizzle-kit folder, in journal order, their no-transaction statements checked.
 * @throws MigrationError naming the migration and statement that a no-transaction migration may not hold.
 */
export function readMigrationFolder(folder: string): FolderMigration[] {
  const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as {
    entries: { tag: string; when: number }[]
  }
  return journal.entries.map(({ tag, when }) => {
    const text = readFileSync(join(folder, `${tag}.sql`)).toString()
    const hash = createHash('sha256').update(text).digest('hex')
    const statements = text.split(BREAKPOINT)
    const marked = text.split(/\r?\n/, 1)[0]?.trim() === NO_TRANSACTION_MARKER
    if (!marked) {
      if (text.includes(NO_TRANSACTION_MARKER))
        throw new MigrationError(`${tag}.sql: ${NO_TRANSACTION_MARKER} must be the file's first line`)
      return { tag, when, hash, statements }
    }
    const noTransaction = statements.map((statement) => {
      const sql = withoutComments(statement)
      if (sql === '') return undefined
      const create = CREATE_CONCURRENTLY.exec(`${sql} `)
      if (create?.[1] !== undefined && create[2] !== undefined && !sql.slice(0, -1).includes(';'))
        return { index: unquote(create[1]), table: create[2] }
      if (DROP_CONCURRENTLY.test(sql)) return undefined
      throw new MigrationError(
        `${tag}.sql runs outside the transaction (${NO_TRANSACTION_MARKER}), so each of its statements must be ` +
          `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS … or DROP INDEX CONCURRENTLY IF EXISTS …, one per ` +
          `statement-breakpoint (safe to run again after a failure); found: ${sql.slice(0, 120)}`,
      )
    })
    return { tag, when, hash, statements, noTransaction }
  })
}

function withoutComments(statement: string): string {
  return statement
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n')
    .trim()
}

function unquote(ident: string): string {
  return ident.startsWith('"') ? ident.slice(1, -1).replace(/""/g, '"') : ident.toLowerCase()
}

/** What {@link applyMigrations} needs: the migration connection, and a transaction on it. */
export interface ApplySession {
  readonly query: MigrationQuery
  transaction<T>(run: (query: MigrationQuery) => Promise<T>): Promise<T>
}

/**
 * Applies the pending migrations of `migrations` (see the file comment), recording each in `relation`
 * (`"schema"."table"`, created as drizzle creates it when absent). Run it under the migration lock.
 */
export async function applyMigrations(
  session: ApplySession,
  migrations: readonly FolderMigration[],
  schema: string,
  table: string,
): Promise<void> {
  const { query } = session
  const relation = `"${schema}"."${table}"`
  await query(`create schema if not exists "${schema}"`)
  await query(`create table if not exists ${relation} (id serial primary key, hash text not null, created_at bigint)`)
  const [last] = await query<{ created_at: string | null }>(
    `select created_at::text as created_at from ${relation} order by created_at desc limit 1`,
  )
  const pending = migrations.filter((m) => last === undefined || Number(last.created_at) < m.when)
  const record = (q: MigrationQuery, m: FolderMigration) =>
    q(`insert into ${relation} ("hash", "created_at") values ($1, $2)`, [m.hash, m.when])
  let batch: FolderMigration[] = []
  const flush = async () => {
    if (batch.length === 0) return
    const run = batch
    batch = []
    await session.transaction(async (tx) => {
      for (const m of run) {
        for (const statement of m.statements) await tx(statement)
        await record(tx, m)
      }
    })
  }
  for (const m of pending) {
    if (m.noTransaction === undefined) {
      batch.push(m)
      continue
    }
    await flush()
    for (const [i, statement] of m.statements.entries()) {
      const builds = m.noTransaction[i]
      if (builds !== undefined) await dropInvalid(query, builds.index, builds.table)
      if (withoutComments(statement) !== '') await query(statement)
    }
    await record(query, m)
  }
  await flush()
}

/** An index of that name on that table that a failed concurrent build left INVALID is dropped. */
async function dropInvalid(query: MigrationQuery, index: string, table: string): Promise<void> {
  const [invalid] = await query<{ name: string }>(
    `select format('%I.%I', n.nspname, c.relname) as name
       from pg_catalog.pg_index i
       join pg_catalog.pg_class c on c.oid = i.indexrelid
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where i.indrelid = to_regclass($1) and c.relname = $2 and not i.indisvalid`,
    [table.replace(/\s*\.\s*/, '.'), index],
  )
  if (invalid !== undefined) await query(`drop index concurrently if exists ${invalid.name}`)
}

/** Whether the folder's migration `tag` runs outside the transaction (for messages). */
export function runsOutsideTransaction(folder: string, tag: string): boolean {
  try {
    return (
      readFileSync(join(folder, `${tag}.sql`), 'utf8')
        .split(/\r?\n/, 1)[0]
        ?.trim() === NO_TRANSACTION_MARKER
    )
  } catch {
    return false
  }
}
