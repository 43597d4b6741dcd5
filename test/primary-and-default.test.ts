import { sql } from 'drizzle-orm'
import { afterEach, expect, it } from 'vitest'
import {
  DatabaseClosedError,
  InvalidConfigurationError,
  closeDefaultDatabase,
  createDatabase,
  createTenantClient,
  getDefaultDatabase,
  setDefaultDatabase,
} from '../src'
import { describeEachDatabase } from './harness/engines'
import { sqlState } from './harness/sql-runner'

describeEachDatabase('$primary and the default database', (ctx) => {
  const db = () => ctx().db

  afterEach(() => setDefaultDatabase(undefined))

  it('$primary is the runtime login outside any unit: no library table is readable, on either engine', async () => {
    const org = await db().organizations.create({ name: 'Primary', slug: 'primary-view' })
    await db().tenant(org.id).departments.create({ name: 'Camera', code: 'CAM' })
    for (const table of ['contacts', 'departments', 'organizations']) {
      const refused = await db()
        .$primary.execute(sql.raw(`select count(*) from ${table}`))
        .catch((e: unknown) => e)
      expect(sqlState(refused), table).toBe('42501')
    }
  })

  it('$primary runs statements that need no table of ours, and transactions', async () => {
    const result = await db().$primary.transaction(async (tx) => tx.execute(sql`select 41 + 1 as answer`))
    const rows = Array.isArray(result) ? result : (result as unknown as { rows: unknown[] }).rows
    expect(rows).toEqual([{ answer: 42 }])
  })

  it('setDefaultDatabase points createTenantClient(orgId) at a given database (e.g. a test database)', async () => {
    const org = await db().organizations.create({ name: 'Default', slug: 'default-db' })
    setDefaultDatabase(db())
    expect(getDefaultDatabase()).toBe(db())
    const tenant = createTenantClient(org.id, { requestId: 'set-default' })
    await tenant.departments.create({ name: 'Grip', code: 'GRP' })
    expect(
      await db()
        .tenant(org.id)
        .departments.count({ where: { code: 'GRP' } }),
    ).toBe(1)
    setDefaultDatabase(undefined)
    const saved = process.env.DATABASE_URL
    delete process.env.DATABASE_URL
    try {
      expect(() => createTenantClient(org.id)).toThrow(/DATABASE_URL is not set/)
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved
    }
  })

  it('setDefaultDatabase refuses what is not a database; closeDefaultDatabase closes the one set', async () => {
    expect(() => setDefaultDatabase({} as never)).toThrow(InvalidConfigurationError)
    const engine = ctx().engine
    const own = createDatabase(engine.pglite ? { primary: engine.pglite } : { primary: engine.url!, pool: { max: 1 } })
    setDefaultDatabase(own)
    await closeDefaultDatabase()
    const org = await db().organizations.create({ name: 'Closed', slug: 'closed-default' })
    // On PGlite the instance belongs to the harness and stays open; on a server the pool is closed.
    if (!engine.pglite) await expect(own.tenant(org.id).departments.count()).rejects.toBeInstanceOf(Error)
    // $primary too, on both engines (on PGlite the instance itself stays open: it is the harness's).
    const refused = await own.$primary.execute(sql`select 1`).catch((e: unknown) => e)
    expect((refused as Error).cause).toBeInstanceOf(DatabaseClosedError) // drizzle wraps it: "Failed query: …"
  })
})
