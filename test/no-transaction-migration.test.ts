// Issue 21, part 2: a migration marked `-- callsheet:no-transaction` builds its indexes with CREATE INDEX
// CONCURRENTLY outside the transaction, one statement at a time; a failure in the middle records nothing
// of it, and the next run rebuilds the index the failed build left INVALID. Exercised through
// appMigrationsFolder (the library's own folder goes through the same code), on PGlite and PostgreSQL.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/migrations/migrate'
import { isCallsheetDbError } from '../src/errors'
import type { SqlRunner } from './harness/sql-runner'
import { freshMigrationTargets, type FreshMigrationTarget } from './support/fresh-migration-target'

const CONCURRENT = [
  '-- callsheet:no-transaction',
  '-- squawk-disable-assume-in-transaction',
  'CREATE INDEX CONCURRENTLY IF NOT EXISTS "contacts_app_name_idx" ON "contacts" ("organization_id", "name");',
  '--> statement-breakpoint',
  'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "app_tags_name_key" ON "app_tags" USING btree ("name");',
].join('\n')

const MIGRATIONS: [string, string][] = [
  ['0000_tags', 'CREATE TABLE "app_tags" ("name" text NOT NULL);'],
  ['0001_concurrent_indexes', CONCURRENT],
  ['0002_tag_note', 'ALTER TABLE "app_tags" ADD COLUMN "note" text;'],
]

/** An app migrations folder holding the first `count` of MIGRATIONS (or the given files). */
function appFolder(dir: string, files: [string, string][]): string {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(join(dir, 'meta'), { recursive: true })
  const entries = files.map(([tag, sql], idx) => {
    writeFileSync(join(dir, `${tag}.sql`), sql)
    return { idx, version: '7', when: 1_900_000_000_000 + idx * 1000, tag, breakpoints: true }
  })
  writeFileSync(join(dir, 'meta', '_journal.json'), JSON.stringify({ version: '7', dialect: 'postgresql', entries }))
  return dir
}

type Fresh = FreshMigrationTarget
const engines = freshMigrationTargets('cs_notx')

const indexes = (db: SqlRunner) =>
  db.query<{ name: string; valid: boolean }>(
    `select c.relname as name, i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
      where c.relname in ('contacts_app_name_idx', 'app_tags_name_key') order by 1`,
  )
const recordedApp = async (db: SqlRunner) =>
  (await db.query<{ created_at: string }>('select created_at::text from drizzle.__drizzle_migrations order by id')).map(
    (r) => Number(r.created_at),
  )

