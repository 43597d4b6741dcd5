import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { closeDefaultDatabase, createDatabase, createTenantClient } from '../src'
import { sql } from 'drizzle-orm'
import { isCallsheetDbError, mapDatabaseError } from '../src/errors'
import { openEngine, type TestEngine } from './harness/engines'
import { asAppRole } from './harness/sql-runner'
import { waitFor } from './support/promises'

// Behaviour that only a PostgreSQL server has: a pool, processes, a planner with statistics.
const server = inject('postgresServer')
const run = promisify(execFile)

describe.runIf(server)('server only [postgres]', () => {
  let engine: TestEngine
  beforeAll(async () => {
    engine = await openEngine('postgres')
    return () => engine.close()
  })

  it('fails fast with AcquireTimeoutError when the pool is exhausted, and leaks nothing', async () => {
    const db = createDatabase({ primary: engine.url!, pool: { max: 1, acquireTimeoutMs: 150 } })
    try {
      const org = await db.organizations.create({ name: 'Pool', slug: `pool-${Date.now().toString(36)}` })
      const tenant = db.tenant(org.id)
      let release!: () => void
      const held = new Promise<void>((resolve) => (release = resolve))
      // The holder has the one connection once it signals, not after a guessed 50 ms.
      let holding!: () => void
      const holdingNow = new Promise<void>((resolve) => (holding = resolve))
      const holder = tenant.transaction(async (tx) => {
        await tx.departments.create({ name: 'Held', code: 'HELD' })
        holding()
        await held
      })
      await holdingNow
      // "Fast" is the typed ACQUIRE_TIMEOUT itself (the pool gave up at acquireTimeoutMs instead of
      // waiting for the holder, which only lets go below); how long that took is not asserted.
      const error = await tenant.departments.findMany().catch((e: unknown) => e)
      expect(isCallsheetDbError(error, 'ACQUIRE_TIMEOUT')).toBe(true)
      expect((error as { retryable: boolean }).retryable).toBe(true)
      release()
      await holder
      for (let i = 0; i < 10; i++) await tenant.departments.count()
      // A read answers before its COMMIT completes; the connection returns to the pool right after.
      await waitFor('the connection back in the pool', () => db.stats().pool.inUse === 0)
      expect(db.stats().pool).toEqual({ inUse: 0, waiting: 0, max: 1 })
    } finally {
      await db.close()
    }
  })

  it('applies statementTimeoutMs to every connection; a timeout maps to a retryable TimeoutError', async () => {
    const db = createDatabase({ primary: engine.url!, statementTimeoutMs: 150 })
    try {
      const shown = await db.$primary.execute(sql`show statement_timeout`)
      expect(JSON.stringify(shown)).toContain('150ms')
      const error = mapDatabaseError(await db.$primary.execute(sql`select pg_sleep(2)`).catch((e: unknown) => e))
      expect(isCallsheetDbError(error, 'TIMEOUT')).toBe(true)
      expect(error.retryable).toBe(true)
    } finally {
      await db.close()
    }
  })

  it('a process that used the library exits by itself after close()', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/exit-after-close.ts', engine.url!],
      // A hang bound, below the test's own: starting node with tsx takes seconds on a loaded machine.
      { timeout: 100_000 },
    )
    expect(stdout.trim()).toBe('closed')
  })

  it('createTenantClient uses the database configured from DATABASE_URL', async () => {
    const saved = process.env.DATABASE_URL
    process.env.DATABASE_URL = engine.url!
    try {
      const db = createDatabase({ primary: engine.url! })
      const org = await db.organizations.create({ name: 'Env', slug: `env-${Date.now().toString(36)}` })
      await db.close()
      const tenant = createTenantClient(org.id, { requestId: 'env-test' })
      await tenant.departments.create({ name: 'Env', code: 'ENV' })
      expect(await tenant.departments.count()).toBe(1)
    } finally {
      await closeDefaultDatabase()
      if (saved === undefined) delete process.env.DATABASE_URL
      else process.env.DATABASE_URL = saved
    }
    delete process.env.DATABASE_URL
    expect(() => createTenantClient('0192f0d4-8d3e-7c2a-9b1e-3f4a5b6c7d8e')).toThrow(/DATABASE_URL is not set/)
    if (saved !== undefined) process.env.DATABASE_URL = saved
  })

  it('contacts.search is served by the trigram GIN index on realistic data (EXPLAIN)', async () => {
    const logged: { sql: string; params: unknown[] }[] = []
    const db = createDatabase({
      primary: engine.url!,
      logger: { debug: (_m, f) => logged.push({ sql: String(f?.sql), params: (f?.params as unknown[]) ?? [] }) },
    })
    try {
      // Realistic: many tenants sharing the table, each with a contact book of its own (20 × 5,000). With
      // only a few hundred rows per tenant the planner rightly prefers scanning the tenant's rows.
      let orgId = ''
      // No autovacuum ANALYZE after the inserts: its sampled statistics would replace the full ones taken
      // below, and with them the plan (seen once in a full run: the btree on (organization_id, upload_id)).
      await engine.admin.exec('alter table contacts set (autovacuum_enabled = off)')
      for (let t = 0; t < 20; t++) {
        const org = await db.organizations.create({
          name: `Explain ${t}`,
          slug: `explain-${t}-${Date.now().toString(36)}`,
        })
        const production = await db.tenant(org.id).productions.create({ title: `Feature ${t}` })
        await engine.admin.query(
          `insert into contacts (organization_id, production_id, name)
           select $1, $2, (array['Jon','Joanna','Maria','Ade','Priya','Tomasz','Aiko','Lars','Fatima','Diego',
                                 'Kwame','Sofia','Olga','Raj','Chen','Emma','Noah','Liam','Zara','Yusuf'])[1 + (i * 7) % 20]
                  || ' ' || (array['Smith','Okafor','Lopez','Nowak','Tanaka','Berg','Haddad','Garcia','Murphy','Singh',
                                   'Kowalski','Rossi','Dubois','Kim','Ivanova','Adeyemi','Costa','Silva','Novak','Fischer'])[1 + (i * 13 / 20) % 20]
                  || ' ' || (i % 997)
           from generate_series(1, 5000) i`,
          [org.id, production.id],
        )
        orgId = org.id
      }
      // Statistics from every row, not ANALYZE's random 30,000-row sample: with a sample, the estimates (and
      // so the plan) moved from run to run, and the btree on (organization_id, upload_id) won once.
      await engine.admin.exec(
        'set default_statistics_target = 10000; analyze contacts; reset default_statistics_target',
      )
      logged.length = 0
      const hits = await db.tenant(orgId).contacts.search('jon smth', { limit: 20 })
      expect(hits.length).toBeGreaterThan(0)
      // The search itself, not the threshold it sets before it.
      const query = logged.find((q) => q.sql.includes(' % '))
      expect(query).toBeDefined()
      const plan = await asAppRole(engine.admin, orgId, (tx) =>
        tx.query<{ 'QUERY PLAN': unknown }>(`explain (format json) ${query!.sql}`, query!.params),
      )
      const text = JSON.stringify(plan)
      expect(text, JSON.stringify(plan, null, 1).slice(0, 3000)).toContain('contacts_name_trgm_idx')
    } finally {
      await db.close()
    }
  }, 60_000)
})
