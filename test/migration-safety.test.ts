// Issue 21, parts 1 to 3: shipped migrations are immutable (a checksum check in `npm run db:check`, and
// migrate() refusing a database that recorded another hash) and linted (squawk, in `npm run db:check`),
// and migrate() is lock-aware and reports what it did.
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import { migrate, type MigrateProgress } from '../src/migrations/migrate'
import { isCallsheetDbError, type MigrationChangedError } from '../src/errors'
import { readJournal } from '../src/migrations/journal'
import { migrationsFolder } from '../src/migrations/migrations-folder'
import { MIGRATIONS_RELATION } from '../src/migrations/migrations-table'
import { changedMigrations } from '../src/migrations/immutability'
import { createScratchDatabase } from '../tools/postgres-server'
import { postgresRunner, type SqlRunner } from './harness/sql-runner'
import { freshMigrationTargets, type FreshMigrationTarget } from './support/fresh-migration-target'

const shipped = readJournal()
const tags = shipped.map((m) => m.tag)
const server = inject('postgresServer')

/** A copy of the shipped folder; `count` keeps only the first journal entries (an older release). */
function copyOfDrizzle(count = shipped.length): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-migsafe-'))
  cpSync(migrationsFolder(), dir, { recursive: true })
  const journalPath = join(dir, 'meta', '_journal.json')
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: unknown[] }
  writeFileSync(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, count) }))
  return dir
}

function checksums(...args: string[]): { status: number; output: string } {
  try {
    const out = execFileSync('node', ['scripts/migration-checksums.mjs', ...args], { encoding: 'utf8', stdio: 'pipe' })
    return { status: 0, output: out }
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string }
    return { status: e.status, output: `${e.stdout}${e.stderr}` }
  }
}

describe('the checksum check (npm run db:check)', () => {
  let dir: string
  beforeEach(() => {
    dir = copyOfDrizzle()
  })
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('passes on the committed drizzle/ and records a checksum for every shipped migration', () => {
    expect(checksums()).toMatchObject({ status: 0 })
    const recorded = JSON.parse(readFileSync(join(migrationsFolder(), 'checksums.json'), 'utf8')) as object
    expect(Object.keys(recorded)).toEqual(tags)
  })

  it('names an edited migration, and db:checksums does not paper over it', () => {
    appendFileSync(join(dir, `${tags[3]}.sql`), '\n-- an innocent-looking edit\n')
    const result = checksums(dir)
    expect(result.status).toBe(1)
    expect(result.output).toContain(
      `${tags[3]}.sql changed after it was committed; shipped migrations are immutable — revert it and add a new migration`,
    )
    expect(checksums('--record', dir).status).toBe(1)
    expect(JSON.parse(readFileSync(join(dir, 'checksums.json'), 'utf8'))).toEqual(
      JSON.parse(readFileSync(join(migrationsFolder(), 'checksums.json'), 'utf8')),
    )
  })

  it('fails on a journal entry without a checksum, and db:checksums only adds it', () => {
    const file = join(dir, 'checksums.json')
    const before = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>
    delete before[tags[tags.length - 1]!]
    writeFileSync(file, JSON.stringify(before))
    const missing = checksums(dir)
    expect(missing.status).toBe(1)
    expect(missing.output).toContain(`${tags[tags.length - 1]} has no checksum`)
    expect(missing.output).toContain('npm run db:checksums')
    expect(checksums('--record', dir)).toMatchObject({ status: 0 })
    expect(checksums(dir)).toMatchObject({ status: 0 })
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(
      JSON.parse(readFileSync(join(migrationsFolder(), 'checksums.json'), 'utf8')),
    )
  })
})

function lint(folder?: string): { status: number; output: string } {
  try {
    const args = ['scripts/migration-lint.mjs', ...(folder === undefined ? [] : [folder])]
    return { status: 0, output: execFileSync('node', args, { encoding: 'utf8', stdio: 'pipe' }) }
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string }
    return { status: e.status, output: `${e.stdout}${e.stderr}` }
  }
}