describe.each(engines)('a no-transaction migration on %s', (name, open) => {
  let fresh: Fresh
  let dir: string
  beforeEach(async () => {
    fresh = await open()
    dir = mkdtempSync(join(tmpdir(), 'cs-notx-'))
  })
  afterEach(async () => {
    await fresh.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('builds its indexes concurrently; a failure in the middle records nothing of it; the retry rebuilds the invalid index', async () => {
    await migrate(fresh.target, { secret: null, appMigrationsFolder: appFolder(dir, MIGRATIONS.slice(0, 1)) })
    // Duplicates make the unique build fail after the first statement has built its index.
    await fresh.db.query(`insert into app_tags (name) values ('crew'), ('crew')`)
    appFolder(dir, MIGRATIONS)
    const error = await migrate(fresh.target, { secret: null, appMigrationsFolder: dir }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isCallsheetDbError(error, 'MIGRATION_FAILED'), String(error)).toBe(true)
    expect((error as Error).message).toMatch(/could not create unique index "app_tags_name_key"/)
    // The first statement's index is built; the failed build left its index INVALID (PostgreSQL keeps the
    // catalog entry of an interrupted concurrent build, PGlite too); the migration is not recorded, nor
    // the one after it.
    expect(await indexes(fresh.db)).toEqual([
      { name: 'app_tags_name_key', valid: false },
      { name: 'contacts_app_name_idx', valid: true },
    ])
    expect(await recordedApp(fresh.db)).toEqual([1_900_000_000_000])

    await fresh.db.query(`delete from app_tags`)
    const report = await migrate(fresh.target, { secret: null, appMigrationsFolder: dir })
    expect(report.appApplied).toEqual(['0001_concurrent_indexes', '0002_tag_note'])
    expect(await indexes(fresh.db)).toEqual([
      { name: 'app_tags_name_key', valid: true },
      { name: 'contacts_app_name_idx', valid: true },
    ])
    expect(await recordedApp(fresh.db)).toEqual([1_900_000_000_000, 1_900_000_001_000, 1_900_000_002_000])
    // The rebuilt index is the unique one it claims to be.
    await fresh.db.query(`insert into app_tags (name) values ('cast')`)
    await expect(fresh.db.query(`insert into app_tags (name) values ('cast')`)).rejects.toThrow(/app_tags_name_key/)
    expect((await migrate(fresh.target, { secret: null, appMigrationsFolder: dir })).appApplied).toEqual([])
  })

  it('refuses, before connecting, a no-transaction migration with a statement that cannot be retried safely or a misplaced marker', async () => {
    const bad: [string, string][] = [
      ['0000_x', '-- callsheet:no-transaction\nCREATE INDEX "contacts_x_idx" ON "contacts" ("name");'],
      ['0000_x', '-- callsheet:no-transaction\nCREATE INDEX CONCURRENTLY "contacts_x_idx" ON "contacts" ("name");'],
      ['0000_x', '-- callsheet:no-transaction\nALTER TABLE "contacts" ADD COLUMN "x" text;'],
      ['0000_x', 'SELECT 1;\n-- callsheet:no-transaction\n'],
    ]
    for (const files of bad) {
      appFolder(dir, [files])
      const error = await migrate(fresh.target, { secret: null, appMigrationsFolder: dir }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isCallsheetDbError(error, 'MIGRATION_FAILED'), `${files[1]}: ${String(error)}`).toBe(true)
    }
    // Nothing ran: not even this package's migrations.
    expect(await fresh.db.query(`select to_regclass('contacts') as r`)).toEqual([{ r: null }])
  })

  it.runIf(name === 'postgres')(
    'a concurrent build waiting behind a writer fails with MIGRATION_LOCK_TIMEOUT, leaving the index invalid; the retry rebuilds it',
    async () => {
      await migrate(fresh.target, { secret: null, appMigrationsFolder: appFolder(dir, MIGRATIONS.slice(0, 1)) })
      appFolder(dir, MIGRATIONS)
      const holder = postgres(fresh.url!, { max: 1, onnotice: () => {} })
      try {
        await holder.begin(async (tx) => {
          // An open transaction that writes contacts: CREATE INDEX CONCURRENTLY waits for it to end.
          await tx`lock table contacts in row exclusive mode`
          const error = await migrate(fresh.target, {
            secret: null,
            appMigrationsFolder: dir,
            lockTimeoutMs: 300,
          }).then(
            () => undefined,
            (e: unknown) => e,
          )
          expect(isCallsheetDbError(error, 'MIGRATION_LOCK_TIMEOUT'), String(error)).toBe(true)
          expect((error as Error).message).toContain('while applying 0001_concurrent_indexes')
          expect((error as Error).message).toContain('is rebuilt by the next run')
        })
      } finally {
        await holder.end({ timeout: 5 })
      }
      expect(await indexes(fresh.db)).toEqual([{ name: 'contacts_app_name_idx', valid: false }])
      expect(await recordedApp(fresh.db)).toEqual([1_900_000_000_000])
      const report = await migrate(fresh.target, { secret: null, appMigrationsFolder: dir, lockTimeoutMs: 300 })
      expect(report.appApplied).toEqual(['0001_concurrent_indexes', '0002_tag_note'])
      expect(await indexes(fresh.db)).toEqual([
        { name: 'app_tags_name_key', valid: true },
        { name: 'contacts_app_name_idx', valid: true },
      ])
    },
  )
})
