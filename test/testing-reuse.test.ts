import { sql } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { isCallsheetDbError } from '../src/errors'
import {
  createTestDatabase,
  disposeTestTemplate,
  expectTenantIsolation,
  seedTenant,
  type TestDatabase,
} from '../src/testing'

// Reuse of one PGlite across test databases (issue 19): a reused database must be indistinguishable from
// a new one, and an instance whose reset cannot be proven complete must not be reused.

const opened: TestDatabase[] = []
async function open(options?: Parameters<typeof createTestDatabase>[0]): Promise<TestDatabase> {
  const db = await createTestDatabase(options)
  opened.push(db)
  return db
}

/** A database on an instance just used (and closed) by another: the previous one leaves nothing idle but it. */
async function afterUse(use: (db: TestDatabase) => Promise<unknown>): Promise<TestDatabase> {
  const before = await open()
  await use(before)
  await before.close()
  return open()
}

/**
 * What a test can see of a database's state, short of timing: data in every table, sequences, the
 * schema (catalog rows that describe objects), roles and memberships, settings (session, role,
 * database), the session's identity and leftovers (prepared statements, cursors, listeners, locks,
 * temporary objects).
 */
async function observable(db: TestDatabase): Promise<Record<string, unknown>> {
  const pg = db.pglite
  const rows = async (text: string) => (await pg.query(text)).rows
  const tables = await pg.query<{ t: string }>(
    `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') order by 1`,
  )
  const data: Record<string, unknown> = {}
  for (const { t } of tables.rows) {
    // The journal's applied_at is when the template was migrated: the same in every copy.
    data[t] = await rows(`select * from ${t} order by 1`)
  }
  const sequences = await pg.query<{ s: string }>(
    `select format('%I.%I', schemaname, sequencename) as s from pg_sequences order by 1`,
  )
  const sequenceStates: Record<string, unknown> = {}
  for (const { s } of sequences.rows) sequenceStates[s] = await rows(`select last_value, is_called from ${s}`)
  return {
    data,
    sequences: sequenceStates,
    nextval: await rows(`select nextval('callsheet_audit_order') as n`),
    relations: await rows(
      `select n.nspname, c.relname, c.relkind, c.relacl::text, c.relrowsecurity, c.relforcerowsecurity, c.reloptions::text
         from pg_class c join pg_namespace n on n.oid = c.relnamespace order by 1, 2`,
    ),
    columns: await rows(
      `select attrelid::regclass::text, attname, atttypid::regtype::text, attnotnull, attisdropped
         from pg_attribute where attnum > 0 order by 1, 2`,
    ),
    functions: await rows(
      `select oid::regprocedure::text, md5(prosrc), proacl::text, proconfig::text from pg_proc order by 1`,
    ),
    policies: await rows(`select * from pg_policies order by 1, 2, 3`),
    triggers: await rows(`select tgrelid::regclass::text, tgname, tgenabled from pg_trigger order by 1, 2`),
    eventTriggers: await rows(`select evtname from pg_event_trigger order by 1`),
    descriptions: await rows(`select objoid, classoid, objsubid, description from pg_description order by 1, 2, 3`),
    roles: await rows(
      `select rolname, rolsuper, rolinherit, rolcanlogin, rolbypassrls, rolconfig::text from pg_roles order by 1`,
    ),
    memberships: await rows(`select roleid::regrole::text, member::regrole::text from pg_auth_members order by 1, 2`),
    roleSettings: await rows(`select setdatabase, setrole, setconfig::text from pg_db_role_setting order by 1, 2`),
    // An extension's settings (pg_trgm.*, plpgsql.*) exist once its library is loaded, which lasts as long as
    // the instance, as in a new database after its first search: compared unless at their default.
    settings: await rows(
      `select name, setting, source from pg_settings where not (name like '%.%' and source = 'default') order by 1`,
    ),
    fileSettings: await rows(`select name, setting from pg_file_settings order by 1`),
    who: await rows(`select current_user, session_user, current_schemas(true)::text, pg_my_temp_schema()::int`),
    listening: await rows(`select pg_listening_channels()`),
    prepared: await rows(`select name from pg_prepared_statements`),
    cursors: await rows(`select name from pg_cursors`),
    locks: await rows(`select locktype, mode from pg_locks where locktype = 'advisory'`),
    tempSchemas: await rows(`select nspname from pg_namespace where nspname like 'pg_temp%' order by 1`),
    largeObjects: await rows(`select oid from pg_largeobject_metadata`),
    // '' and NULL both mean unset here (the policies read nullif(…, '')): PostgreSQL keeps a custom setting's
    // placeholder for the rest of the session once set, and the library sets these in every unit, so a new
    // database reads '' too after its first unit. See the test of that below.
    appSettings: await rows(
      `select nullif(current_setting('app.organization_id', true), '') as organization,
              nullif(current_setting('app.actor_id', true), '') as actor`,
    ),
  }
}