/** Adds `sql` to a copied folder as the next migration, with its journal entry. */
function addMigration(dir: string, tag: string, sql: string): void {
  writeFileSync(join(dir, `${tag}.sql`), sql)
  const journalPath = join(dir, 'meta', '_journal.json')
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { idx: number; when: number }[] }
  const last = journal.entries[journal.entries.length - 1]!
  journal.entries.push({ ...last, idx: last.idx + 1, when: last.when + 1000, tag } as never)
  writeFileSync(journalPath, JSON.stringify(journal))
}

describe('the migration lint (npm run db:lint, in db:check)', () => {
  let dir: string
  beforeEach(() => {
    dir = copyOfDrizzle()
  })
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('passes on the committed drizzle/: every exception is annotated in its migration', () => {
    const result = lint()
    expect(result, result.output).toMatchObject({ status: 0 })
    expect(result.output).toContain(`${tags.length} file(s) checked`)
  })

  it('fails on a new migration with a blocking CREATE INDEX on contacts, naming the rule and the file', () => {
    addMigration(dir, '9000_blocking_index', 'CREATE INDEX "contacts_name_idx" ON "contacts" ("name");\n')
    const result = lint(dir)
    expect(result.status).toBe(1)
    expect(result.output).toMatch(/9000_blocking_index\.sql:\d+:\d+: warning: require-concurrent-index-creation/)
  })

  it('passes the same index built CONCURRENTLY outside the transaction; the no-transaction marker needs squawk told', () => {
    const concurrent =
      '-- callsheet:no-transaction\n-- squawk-disable-assume-in-transaction\n' +
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS "contacts_name_idx" ON "contacts" ("name");\n'
    addMigration(dir, '9000_concurrent_index', concurrent)
    expect(lint(dir)).toMatchObject({ status: 0 })
    writeFileSync(
      join(dir, '9000_concurrent_index.sql'),
      concurrent.replace('-- squawk-disable-assume-in-transaction\n', ''),
    )
    const untold = lint(dir)
    expect(untold.status).toBe(1)
    expect(untold.output).toContain('not -- squawk-disable-assume-in-transaction')
  })
})

type Fresh = FreshMigrationTarget
const engines = freshMigrationTargets('cs_migsafe')

const recorded = async (db: SqlRunner) =>
  db.query<{ hash: string; created_at: string }>(
    `select hash, created_at::text from ${MIGRATIONS_RELATION} order by id`,
  )

describe.each(engines)('migrate() on %s', (_name, open) => {
  let fresh: Fresh
  beforeEach(async () => {
    fresh = await open()
  })
  afterEach(async () => {
    await fresh.close()
  })

  it('reports the migrations it applied, its phases in order, and nothing the second time', async () => {
    const events: MigrateProgress[] = []
    const report = await migrate(fresh.target, { secret: null, onProgress: (e) => events.push(e) })
    expect(report.applied).toEqual(tags)
    expect(report.appApplied).toEqual([])
    expect(report.durationMs).toBeGreaterThanOrEqual(0)
    expect(events.map((e) => e.phase)).toEqual(['locked', 'adopting', 'applying', 'applied', 'partitions', 'done'])
    expect(events.find((e) => e.phase === 'applying')?.migrations).toEqual(tags)
    const elapsed = events.map((e) => e.elapsedMs)
    expect(elapsed).toEqual([...elapsed].sort((a, b) => a - b))
    const again = await migrate(fresh.target, {
      secret: null,
      onProgress: () => {
        throw new Error('a progress callback that throws does not break the run')
      },
    })
    expect(again.applied).toEqual([])
  })

  it('refuses a database whose recorded migration differs from the shipped file, naming it, applying nothing', async () => {
    await migrate(fresh.target, { secret: null })
    const changed = shipped[5]!
    // As if 0005's file had been edited after this database applied it; and a pending migration to show
    // that nothing is applied either.
    await fresh.db.query(`update ${MIGRATIONS_RELATION} set hash = $1 where created_at = $2`, [
      'c'.repeat(64),
      String(changed.when),
    ])
    await fresh.db.query(`delete from ${MIGRATIONS_RELATION} where hash = $1`, [shipped[shipped.length - 1]!.hash])
    const before = await recorded(fresh.db)
    const error = await migrate(fresh.target, { secret: null }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isCallsheetDbError(error, 'MIGRATION_CHANGED'), String(error)).toBe(true)
    expect((error as MigrationChangedError).changed).toEqual([changed.tag])
    expect((error as Error).message).toContain(changed.tag)
    expect(await recorded(fresh.db)).toEqual(before)
  })

  it('validates lockTimeoutMs before connecting', async () => {
    for (const lockTimeoutMs of [-1, 1.5, Number.NaN, 86_400_001])
      await expect(migrate(fresh.target, { lockTimeoutMs })).rejects.toSatisfy((e) =>
        isCallsheetDbError(e, 'INVALID_CONFIGURATION'),
      )
    // Accepted (and, on PGlite, ignored: a single session waits for no lock).
    await migrate(fresh.target, { secret: null, lockTimeoutMs: 0 })
  })
})

