import { createServer, type Server } from 'node:net'
import { sql } from 'drizzle-orm'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, isCallsheetDbError, type Database, type TenantClient } from '../src'
import { migrate } from '../src/migrations/migrate'
import { localBinariesAvailable, startLocalCluster, type LocalClusterHandle } from '../tools/local-cluster'
import { pgbouncerAvailable, startPgBouncer } from '../tools/pgbouncer'
import {
  RUNTIME_LOGIN,
  asRuntimeLogin,
  createScratchDatabase,
  runtimeLoginUrl,
  withDatabase,
} from '../tools/postgres-server'
import { waitFor } from './support/promises'
import { rawRead } from './support/raw-read'
import type { Router } from '../src/routing/router'
import { formatLsn, type WriteWatermark } from '../src/routing/consistency'

// Read/write routing on a real primary + asynchronous streaming replica of this suite's own (it stops
// the replica and delays its replay, which a shared server must not see), and through a real PgBouncer.

const binaries = await localBinariesAvailable()
const bouncer = await pgbouncerAvailable()
const required = process.env.CALLSHEET_REQUIRE_SERVER === '1'
if (!binaries.ok) {
  const message = `replica routing suites SKIPPED: no local PostgreSQL binaries (${binaries.reason})`
  if (required) throw new Error(`CALLSHEET_REQUIRE_SERVER=1 but ${message}`)
  console.warn(`\n!! ${message}\n`)
}
if (binaries.ok && !bouncer.ok) {
  const message = `PgBouncer suite SKIPPED: ${bouncer.reason} (apt-get install pgbouncer)`
  if (required) throw new Error(`CALLSHEET_REQUIRE_SERVER=1 but ${message}`)
  console.warn(`\n!! ${message}\n`)
}

const SHARED_SECRET = 'replica-suite-secret-0123456789abcdef'
const liveRows = (tenant: TenantClient, label: string) => tenant.productions.create({ title: `${label} picture` })