/** Uses the database every way a test might, through the library and as PGlite's superuser. */
async function useEverything(db: TestDatabase): Promise<void> {
  const seeded = await seedTenant(db, { productions: 2, contactsPerProduction: 3 })
  const other = await seedTenant(db, { seed: 2, productions: 1, contactsPerProduction: 1 })
  await seeded.tenant.contacts.softDelete(seeded.contacts[0]!.id)
  await seeded.tenant.departments.update(seeded.departments[0]!.id, { name: 'Camera Dept' })
  await db.organizations.softDelete(other.organization.id)
  await seeded.tenant.apiKeys.create({ name: 'ci', scopes: ['contacts:read'] })
  await db.$primary.execute(sql`select 1`)
  const pg = db.pglite
  await pg.exec(`set work_mem = '7MB'; set search_path = callsheet_private, public`)
  await pg.query(`select set_config('app.organization_id', $1, false)`, [seeded.organization.id])
  await pg.query(`select nextval('callsheet_audit_order')`)
  await pg.query(`select setval('callsheet_audit_order', 500)`)
  await pg.exec(`prepare leftover as select 1`)
  await pg.exec(`listen leftover_channel`)
  await pg.query(`select pg_advisory_lock(42)`)
  await pg.exec(`begin; declare leftover_cursor cursor with hold for select 1; commit`)
  await pg.exec(`set role callsheet_app`)
}

