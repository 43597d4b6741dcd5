import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, isCallsheetDbError, type Database } from '../src'
import postgres from 'postgres'
import { migrate } from '../src/migrations/migrate'
import { describeEachDatabase } from './harness/engines'
import { localBinariesAvailable, startLocalCluster, type LocalClusterHandle } from '../tools/local-cluster'
import { asRuntimeLogin, createScratchDatabase, runtimeLoginUrl, withDatabase } from '../tools/postgres-server'

const LIBRARY_TABLES = [
  'api_keys',
  'audit_logs',
  'contacts',
  'departments',
  'organizations',
  'productions',
  'uploads',
  'users',
]

const errorOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (e: unknown) => e,
  )

describeEachDatabase('monitoring', (ctx) => {
  it('flags the never-scanned indexes of a fresh database as unused, never a primary or unique one', async () => {
    const { db } = ctx()
    const unused = await db.monitoring.unusedIndexes()
    const names = unused.map((i) => i.index)
    expect(names).toContain('api_keys_created_by_idx')
    expect(names).toContain('uploads_uploaded_by_idx')
    for (const index of unused) {
      expect(index).toMatchObject({ scans: 0, primary: false, unique: false, unused: true })
    }
    const usage = await db.monitoring.indexUsage()
    // Most tenant indexes of a fresh database have never been scanned.
    expect(unused.length).toBeGreaterThan(usage.length / 3)
    const pkey = usage.find((i) => i.index === 'contacts_pkey')
    expect(pkey).toMatchObject({ table: 'contacts', primary: true, unused: false })
  })

  it('reports every library table and index after tenant writes and reads', async () => {
    const { db } = ctx()
    const org = await db.organizations.create({ name: 'Monitor', slug: `monitor-${Date.now().toString(36)}` })
    const tenant = db.tenant(org.id, { requestId: 'monitoring' })
    const production = await tenant.productions.create({ title: 'Monitored picture' })
    for (let i = 0; i < 20; i++) {
      await tenant.contacts.create({ productionId: production.id, name: `Person ${i}`, email: `p${i}@example.com` })
    }
    expect(await tenant.contacts.count()).toBe(20)
    expect((await tenant.contacts.search('Person 1', { limit: 5 })).length).toBeGreaterThan(0)

    const sizes = await db.monitoring.tableSizes()
    expect(sizes.map((s) => s.table).sort()).toEqual(LIBRARY_TABLES)
    for (const size of sizes) {
      expect(size.totalBytes, size.table).toBeGreaterThan(0)
      expect(size.indexBytes, size.table).toBeGreaterThan(0)
      expect(size.totalBytes, size.table).toBe(size.tableBytes + size.indexBytes)
      expect(Number.isInteger(size.rowEstimate), size.table).toBe(true)
    }
    // Largest first.
    expect([...sizes].sort((a, b) => b.totalBytes - a.totalBytes)).toEqual(sizes)
    const contacts = sizes.find((s) => s.table === 'contacts')!
    expect(contacts.tableBytes).toBeGreaterThan(0)
    expect(contacts.partitions).toBe(0)
    // audit_logs is summed over its partitions (DEFAULT + the months migrate() created).
    const audit = sizes.find((s) => s.table === 'audit_logs')!
    expect(audit.partitions).toBeGreaterThanOrEqual(2)

    const usage = await db.monitoring.indexUsage()
    const email = usage.find((i) => i.index === 'contacts_email_live_key')
    expect(email).toMatchObject({ table: 'contacts', unique: true, primary: false, unused: false })
    expect(typeof email!.scans).toBe('number')
    expect(email!.sizeBytes).toBeGreaterThan(0)
    for (const index of usage) {
      expect(Number.isFinite(index.scans)).toBe(true)
      expect(LIBRARY_TABLES).toContain(index.table)
    }
    // A partitioned table's index appears once, under the parent's name, never per partition.
    expect(usage.filter((i) => i.table === 'audit_logs').map((i) => i.index)).toEqual([
      'audit_logs_entity_idx',
      'audit_logs_pkey',
      'audit_logs_user_idx',
    ])
  })

  it('counts connections against max_connections', async () => {
    const { db, engine } = ctx()
    const c = await db.monitoring.connections()
    const sum = Object.values(c.byState).reduce((a, b) => a + b, 0)
    expect(sum).toBe(c.total)
    expect(c.total).toBeGreaterThanOrEqual(1)
    expect(c.currentDatabase).toBeGreaterThanOrEqual(1)
    expect(c.currentDatabase).toBeLessThanOrEqual(c.total)
    expect(c.byState.active).toBeGreaterThanOrEqual(1) // this very query
    expect(c.ratio).toBeCloseTo(c.total / c.max)
    if (engine.name === 'postgres') {
      const [row] = await engine.admin.query<{ max: string }>(`select current_setting('max_connections') as max`)
      expect(c.max).toBe(Number(row!.max))
      expect(c.max).toBeGreaterThan(0)
    } else {
      expect(c).toMatchObject({ total: 1, currentDatabase: 1, max: 1, ratio: 1 })
    }
  })

  it('slowQueries without pg_stat_statements fails with a typed INVALID_STATE error that says what to do', async () => {
    const { db } = ctx()
    const error = await errorOf(db.monitoring.slowQueries())
    expect(isCallsheetDbError(error, 'INVALID_STATE')).toBe(true)
    expect((error as Error).message).toMatch(
      /pg_stat_statements is not installed: add it to shared_preload_libraries.*CREATE EXTENSION pg_stat_statements/,
    )
  })

  it('slowQueries validates its options before any SQL', async () => {
    const { db } = ctx()
    for (const options of [{ limit: 0 }, { limit: 1.5 }, { limit: 1001 }, { minMeanMs: -1 }, { minMeanMs: NaN }]) {
      const error = await errorOf(db.monitoring.slowQueries(options))
      expect(isCallsheetDbError(error, 'VALIDATION_FAILED'), JSON.stringify(options)).toBe(true)
    }
  })

  it('slowQueries with the extension created but not preloaded says so (PGlite: cannot be created at all)', async ({
    skip,
  }) => {
    const { db, engine } = ctx()
    if (engine.name !== 'postgres') {
      const created = await engine.admin.exec('create extension pg_stat_statements').then(
        () => 'created',
        (e: unknown) => String(e),
      )
      expect(created).not.toBe('created')
      expect(isCallsheetDbError(await errorOf(db.monitoring.slowQueries()), 'INVALID_STATE')).toBe(true)
      return
    }
    const [available] = await engine.admin.query<{ n: string }>(
      `select count(*)::text as n from pg_available_extensions where name = 'pg_stat_statements'`,
    )
    if (available?.n !== '1') return skip('pg_stat_statements is not available on this server')
    const [preloaded] = await engine.admin.query<{ libs: string }>(
      `select current_setting('shared_preload_libraries') as libs`,
    )
    if (preloaded?.libs.includes('pg_stat_statements')) return skip('pg_stat_statements is preloaded on this server')
    await engine.admin.exec('create extension if not exists pg_stat_statements')
    try {
      const error = await errorOf(db.monitoring.slowQueries())
      expect(isCallsheetDbError(error, 'INVALID_STATE')).toBe(true)
      expect((error as Error).message).toMatch(
        /created in this database but not loaded: add it to shared_preload_libraries/,
      )
    } finally {
      await engine.admin.exec('drop extension pg_stat_statements')
    }
  })

  it('replicaLag is [] without replicas; pool() is stats().pool', async () => {
    const { db } = ctx()
    expect(await db.monitoring.replicaLag()).toEqual([])
    const pool = await db.monitoring.pool()
    expect(pool).toEqual(db.stats().pool)
    expect(pool.max).toBeGreaterThan(0)
  })
})

