import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PGlite } from '@electric-sql/pglite'
import { createPglite, smallMemoryStartParams } from '../src/engine/pglite/create-pglite'
import { closeIntoSnapshot, encodeSnapshot, SnapshotFilesystem } from '../src/engine/pglite/data-dir-snapshot'
import { capturePristine, pristineFromStored } from '../src/testing/instance-reset'
import { loadTemplate } from '../src/testing/template-snapshot'
import { migrate } from '../src/migrations/migrate'
import { createTestDatabase, disposeTestTemplate, prepareTestTemplate } from '../src/testing'

// This file's own cache and app migrations: nothing shared with other files or the machine's cache.
const scratch = mkdtempSync(join(tmpdir(), 'callsheet-template-test-'))
const appFolder = join(scratch, 'app-drizzle')
process.env.CALLSHEET_DB_CACHE_DIR = join(scratch, 'cache')

function writeAppMigrations(sql: string): void {
  mkdirSync(join(appFolder, 'meta'), { recursive: true })
  writeFileSync(
    join(appFolder, 'meta', '_journal.json'),
    JSON.stringify({
      version: '7',
      dialect: 'postgresql',
      entries: [{ idx: 0, version: '7', when: 1_700_000_000_000, tag: '0000_widgets', breakpoints: true }],
    }),
  )
  writeFileSync(join(appFolder, '0000_widgets.sql'), sql)
}

/** What the schema is: tables and columns, indexes, policies, triggers, functions, roles' grants, extensions. */
async function catalog(pg: PGlite): Promise<unknown[]> {
  const queries = [
    `select table_schema, table_name, column_name, data_type, is_nullable, column_default
       from information_schema.columns where table_schema not in ('pg_catalog', 'information_schema')
       order by 1, 2, 3`,
    `select schemaname, tablename, indexname, indexdef from pg_indexes
       where schemaname not in ('pg_catalog', 'information_schema') order by 1, 2, 3`,
    `select schemaname, tablename, policyname, cmd, roles::text, qual, with_check from pg_policies order by 1, 2, 3`,
    `select c.relname, t.tgname, pg_get_triggerdef(t.oid) from pg_trigger t join pg_class c on c.oid = t.tgrelid
       where not t.tgisinternal order by 1, 2`,
    `select n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc)
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
       where n.nspname not in ('pg_catalog', 'information_schema') order by 1, 2, 3`,
    `select c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relacl::text from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
       where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') order by 1`,
    `select extname, extversion from pg_extension order by 1`,
    `select id, hash from callsheet_migrations.applied order by id`,
  ]
  const results: unknown[] = []
  for (const text of queries) results.push((await pg.query(text)).rows)
  return results
}

/** The template's stored pristine state is the one an instance started from it reads live. */
async function expectStoredPristineIsLive(
  template: Awaited<ReturnType<typeof loadTemplate>>,
  month: string,
): Promise<void> {
  expect(template.pristine).toBeDefined()
  const pg = await createPglite({
    fs: new SnapshotFilesystem(template.snapshot),
    startParams: [...smallMemoryStartParams],
  })
  try {
    // Taken as createTestDatabase takes it (its next transaction id checked), then read live.
    expect(await pristineFromStored(pg, template.pristine!)).toBeDefined()
    const { configFiles: _files, tempSchema: _temp, ...live } = await capturePristine(pg, month)
    expect(template.pristine).toEqual(live)
  } finally {
    await pg.close()
  }
}