describe('@callsheet/db/testing: a closed database’s PGlite reset for the next one', () => {
  beforeAll(() => disposeTestTemplate())
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.close()))
  })
  afterAll(() => disposeTestTemplate())

  it('reuses the instance of a closed database, and the reused one is indistinguishable from a new one', async () => {
    const fresh = await open({ reuse: false })
    expect(fresh.reused).toBe(false)
    const freshState = await observable(fresh)
    await fresh.close()

    const reused = await afterUse(useEverything)
    expect(reused.reused).toBe(true)
    expect(await observable(reused)).toEqual(freshState)
    // And again, the third database on the same instance.
    await reused.close()
    const third = await afterUse(useEverything)
    expect(third.reused).toBe(true)
    expect(await observable(third)).toEqual(freshState)
  })

  it('empties a table a test filled past 1 MB with TRUNCATE and the others with DELETE: either way as new', async () => {
    const fresh = await open({ reuse: false })
    const freshState = await observable(fresh)
    await fresh.close()
    const size = async (db: TestDatabase, table: string) =>
      (await db.pglite.query<{ n: number }>(`select pg_relation_size($1)::int as n`, [table])).rows[0]?.n
    // A few rows: deleted (the table keeps its pages, every row dead).
    const small = await afterUse(useEverything)
    expect(small.reused).toBe(true)
    expect(await size(small, 'contacts')).toBeGreaterThan(0)
    expect(await observable(small)).toEqual(freshState)
    await small.close()
    // Past 1 MB of contacts (and their audit rows): truncated, with the tables referencing them.
    const large = await afterUse(async (db) => {
      const seeded = await seedTenant(db, { productions: 1, contactsPerProduction: 1 })
      await db.pglite.query(
        `insert into contacts (organization_id, production_id, name, email)
           select $1, $2, 'Bulk ' || i, 'bulk' || i || '@example.com' from generate_series(1, 20000) i`,
        [seeded.organization.id, seeded.productions[0]!.id],
      )
      expect(await size(db, 'contacts')).toBeGreaterThan(1024 * 1024)
    })
    expect(large.reused).toBe(true)
    expect(await size(large, 'contacts')).toBe(0)
    expect(await observable(large)).toEqual(freshState)
    const tenant = await seedTenant(large, { productions: 1, contactsPerProduction: 2 })
    expect(await tenant.tenant.contacts.count()).toBe(2)
  })

  it("differs from a new database only as a new one does after its first unit: unset custom settings read '', not NULL", async () => {
    const read = async (db: TestDatabase) =>
      (await db.pglite.query<{ v: string | null }>(`select current_setting('app.organization_id', true) as v`)).rows[0]
        ?.v
    const fresh = await open({ reuse: false })
    expect(await read(fresh)).toBeNull()
    const org = await fresh.organizations.create({ name: 'Unit', slug: 'unit' })
    await fresh.tenant(org.id).departments.count()
    expect(await read(fresh)).toBe('')
    const reused = await afterUse(async (db) => {
      const used = await db.organizations.create({ name: 'Unit', slug: 'unit' })
      await db.tenant(used.id).departments.count()
    })
    expect(reused.reused).toBe(true)
    expect(await read(reused)).toBe('')
  })

  it('keeps every guarantee on a reused instance: RLS between tenants, the runtime login, audit, soft delete', async () => {
    const db = await afterUse(useEverything)
    expect(db.reused).toBe(true)
    const a = await seedTenant(db, { productions: 1, contactsPerProduction: 2 })
    const b = await seedTenant(db, { seed: 2, productions: 1, contactsPerProduction: 1 })
    expect(await b.tenant.contacts.findById(a.contacts[0]!.id)).toBeUndefined()
    await expect(
      b.tenant.contacts.update(a.contacts[0]!.id, { name: 'Mallory' }).catch((e: unknown) => e),
    ).resolves.toSatisfy((e: unknown) => isCallsheetDbError(e, 'NOT_FOUND'))
    const report = await expectTenantIsolation(db, ({ as, foreign }) => as.contacts.findById(foreign.contactId))
    expect(report.result).toBeUndefined()
    // $primary is the runtime login, which sees no library table.
    await expect(db.$primary.execute(sql`select * from organizations`)).rejects.toMatchObject({
      cause: expect.objectContaining({ code: '42501' }) as unknown,
    })
    // Audit: the write is recorded, in this database only.
    const audited = await db.pglite.query<{ n: number }>(
      `select count(*)::int as n from audit_logs where organization_id = $1`,
      [a.organization.id],
    )
    expect(audited.rows[0]?.n).toBeGreaterThan(0)
    await a.tenant.contacts.softDelete(a.contacts[1]!.id)
    expect(await a.tenant.contacts.findById(a.contacts[1]!.id)).toBeUndefined()
    // Its own tenant-proof key: one key, not the previous database's.
    expect((await db.pglite.query('select * from callsheet_private.tenant_keys')).rows).toHaveLength(1)
  })

  it('starts a new instance after DDL, roles, grants, settings of roles, temporary objects, the journal, ALTER SYSTEM or an open transaction', async () => {
    const dirtying: Record<string, string> = {
      'a table': 'create table leaked_table (id int)',
      'a column': 'alter table departments add column leaked_column int',
      'RLS off': 'alter table contacts disable row level security',
      'a policy dropped': `do $$ begin execute format('drop policy %I on contacts',
        (select policyname from pg_policies where tablename = 'contacts' limit 1)); end $$`,
      'a trigger disabled': 'alter table contacts disable trigger all',
      'a comment': "comment on table contacts is 'leaked'",
      'a function': 'create function leaked_fn() returns int language sql as $$ select 1 $$',
      'an event trigger':
        'create function leaked_evt() returns event_trigger language plpgsql as $$ begin end $$; create event trigger leaked_evt on ddl_command_start execute function leaked_evt()',
      'a role': 'create role leaked_role',
      'a grant': 'grant select on contacts to public',
      'a role setting': "alter role callsheet_app set work_mem = '9MB'",
      'a database setting': "alter database postgres set work_mem = '9MB'",
      'the migrations journal': "update callsheet_migrations.applied set hash = 'leaked' where id = 1",
      'a temporary table': 'create temporary table leaked_temp (id int)',
      'ALTER SYSTEM': "alter system set work_mem = '9MB'",
      ANALYZE: 'analyze callsheet_migrations.applied',
      'a large object': 'select lo_create(4242)',
    }
    const fresh = await open({ reuse: false })
    const freshState = await observable(fresh)
    await fresh.close()
    const usedWith = (statement: string) =>
      afterUse(async (db) => {
        await db.organizations.create({ name: 'Dirty', slug: 'dirty' })
        await db.pglite.exec(statement)
      })
    // The control: the same use without the statement's effect is reused.
    const control = await usedWith('select 1')
    expect(control.reused).toBe(true)
    await control.close()
    for (const [label, statement] of Object.entries(dirtying)) {
      const next = await usedWith(statement)
      expect(next.reused, label).toBe(false)
      // A new instance, so nothing of it is left (checked in full once: the rest is the same code path).
      if (label === 'a table') expect(await observable(next), label).toEqual(freshState)
      await next.close()
    }
    // A transaction left open (BEGIN through raw SQL) is not reset either.
    const next = await afterUse((db) =>
      db.pglite.exec(
        'begin; insert into callsheet_migrations.tenant_tables select * from callsheet_migrations.tenant_tables',
      ),
    )
    expect(next.reused).toBe(false)
  })

  it('starts a new instance when the PGlite was used beyond SQL (listeners, its module), or with reuse: false', async () => {
    let next = await afterUse(async (db) => {
      await db.pglite.listen('leaked_channel', () => undefined)
    })
    expect(next.reused).toBe(false)
    await next.close()
    next = await afterUse((db) => Promise.resolve(db.pglite.Module))
    expect(next.reused).toBe(false)
    await next.close()
    // Not handed on, and not taking one (disposeTestTemplate() closes the idle instance).
    await disposeTestTemplate()
    const own = await open({ reuse: false })
    await own.close()
    next = await open()
    expect(next.reused).toBe(false)
    await next.close()
    expect((await open({ reuse: false })).reused).toBe(false)
  })

  it('refuses the closed database’s handle (DATABASE_CLOSED) while the next one runs on its instance', async () => {
    const closed = await open()
    const org = await closed.organizations.create({ name: 'Closed', slug: 'closed' })
    const pglite = closed.pglite
    await closed.close()
    const next = await open()
    expect(next.reused).toBe(true)
    const refusals = [
      pglite.query('select 1'),
      pglite.exec('select 1'),
      pglite.transaction((tx) => tx.query('select 1')),
      closed.pglite.query('select 1'),
      closed.organizations.create({ name: 'Late', slug: 'late' }),
      closed.organizations.findMany(),
      closed.tenant(org.id).departments.findMany(),
      closed.$primary.execute(sql`select 1`),
    ]
    for (const refusal of refusals) {
      const error: unknown = await refusal.then(
        () => new Error('resolved after close()'),
        (e: unknown) => e,
      )
      // drizzle wraps $primary's refusal ("Failed query: …"), as on a server.
      const refused = error instanceof Error && error.cause !== undefined ? error.cause : error
      expect(isCallsheetDbError(refused, 'DATABASE_CLOSED'), String(error)).toBe(true)
    }
    expect(closed.pglite.closed).toBe(true)
    expect(next.pglite.closed).toBe(false)
    // Nothing of the closed one's reached the next one.
    expect((await next.organizations.findMany()).rows).toEqual([])
  })

  it('gives two databases open at once two instances, and keeps at most one idle', async () => {
    const [x, y] = await Promise.all([open(), open()])
    expect([x.reused, y.reused].filter(Boolean).length).toBeLessThanOrEqual(1)
    await x.organizations.create({ name: 'Only X', slug: 'only-x' })
    expect((await y.organizations.findMany()).rows).toEqual([])
    await Promise.all([x.close(), y.close()])
    // Both closed: one was kept, one closed. Two more at once: at most one reused.
    const [z, w] = await Promise.all([open(), open()])
    expect([z.reused, w.reused].filter(Boolean)).toEqual([true])
  })
})