describe.runIf(binaries.ok)('replica routing [postgres]', () => {
  let cluster: LocalClusterHandle
  let primaryUrl: string
  let ownerUrl: string
  let replicaUrl: string
  let dropScratch: () => Promise<void>
  const opened: Database[] = []
  const open = (config: Partial<Parameters<typeof createDatabase>[0]> = {}) => {
    const db = createDatabase({ primary: primaryUrl, replicas: [replicaUrl], pool: { max: 8 }, ...config })
    opened.push(db)
    return db
  }
  const tenantOf = async (db: Database, label: string) => {
    const org = await db.organizations.create({ name: label, slug: `${label}-${Date.now().toString(36)}` })
    return db.tenant(org.id, { requestId: label })
  }

  beforeAll(async () => {
    // Recovery conflicts are resolved quickly (hot_standby_feedback stays on: only lock conflicts remain).
    cluster = await startLocalCluster({ replicaSettings: { max_standby_streaming_delay: '100ms' } })
    const scratch = await createScratchDatabase(cluster.adminUrl)
    await migrate(scratch.url)
    // The deployment secret two "processes" below share, installed beside this run's own (both stay valid).
    await migrate(scratch.url, { secret: SHARED_SECRET })
    ownerUrl = scratch.url
    primaryUrl = await runtimeLoginUrl(scratch.url)
    replicaUrl = asRuntimeLogin(withDatabase(cluster.replicaUrl, new URL(scratch.url).pathname.slice(1)))
    dropScratch = scratch.drop
    await cluster.waitForReplicaCatchUp()
  })
  afterAll(async () => {
    await Promise.all(opened.map((db) => db.close()))
    await cluster?.setReplicaApplyDelay(0).catch(() => undefined)
    await dropScratch?.().catch(() => undefined)
    await cluster?.stop()
  })

  it('tenant reads run on the replica (READ ONLY, same tenant settings); writes and transactions on the primary', async () => {
    const db = open()
    const tenant = await tenantOf(db, 'where')
    const p = await liveRows(tenant, 'where')
    const c = await tenant.contacts.create({ productionId: p.id, name: 'Rhea Replica', email: 'rhea@example.com' })
    const seen = await rawRead<{ recovery: boolean; ro: string; org: string; role: string; request: string }>(
      tenant,
      "select pg_is_in_recovery() as recovery, current_setting('transaction_read_only') as ro, " +
        "current_setting('app.organization_id') as org, current_user as role, current_setting('app.request_id') as request",
    )
    expect(seen).toEqual({
      recovery: true,
      ro: 'on',
      org: tenant.organizationId,
      role: 'callsheet_app',
      request: 'where',
    })

    const before = db.stats().routing.reads.replica
    expect((await tenant.contacts.findById(c.id))?.name).toBe('Rhea Replica')
    expect((await tenant.contacts.findMany()).rows).toHaveLength(1)
    expect(await tenant.contacts.count()).toBe(1)
    expect((await tenant.contacts.search('rhea replca')).length).toBe(1)
    expect((await tenant.auditLogs.history('contacts', c.id)).rows.length).toBeGreaterThan(0)
    expect(await tenant.read((r) => r.productions.count())).toBe(1)
    expect(db.stats().routing.reads.replica - before).toBe(6)

    // The primary: transaction(fn), and consistency 'primary' (per client and per read).
    const inTx = await tenant.transaction(async (tx) => {
      await tx.contacts.create({ productionId: p.id, name: 'Tx Person' })
      return rawRead<{ recovery: boolean }>(tx as unknown as TenantClient, 'select pg_is_in_recovery() as recovery')
    })
    expect(inTx.recovery).toBe(false)
    const onPrimary = tenant.withConsistency('primary')
    expect((await rawRead<{ recovery: boolean }>(onPrimary, 'select pg_is_in_recovery() as recovery')).recovery).toBe(
      false,
    )
    const primaryReads = db.stats().routing.reads.primary
    expect(await tenant.read((r) => r.contacts.count(), { consistency: 'primary' })).toBe(2)
    expect(db.stats().routing.reads.primary).toBe(primaryReads + 1)
  })

  it('onQuery names the replica a read ran on, and the primary for writes', async () => {
    const targets: string[] = []
    const db = open({ onQuery: (event) => targets.push(event.target) })
    const tenant = await tenantOf(db, 'observed')
    const p = await liveRows(tenant, 'observed')
    targets.length = 0
    await tenant.productions.findById(p.id)
    expect(targets).toEqual([db.stats().routing.replicas[0]?.name])
    expect(targets[0]).toBe(`127.0.0.1:${new URL(replicaUrl).port}`)
    targets.length = 0
    await tenant.productions.update(p.id, { title: 'Observed again' })
    expect(targets).toEqual(['primary'])
  })

  it('another tenant gets not-found on the replica too, and the replica never takes a write', async () => {
    const db = open()
    const a = await tenantOf(db, 'iso-a')
    const b = await tenantOf(db, 'iso-b')
    const p = await liveRows(a, 'iso-a')
    const c = await a.contacts.create({ productionId: p.id, name: 'Private Person' })
    const before = db.stats().routing.reads.replica
    expect(await b.contacts.findById(c.id)).toBeUndefined()
    expect(await b.productions.findById(p.id)).toBeUndefined()
    expect(await b.contacts.count()).toBe(0)
    expect(await b.contacts.search('Private Person')).toEqual([])
    expect(db.stats().routing.reads.replica - before).toBe(4)
    // A write inside a replica read is refused by the library before anything is sent.
    const error = await a.read((r) => r.contacts.create({ productionId: p.id, name: 'Nope' })).catch((e: unknown) => e)
    expect(isCallsheetDbError(error, 'INVALID_STATE')).toBe(true)
    expect(await a.withConsistency('primary').contacts.count()).toBe(1)
  })

  it('with replay held back, 1,000 write-then-read pairs give zero stale reads; a carried token works the same', async () => {
    await cluster.setReplicaApplyDelay(300)
    try {
      // Two processes of one deployment: tokens travel between them through the shared secret.
      const db = open({ secret: SHARED_SECRET })
      const other = open({ secret: SHARED_SECRET })
      const tenant = await tenantOf(db, 'ryw')
      const p = await liveRows(tenant, 'ryw')
      let stale = 0
      let staleCarried = 0
      for (let i = 0; i < 1000; i++) {
        if (i % 2 === 0) {
          const c = await tenant.contacts.create({ productionId: p.id, name: `Pair ${i}` })
          if ((await tenant.contacts.findById(c.id))?.name !== `Pair ${i}`) stale++
          const carried = other.tenant(tenant.organizationId, {}, { consistencyToken: tenant.consistencyToken })
          if ((await carried.contacts.findById(c.id))?.name !== `Pair ${i}`) staleCarried++
        } else {
          await tenant.productions.update(p.id, { title: `Take ${i}` })
          if ((await tenant.productions.getById(p.id)).title !== `Take ${i}`) stale++
          const carried = other.tenant(tenant.organizationId, {}, { consistencyToken: tenant.consistencyToken })
          if ((await carried.productions.getById(p.id)).title !== `Take ${i}`) staleCarried++
        }
      }
      expect(stale).toBe(0)
      expect(staleCarried).toBe(0)
      // The delay was real: reads that ignore the token ('eventual') do see old data. Held back far longer
      // for this check, so that a busy machine cannot take 300 ms between the write and the read.
      await cluster.setReplicaApplyDelay(30_000)
      const c = await tenant.contacts.create({ productionId: p.id, name: 'Fresh' })
      expect(await tenant.withConsistency('eventual').contacts.findById(c.id)).toBeUndefined()
      // The gate sent the held-back reads to the primary.
      const routing = db.stats().routing
      expect(routing.fallbacks.behind).toBeGreaterThan(0)
      expect(other.stats().routing.fallbacks.behind).toBeGreaterThan(0)
    } finally {
      await cluster.setReplicaApplyDelay(0)
      await cluster.waitForReplicaCatchUp()
    }
  }, 120_000)

  it('issued tokens are opaque and authenticated: bound to their organization and to the deployment secret', async () => {
    const db = open({ secret: SHARED_SECRET })
    const tenant = await tenantOf(db, 'tok-a')
    const b = await tenantOf(db, 'tok-b')
    const p = await liveRows(tenant, 'tok')
    const token = tenant.consistencyToken
    expect(token).toMatch(/^v2\.[\w-]{22}$/)
    // The commit's WAL position is nowhere in it, neither as pg_lsn text nor as hex.
    const watermark = (tenant as unknown as { runtime: { watermark: WriteWatermark } }).runtime.watermark
    const lsn = watermark.lsn!
    for (const shown of [formatLsn(lsn), lsn.toString(16), lsn.toString(16).padStart(16, '0'), lsn.toString()]) {
      expect(token!.toLowerCase()).not.toContain(shown.toLowerCase())
    }
    // Each write gives a new token that carries a later position.
    await tenant.productions.update(p.id, { title: 'tok again' })
    expect(tenant.consistencyToken).not.toBe(token)
    const refused = (database: Database, org: string, value: string | undefined) => {
      try {
        database.tenant(org, {}, { consistencyToken: value })
        return undefined
      } catch (error) {
        return error
      }
    }
    // Same organization, another process of the deployment: accepted, and it reads what the token saw.
    const carried = open({ secret: SHARED_SECRET }).tenant(tenant.organizationId, {}, { consistencyToken: token })
    expect((await carried.productions.getById(p.id)).id).toBe(p.id)
    // Another organization: refused (it would learn nothing of A's writes through the gate either).
    expect(isCallsheetDbError(refused(db, b.organizationId, token), 'VALIDATION_FAILED')).toBe(true)
    // Another secret, or no secret (a random key per instance): refused.
    expect(
      isCallsheetDbError(
        refused(open({ secret: `${SHARED_SECRET}-other` }), tenant.organizationId, token),
        'VALIDATION_FAILED',
      ),
    ).toBe(true)
    expect(isCallsheetDbError(refused(open(), tenant.organizationId, token), 'VALIDATION_FAILED')).toBe(true)
  })

  it('without a delay, a read right after a write waits for the replica and is served there', async () => {
    // The longest wait allowed: replay on a busy machine can take seconds; the point is where the read ran.
    const db = open({ routing: { readYourWritesWaitMs: 60_000 } })
    const tenant = await tenantOf(db, 'gate')
    const p = await liveRows(tenant, 'gate')
    let stale = 0
    for (let i = 0; i < 100; i++) {
      const c = await tenant.contacts.create({ productionId: p.id, name: `Gate ${i}` })
      if (!(await tenant.contacts.findById(c.id))) stale++
    }
    expect(stale).toBe(0)
    const routing = db.stats().routing
    expect(routing.reads.replica).toBe(100)
    expect(routing.reads.primary).toBe(0)
    expect(routing.gatedReads).toBeGreaterThan(0)
  })

  it('a replica stopped mid-run loses no read; restarted, it gets reads again', async () => {
    const db = open({ routing: { backoffMs: 100, maxBackoffMs: 200 } })
    const tenant = await tenantOf(db, 'stop')
    const p = await liveRows(tenant, 'stop')
    await tenant.contacts.createMany(Array.from({ length: 50 }, (_, i) => ({ productionId: p.id, name: `Crew ${i}` })))
    const reader = tenant.withConsistency('eventual') // reads that could all go to the replica
    let failures = 0
    let reads = 0
    let done = false
    const worker = async () => {
      while (!done) {
        try {
          const n = await reader.contacts.count()
          if (n !== 50) failures++
        } catch {
          failures++
        }
        reads++
        await new Promise((r) => setTimeout(r, 1))
      }
    }
    // The workers read until each step below has been seen, not for a fixed count: on a busy machine
    // a stop can take longer than any number of reads.
    const workers = Promise.all(Array.from({ length: 4 }, worker))
    let readsAtStop = 0
    try {
      await waitFor('reads on the replica before the stop', () => db.stats().routing.reads.replica > 0)
      await cluster.stopReplica()
      readsAtStop = reads
      await waitFor(
        'reads that met the stopped replica',
        () => (db.stats().routing.replicas[0]?.failures ?? 0) > 0 && reads >= readsAtStop + 50,
      )
    } finally {
      done = true
      await workers
    }
    expect(failures).toBe(0)
    const afterStop = db.stats().routing
    expect(afterStop.fallbacks.replicaError + afterStop.fallbacks.noReplica).toBeGreaterThan(0)
    expect(afterStop.replicas[0]?.failures).toBeGreaterThan(0)
    expect(afterStop.reads.replica).toBeGreaterThan(0) // before the stop

    const startedAt = Date.now()
    await cluster.startReplica()
    console.log(`[replicas] run with the stop: ${reads} reads; replica restarted in ${Date.now() - startedAt} ms`)
    const replicaReadsBefore = db.stats().routing.reads.replica
    await waitFor('reads back on the replica after the restart', async () => {
      expect(await reader.contacts.count()).toBe(50)
      return db.stats().routing.reads.replica > replicaReadsBefore
    })
    console.log(`[replicas] reads back on the replica ${Date.now() - startedAt} ms after the restart began`)
    expect(db.stats().routing.reads.replica).toBeGreaterThan(replicaReadsBefore)
    expect(db.stats().routing.replicas[0]?.state).toBe('up')
  }, 240_000)

  it('a replica over the lag ceiling gets no reads until it catches up', async () => {
    const db = open({ routing: { maxLagMs: 100, lagCheckIntervalMs: 50 } })
    const tenant = await tenantOf(db, 'lag')
    const p = await liveRows(tenant, 'lag')
    // Held back far longer than the test takes, however busy the machine: nothing is replayed meanwhile.
    await cluster.setReplicaApplyDelay(30_000)
    try {
      await tenant.contacts.create({ productionId: p.id, name: 'Lagging' })
      await new Promise((r) => setTimeout(r, 400)) // at least 400 ms behind: over the 100 ms ceiling
      await tenant.contacts.create({ productionId: p.id, name: 'Lagging 2' })
      await db.measureReplicaLag()
      const replica = db.stats().routing.replicas[0]
      expect(replica?.state).toBe('lagging')
      expect(replica?.lagMs).toBeGreaterThan(100)
      expect(replica?.lagBytes).toBeGreaterThan(0)
      const before = db.stats().routing
      expect(await tenant.withConsistency('eventual').contacts.count()).toBe(2) // from the primary
      const after = db.stats().routing
      expect(after.reads.replica).toBe(before.reads.replica)
      expect(after.fallbacks.noReplica).toBe(before.fallbacks.noReplica + 1)
    } finally {
      await cluster.setReplicaApplyDelay(0)
      await cluster.waitForReplicaCatchUp()
    }
    await db.measureReplicaLag()
    expect(db.stats().routing.replicas[0]).toMatchObject({ state: 'up', lagMs: 0 })
  }, 120_000)

  it('a replica that refuses connections or never answers: the read goes to the primary at once, the replica is skipped', async () => {
    // Port 1 refuses; the silent server accepts and never answers (a timeout).
    const silent: Server = createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const silentPort = (silent.address() as { port: number }).port
    try {
      for (const [label, url] of [
        ['refused', 'postgres://postgres@127.0.0.1:1/postgres'],
        ['timeout', `postgres://postgres@127.0.0.1:${silentPort}/postgres`],
      ] as const) {
        const db = createDatabase({
          primary: primaryUrl,
          replicas: [url],
          routing: { replicaConnectTimeoutSeconds: 0.3, backoffMs: 60_000, maxBackoffMs: 60_000 },
        })
        opened.push(db)
        const tenant = await tenantOf(db, `bad-${label}`)
        const p = await liveRows(tenant, `bad-${label}`)
        // "At once" is shown by the counters, not a clock: one attempt on the replica, then four reads
        // straight to the primary while it is in backoff (no connect timeout waited out again).
        for (let i = 0; i < 5; i++) expect((await tenant.productions.findById(p.id))?.id, label).toBe(p.id)
        const routing = db.stats().routing
        expect(routing.fallbacks.replicaError, label).toBe(1) // tried once, then skipped while in backoff
        expect(routing.fallbacks.noReplica, label).toBe(4)
        expect(routing.reads.primary, label).toBe(5)
        expect(routing.replicas[0], label).toMatchObject({ state: 'down', failures: 1 })
        expect(routing.replicas[0]?.lastError, label).toMatch(/CONNECTION_ERROR|ACQUIRE_TIMEOUT/)
      }
    } finally {
      silent.close()
    }
  })

  it('a read cancelled on the replica by a recovery conflict is retried on the primary and gives the right answer', async () => {
    const db = open({ routing: { backoffMs: 50, maxBackoffMs: 50 } })
    const tenant = await tenantOf(db, 'conflict')
    const p = await liveRows(tenant, 'conflict')
    await tenant.contacts.create({ productionId: p.id, name: 'Conflicted' })
    await cluster.waitForReplicaCatchUp()
    const admin = postgres(ownerUrl, { max: 1, onnotice: () => {} })
    let runs = 0
    const recoveries: boolean[] = []
    let holding!: () => void
    const held = new Promise<void>((resolve) => (holding = resolve))
    let letGo!: () => void
    const replayedPastTheLock = new Promise<void>((resolve) => (letGo = resolve))
    try {
      const reading = tenant.read(async (r) => {
        runs++
        const first = await r.contacts.count()
        const recovery = (
          await rawRead<{ recovery: boolean }>(r as unknown as TenantClient, 'select pg_is_in_recovery() as recovery')
        ).recovery
        recoveries.push(recovery)
        // Hold the replica transaction's lock on contacts while the primary takes an exclusive one, until
        // the replica has replayed that lock: it can only do so by cancelling this transaction.
        if (runs === 1) {
          holding()
          if (recovery) await replayedPastTheLock
        }
        return [first, await r.contacts.count()]
      })
      await held
      await admin.begin((tx) => tx`lock table contacts in access exclusive mode`)
      await cluster.waitForReplicaCatchUp(60_000)
      letGo()
      expect(await reading).toEqual([1, 1])
    } finally {
      await admin.end({ timeout: 1 })
    }
    expect(runs).toBe(2) // once on the replica (cancelled), once on the primary
    expect(recoveries).toEqual([true, false])
    const routing = db.stats().routing
    expect(routing.fallbacks.replicaError).toBe(1)
    // Idle in its transaction, the replica backend is terminated (FATAL 40001), so the driver reports the close.
    expect(routing.replicas[0]?.lastError).toMatch(/conflict with recovery|CONNECTION_ERROR/)
    // Once the backoff has passed, the replica serves reads again.
    await waitFor('the replica out of its backoff', () => db.stats().routing.replicas[0]?.state === 'up')
    const before = db.stats().routing.reads.replica
    expect(await tenant.contacts.count()).toBe(1)
    expect(db.stats().routing.reads.replica).toBe(before + 1)
  }, 120_000)

  it('a write whose commit position cannot be read keeps the client on the primary (fails closed)', async () => {
    const db = open()
    const tenant = await tenantOf(db, 'pinned')
    const watermark = (tenant as unknown as { runtime: { watermark: WriteWatermark } }).runtime.watermark
    watermark.pin()
    expect(watermark.pinnedToPrimary).toBe(true)
    // Through the router: a pinned watermark's read-your-writes reads go to the primary.
    const runtime = (tenant as unknown as { runtime: { router: Router } }).runtime
    const before = db.stats().routing
    await runtime.router.read(
      {
        role: 'callsheet_app',
        organizationId: tenant.organizationId,
        actorId: '',
        apiKeyId: '',
        requestId: '',
        ip: '',
        proof: runtime.router.primary.proofs.proof(tenant.organizationId),
      },
      watermark,
      'read-your-writes',
      (d) => d.execute(sql`select 1`),
    )
    expect(db.stats().routing.fallbacks.pinned).toBe(before.fallbacks.pinned + 1)
    // The pin travels with the token: a client started from it reads from the primary too.
    expect(watermark.token).toMatch(/^v2\.[\w-]{22}$/)
    const carried = db.tenant(tenant.organizationId, {}, { consistencyToken: watermark.token })
    const pinned = db.stats().routing.fallbacks.pinned
    expect(await carried.contacts.count()).toBe(0)
    expect(db.stats().routing.fallbacks.pinned).toBe(pinned + 1)
  })
})