// pg_stat_statements needs shared_preload_libraries (a restart): on a private primary + replica of
// this suite's own, which also gives replicaLag() a replica to measure.
const binaries = await localBinariesAvailable()

describe.runIf(binaries.ok)('monitoring with pg_stat_statements and a replica [postgres]', () => {
  let cluster: LocalClusterHandle
  let dropScratch: (() => Promise<void>) | undefined
  let db: Database

  beforeAll(async () => {
    cluster = await startLocalCluster({ primarySettings: { shared_preload_libraries: 'pg_stat_statements' } })
    const scratch = await createScratchDatabase(cluster.adminUrl)
    dropScratch = scratch.drop
    await migrate(scratch.url)
    const runtimeUrl = await runtimeLoginUrl(scratch.url)
    const owner = postgres(scratch.url, { max: 1, onnotice: () => {} })
    try {
      await owner.unsafe('create extension pg_stat_statements')
    } finally {
      await owner.end({ timeout: 5 })
    }
    await cluster.waitForReplicaCatchUp()
    // Units run as callsheet_app, whose statement texts pg_stat_statements shows only to itself and to
    // pg_read_all_stats: monitoring reads them on the admin (owner) connection when there is one.
    db = createDatabase({
      primary: runtimeUrl,
      admin: scratch.url,
      replicas: [asRuntimeLogin(withDatabase(cluster.replicaUrl, scratch.name))],
      pool: { max: 4 },
    })
  })
  afterAll(async () => {
    await db?.close()
    await dropScratch?.().catch(() => undefined)
    await cluster?.stop()
  })

  it('slowQueries lists this database statements by total time, filtered by mean time', async () => {
    const org = await db.organizations.create({ name: 'Slow', slug: `slow-${Date.now().toString(36)}` })
    const tenant = db.tenant(org.id, {}, { consistency: 'primary' })
    const production = await tenant.productions.create({ title: 'Slow picture' })
    for (let i = 0; i < 10; i++) {
      await tenant.contacts.create({ productionId: production.id, name: `Slow ${i}` })
    }
    await db.$primary.execute('select pg_sleep(0.05)')

    const all = await db.monitoring.slowQueries({ limit: 50 })
    expect(all.length).toBeGreaterThan(0)
    expect(all.length).toBeLessThanOrEqual(50)
    for (let i = 1; i < all.length; i++) expect(all[i - 1]!.totalMs).toBeGreaterThanOrEqual(all[i]!.totalMs)
    const insert = all.find((q) => /insert into "contacts"/i.test(q.query))
    expect(insert?.calls).toBe(10)
    expect(insert?.rows).toBe(10)
    const sleep = all.find((q) => q.query.includes('pg_sleep'))
    expect(sleep?.meanMs).toBeGreaterThanOrEqual(45)

    const slow = await db.monitoring.slowQueries({ minMeanMs: 40 })
    expect(slow.length).toBeGreaterThan(0)
    for (const q of slow) expect(q.meanMs).toBeGreaterThanOrEqual(40)
    expect(await db.monitoring.slowQueries({ limit: 1 })).toHaveLength(1)
  })

  it('replicaLag measures each replica now', async () => {
    const asked = Date.now()
    const lag = await db.monitoring.replicaLag()
    expect(lag).toHaveLength(1)
    const [replica] = lag
    expect(replica!.name).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(replica!.state).toBe('up')
    expect(typeof replica!.lagMs).toBe('number')
    expect(typeof replica!.lagBytes).toBe('number')
    expect(replica!.measuredAt).toBeGreaterThanOrEqual(asked) // measured by this call, not earlier
  })
})