describe('@callsheet/db/testing: the migrated template snapshot', () => {
  beforeAll(() => writeAppMigrations('CREATE TABLE "app_widgets" ("id" integer PRIMARY KEY);'))
  afterAll(async () => {
    await disposeTestTemplate()
    rmSync(scratch, { recursive: true, force: true })
  })

  it('is exactly the shipped migrations: the same catalog as a PGlite migrated now', async () => {
    const fresh = await createPglite()
    const db = await createTestDatabase()
    try {
      await migrate(fresh)
      expect(await catalog(db.pglite)).toEqual(await catalog(fresh))
    } finally {
      await db.close()
      await fresh.close()
    }
  })

  it('is built once, cached, then loaded from the cache (by a process that does not have it)', async () => {
    await disposeTestTemplate()
    const built = await prepareTestTemplate({ appMigrationsFolder: appFolder })
    expect(built.source).toBe('built')
    expect(built.cacheFile).toBeDefined()
    expect((await prepareTestTemplate({ appMigrationsFolder: appFolder })).source).toBe('memory')
    await disposeTestTemplate()
    const again = await prepareTestTemplate({ appMigrationsFolder: appFolder })
    expect(again).toEqual({ ...built, source: 'cache' })
    const db = await createTestDatabase({ appMigrationsFolder: appFolder })
    try {
      await db.pglite.query('insert into app_widgets (id) values (1)')
      const recorded = await db.pglite.query<{ n: number }>(
        'select count(*)::int as n from drizzle.__drizzle_migrations',
      )
      expect(recorded.rows).toEqual([{ n: 1 }])
      // The library's tables are there too, and the app's migrations are not recorded among the library's.
      expect((await db.organizations.findMany()).rows).toEqual([])
    } finally {
      await db.close()
    }
  })

  it('is rebuilt when a migration changes: never a stale schema', async () => {
    const before = await prepareTestTemplate({ appMigrationsFolder: appFolder })
    writeAppMigrations('CREATE TABLE "app_widgets" ("id" integer PRIMARY KEY, "label" text NOT NULL DEFAULT \'x\');')
    await disposeTestTemplate()
    const after = await prepareTestTemplate({ appMigrationsFolder: appFolder })
    expect(after.key).not.toBe(before.key)
    expect(after.source).toBe('built')
    const db = await createTestDatabase({ appMigrationsFolder: appFolder })
    try {
      const rows = await db.pglite.query<{ label: string }>('insert into app_widgets (id) values (1) returning label')
      expect(rows.rows).toEqual([{ label: 'x' }])
    } finally {
      await db.close()
    }
  })

  it('is rebuilt when the cached file is damaged or labelled with another key', async () => {
    const info = await prepareTestTemplate({ appMigrationsFolder: appFolder })
    const file = info.cacheFile!
    const whole = readFileSync(file)
    writeFileSync(file, whole.subarray(0, whole.length - 1))
    await disposeTestTemplate()
    expect((await prepareTestTemplate({ appMigrationsFolder: appFolder })).source).toBe('built')
    // Another key inside a file of this key's name (a stale or foreign file): refused, rebuilt.
    const text = readFileSync(file)
    const at = text.indexOf(info.key)
    text.write('0'.repeat(8), at, 'latin1')
    writeFileSync(file, text)
    await disposeTestTemplate()
    expect((await prepareTestTemplate({ appMigrationsFolder: appFolder })).source).toBe('built')
  })

  it('rolls a template made in an earlier month forward once and caches it: instances start from it as from a new one', async () => {
    const now = new Date()
    const month = now.toISOString().slice(0, 7)
    const previous = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)).toISOString().slice(0, 7)
    const info = await prepareTestTemplate()
    // What a template migrated last month is today: no partition for this month or the ones after.
    const pg = await createPglite({
      fs: new SnapshotFilesystem((await loadTemplate()).snapshot),
      startParams: [...smallMemoryStartParams],
    })
    const dropped = await pg.query<{ r: string }>(
      `select c.relname as r from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'audit_logs'::regclass and c.relname >= $1 and c.relname <> 'audit_logs_default'`,
      [`audit_logs_${month.replace('-', '_')}`],
    )
    expect(dropped.rows.length).toBeGreaterThan(0)
    for (const { r } of dropped.rows) await pg.exec(`drop table "${r}"`)
    writeFileSync(info.cacheFile!, encodeSnapshot(await closeIntoSnapshot(pg), info.key, { builtMonth: previous }))
    await disposeTestTemplate()

    const rolled = await loadTemplate()
    expect(rolled).toMatchObject({ source: 'cache', builtMonth: month, cacheFile: info.cacheFile })
    expect(rolled.pristine).toBeDefined()
    // Cached as rolled forward: the next process loads this month's template.
    const again = await loadTemplate()
    expect(again).toMatchObject({ source: 'cache', builtMonth: month })
    expect(again.pristine).toEqual(rolled.pristine)
    const db = await createTestDatabase()
    try {
      const partitions = await db.pglite.query<{ r: string }>(
        `select c.relname as r from pg_inherits i join pg_class c on c.oid = i.inhrelid
          where i.inhparent = 'audit_logs'::regclass order by 1`,
      )
      expect(partitions.rows.map((p) => p.r)).toEqual(
        expect.arrayContaining([...dropped.rows.map((p) => p.r), 'audit_logs_default']),
      )
      // Audit rows of this month land in this month's partition.
      const org = await db.organizations.create({ name: 'Rolled', slug: 'rolled' })
      await db.tenant(org.id).departments.create({ name: 'Camera', code: 'CAM' })
      const where = await db.pglite.query<{ p: string }>(
        `select distinct tableoid::regclass::text as p from audit_logs where organization_id = $1`,
        [org.id],
      )
      expect(where.rows).toEqual([{ p: `audit_logs_${month.replace('-', '_')}` }])
    } finally {
      await db.close()
    }
    // The stored state is what an instance of the rolled template reads live.
    await expectStoredPristineIsLive(again, month)
  })

  it('carries the catalog baseline of a fresh instance, equal to one read live (library and app templates, cache)', async () => {
    const month = new Date().toISOString().slice(0, 7)
    for (const folder of [undefined, appFolder]) {
      // Made now (or loaded from this file's cache, written by an earlier test), then from the cache.
      for (const template of [await loadTemplate(folder), await loadTemplate(folder)]) {
        expect(template.builtMonth).toBe(month)
        await expectStoredPristineIsLive(template, month)
      }
    }
    expect((await loadTemplate()).source).toBe('cache')
  })
})