describe.runIf(binaries.ok && bouncer.ok)('through PgBouncer [postgres]', () => {
  let cluster: LocalClusterHandle
  let bouncerUrl: string
  let stopBouncer: () => Promise<void>
  let dropScratch: () => Promise<void>
  let scratchUrl: string

  beforeAll(async () => {
    cluster = await startLocalCluster()
    const scratch = await createScratchDatabase(cluster.adminUrl)
    await migrate(scratch.url)
    dropScratch = scratch.drop
    scratchUrl = scratch.url
    const pgb = await startPgBouncer({ targetUrl: scratch.url, poolSize: 2, poolMode: 'transaction' })
    // As production: the runtime login through PgBouncer (auth_query finds it).
    await runtimeLoginUrl(scratch.url)
    bouncerUrl = asRuntimeLogin(pgb.url)
    stopBouncer = pgb.stop
  })
  afterAll(async () => {
    await stopBouncer?.()
    await dropScratch?.().catch(() => undefined)
    await cluster?.stop()
  })

  it('200 concurrent tenant operations across 20 tenants over 2 server connections: zero cross-tenant results', async () => {
    const db = createDatabase({ primary: bouncerUrl, prepare: false, pool: { max: 40 } })
    try {
      const tenants = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const org = await db.organizations.create({ name: `Bouncer ${i}`, slug: `bouncer-${i}-${Date.now()}` })
          const tenant = db.tenant(org.id, { requestId: `bouncer-${i}` })
          const p = await tenant.productions.create({ title: `Picture ${i}` })
          return { tenant, p, i }
        }),
      )
      let violations = 0
      const ops = Array.from({ length: 200 }, async (_, n) => {
        const { tenant, p, i } = tenants[n % 20]!
        const c = await tenant.contacts.create({ productionId: p.id, name: `Person ${i}-${n}` })
        const rows = (await tenant.contacts.findMany({ limit: 100 })).rows
        for (const row of rows) if (row.organizationId !== tenant.organizationId) violations++
        if (!rows.some((r) => r.id === c.id)) violations++
        const seen = await rawRead<{ org: string }>(tenant, "select current_setting('app.organization_id') as org")
        if (seen.org !== tenant.organizationId) violations++
        const hits = await tenant.contacts.search(`Person ${i}-`)
        for (const hit of hits) if (!hit.name.startsWith(`Person ${i}-`)) violations++
      })
      // Meanwhile, count the runtime login's server connections to this database (PgBouncer's auth_query
      // runs on a connection of the owner's).
      const direct = postgres(scratchUrl, { max: 1, onnotice: () => {} })
      let most = 0
      let running = true
      const sampling = (async () => {
        while (running) {
          const [row] = await direct<{ n: number }[]>`
            select count(*)::int as n from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid() and usename = ${RUNTIME_LOGIN}`
          most = Math.max(most, row?.n ?? 0)
          await new Promise((r) => setTimeout(r, 5))
        }
      })()
      try {
        await Promise.all(ops)
      } finally {
        running = false
        await sampling
        await direct.end({ timeout: 1 })
      }
      expect(violations).toBe(0)
      for (const { tenant } of tenants) expect(await tenant.contacts.count()).toBe(10)
      expect(most).toBeGreaterThan(0)
      expect(most).toBeLessThanOrEqual(2)
    } finally {
      await db.close()
    }
  }, 120_000)
})