it('changedMigrations: a journal timestamp recorded only with another hash', () => {
  const row = (i: number, hash = shipped[i]!.hash) => ({ hash, createdAt: String(shipped[i]!.when) })
  expect(changedMigrations(shipped, [row(0), row(1)])).toEqual([])
  expect(changedMigrations(shipped, [row(0), row(1, 'd'.repeat(64))]).map((m) => m.tag)).toEqual([tags[1]])
  expect(changedMigrations(shipped, [{ hash: 'e'.repeat(64), createdAt: '4102444800000' }])).toEqual([])
})

if (server) {
  it('a migration waiting behind a long transaction on contacts fails fast and retryably, applying nothing; then succeeds [postgres]', async () => {
    // An older release, before 0015 (which alters contacts), as drizzle's own migrator left it.
    const upTo = tags.findIndex((t) => t.startsWith('0015_'))
    expect(upTo).toBeGreaterThan(0)
    const scratch = await createScratchDatabase(server.adminUrl, 'cs_migsafe_lock')
    const sql = postgres(scratch.url, { max: 2, onnotice: () => {} })
    const older = copyOfDrizzle(upTo)
    try {
      await migratePostgres(drizzlePostgres(sql), { migrationsFolder: older })
      const holder = await sql.reserve()
      try {
        await holder`begin`
        await holder`lock table contacts in access share mode`
        const events: MigrateProgress[] = []
        const error = await migrate(scratch.url, {
          secret: null,
          lockTimeoutMs: 200,
          onProgress: (e) => events.push(e),
        }).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(isCallsheetDbError(error, 'MIGRATION_LOCK_TIMEOUT'), String(error)).toBe(true)
        expect((error as { retryable: boolean }).retryable).toBe(true)
        // The statement that waited, and the migration it belongs to.
        expect((error as Error).message).toContain(`while applying ${tags[upTo]} (statement: ALTER TABLE "contacts"`)
        expect((error as Error).message).toContain('none of the pending migrations was applied')
        expect(events.at(-1)?.phase).toBe('applying')
        // Only the older release's records, copied from drizzle's table; nothing of 0015 on.
        expect((await recorded(postgresRunner(sql))).map((r) => r.hash)).toEqual(
          shipped.slice(0, upTo).map((m) => m.hash),
        )
        await holder`rollback`
      } finally {
        holder.release()
      }
      const report = await migrate(scratch.url, { secret: null, lockTimeoutMs: 200 })
      expect(report.applied).toEqual(tags.slice(upTo))
    } finally {
      rmSync(older, { recursive: true, force: true })
      await sql.end({ timeout: 5 })
      await scratch.drop()
    }
  })
}
