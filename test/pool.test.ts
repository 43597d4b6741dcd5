import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, isCallsheetDbError, withRetry, type Database, type TenantClient } from '../src'
import type { CallsheetDbError } from '../src/errors'
import { migrate } from '../src/migrations/migrate'
import { localBinariesAvailable, startLocalCluster, type LocalClusterHandle } from '../tools/local-cluster'
import { asRuntimeLogin, createScratchDatabase, runtimeLoginUrl, withDatabase } from '../tools/postgres-server'
import { rawRead } from './support/raw-read'
import { settledWithin, waitFor } from './support/promises'

// The pool across a restart of the primary, and units that reach a standby, on a primary + streaming
// replica of this suite's own (it restarts the primary, which a shared server must not see). No clock is
// asserted: what a stranded waiter looks like is an ACQUIRE_TIMEOUT or a unit that never settles, and each
// wait below is a hang bound only. The operator's view of the same faults (a steady workload, a failover
// formation, the figures) is test/failover.test.ts.

const binaries = await localBinariesAvailable()
if (!binaries.ok) {
  const message = `pool suites SKIPPED: no local PostgreSQL binaries (${binaries.reason})`
  if (process.env.CALLSHEET_REQUIRE_SERVER === '1') throw new Error(`CALLSHEET_REQUIRE_SERVER=1 but ${message}`)
  console.warn(`\n!! ${message}\n`)
}

describe.runIf(binaries.ok)('pool: restarts and standbys [postgres]', () => {
  let cluster: LocalClusterHandle
  let ownerUrl: string
  let primaryUrl: string
  let replicaUrl: string
  let dropScratch: () => Promise<void>
  let owner: postgres.Sql
  const opened: Database[] = []
  const open = (config: Partial<Parameters<typeof createDatabase>[0]> = {}) => {
    const db = createDatabase({ primary: primaryUrl, ...config })
    opened.push(db)
    return db
  }
  const tenantOf = async (db: Database, label: string) => {
    const org = await db.organizations.create({ name: label, slug: `${label}-${randomUUID().slice(0, 8)}` })
    return db.tenant(org.id, { requestId: label })
  }
  /** `held`, or at once the failure of a holder that ended before the fault (a mutation, a bug): never a hang. */
  const heldOrEnded = (held: Promise<void>, holders: readonly Promise<unknown>[]) =>
    Promise.race([
      held,
      ...holders.map((holder) =>
        holder.then(() => {
          throw new Error('a holder ended before the fault')
        }),
      ),
    ])
  /** Until all six units wait for a connection; fails at once when one settled instead. */
  const allQueued = async (db: Database, units: readonly Promise<unknown>[]) => {
    let settled = 0
    for (const unit of units)
      unit.then(
        () => settled++,
        () => settled++,
      )
    await waitFor('six units queued', () => {
      if (settled > 0) throw new Error(`${settled} queued unit(s) settled before the fault`)
      return db.stats().pool.waiting === 6
    })
  }
  /** host:port of a URL, for a multi-host list. */
  const hostOf = (url: string) => new URL(url).host

  beforeAll(async () => {
    cluster = await startLocalCluster()
    const scratch = await createScratchDatabase(cluster.adminUrl)
    await migrate(scratch.url)
    ownerUrl = scratch.url
    primaryUrl = await runtimeLoginUrl(scratch.url)
    replicaUrl = asRuntimeLogin(withDatabase(cluster.replicaUrl, new URL(scratch.url).pathname.slice(1)))
    dropScratch = scratch.drop
    owner = postgres(ownerUrl, { max: 1, onnotice: () => {} })
    // scripts/mutation-check.ts: break one guarantee on purpose (as test/harness/engines.ts does).
    const mutation = process.env.CALLSHEET_MUTATION_SQL
    if (mutation !== undefined && mutation.trim() !== '') await owner.unsafe(mutation)
    await cluster.waitForReplicaCatchUp()
  }, 120_000)
  afterAll(async () => {
    await Promise.all(opened.map((db) => db.close()))
    await owner?.end({ timeout: 5 })
    await dropScratch?.().catch(() => undefined)
    await cluster?.stop()
  })

  for (const mode of ['fast', 'immediate'] as const) {
    it(`restart -m ${mode}: units queued for a connection get one when the server is back, without a retry; held ones fail retryable`, async () => {
      // Two connections, both held open by units; six more queued behind them. The restart kills the two;
      // the six must then wait for the server and run on it — no ACQUIRE_TIMEOUT (the acquire timeout is a
      // hang bound here, far above any restart), no error at all.
      const db = open({ pool: { max: 2, acquireTimeoutMs: 120_000 } })
      const tenant = await tenantOf(db, `restart-${mode}`)
      const production = await tenant.productions.create({ title: `Restart ${mode}` })
      let holding = 0
      let allHeld!: () => void
      const held = new Promise<void>((resolve) => (allHeld = resolve))
      const holders = [0, 1].map((i) =>
        tenant.transaction(async (tx) => {
          await tx.contacts.create({ productionId: production.id, name: `Holder ${i}` })
          if (++holding === 2) allHeld()
          await new Promise(() => undefined) // until the restart takes the connection away
        }),
      )
      const holdersSettled = Promise.allSettled(holders) // they fail during the restart: handled from now on
      await heldOrEnded(held, holders)
      const queuedIds = Array.from({ length: 6 }, () => randomUUID())
      const queued = queuedIds.map((id, i) =>
        tenant.contacts.create({ id, productionId: production.id, name: `Queued ${i}` }),
      )
      const queuedSettled = Promise.allSettled(queued)
      await allQueued(db, queued)
      await cluster.restartPrimary(mode)
      const holderOutcomes = await settledWithin(holdersSettled, 120_000, 'the held units')
      for (const outcome of holderOutcomes) {
        expect(outcome.status).toBe('rejected')
        const error = (outcome as PromiseRejectedResult).reason as CallsheetDbError
        expect(isCallsheetDbError(error, 'CONNECTION_ERROR'), String(error)).toBe(true)
        expect(error.retryable).toBe(true)
      }
      const created = await settledWithin(queuedSettled, 120_000, 'the queued units')
      expect(created.map((o) => (o.status === 'fulfilled' ? o.value.id : String(o.reason)))).toEqual(queuedIds)
      // Exactly the queued contacts: nothing of the killed holders.
      const rows = await owner<{ name: string }[]>`
        select name from contacts where production_id = ${production.id} order by name`
      expect(rows.map((r) => r.name)).toEqual(queuedIds.map((_, i) => `Queued ${i}`))
      // The pool whole again: both connections serve units at once.
      await Promise.all([0, 1].map(() => tenant.transaction(async (tx) => tx.contacts.count())))
      await waitFor('connections back in the pool', () => db.stats().pool.inUse === 0)
      expect(db.stats().pool).toEqual({ inUse: 0, waiting: 0, max: 2 })
    }, 240_000)
  }

  it('every app backend terminated while units wait: the waiting units run on fresh connections, without a retry', async () => {
    const db = open({ pool: { max: 2, acquireTimeoutMs: 120_000 } })
    const tenant = await tenantOf(db, 'terminated')
    const production = await tenant.productions.create({ title: 'Terminated' })
    let holding = 0
    let allHeld!: () => void
    const held = new Promise<void>((resolve) => (allHeld = resolve))
    const holders = [0, 1].map(() =>
      tenant.transaction(async () => {
        if (++holding === 2) allHeld()
        await new Promise(() => undefined)
      }),
    )
    const holdersSettled = Promise.allSettled(holders)
    await heldOrEnded(held, holders)
    const queuedUnits = Array.from({ length: 6 }, (_, i) =>
      tenant.contacts.create({ productionId: production.id, name: `After ${i}` }),
    )
    const queued = Promise.allSettled(queuedUnits)
    await allQueued(db, queuedUnits)
    await owner`select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and application_name = 'callsheet-db'`
    expect((await settledWithin(holdersSettled, 120_000, 'held')).map((o) => o.status)).toEqual([
      'rejected',
      'rejected',
    ])
    const created = await settledWithin(queued, 120_000, 'queued')
    expect(
      created.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)),
    ).toEqual([])
    expect(await tenant.contacts.count({ where: { productionId: production.id } })).toBe(6)
  }, 240_000)

  it('a standby named as the primary: every unit refused before it ran (CS005, retryable CONNECTION_ERROR), reads too', async () => {
    const onPrimary = open()
    const tenant = await tenantOf(onPrimary, 'standby')
    const production = await tenant.productions.create({ title: 'Standby' })
    await cluster.waitForReplicaCatchUp()
    const db = open({ primary: replicaUrl })
    const onStandby = db.tenant(tenant.organizationId)
    for (const attempt of [
      () => onStandby.contacts.create({ productionId: production.id, name: 'Never written' }),
      () => onStandby.productions.findById(production.id),
      () => onStandby.transaction(async (tx) => tx.contacts.count()),
    ]) {
      const error = (await attempt().catch((e: unknown) => e)) as CallsheetDbError
      expect(isCallsheetDbError(error, 'CONNECTION_ERROR'), String(error)).toBe(true)
      expect(error.sqlState).toBe('CS005')
      expect(error.retryable).toBe(true)
      expect(error.message).toMatch(/not the primary/)
    }
    expect(await tenant.contacts.count({ where: { productionId: production.id } })).toBe(0)
    expect(db.stats().pool.inUse).toBe(0)
  }, 120_000)

  it('a multi-host URL with the standby listed first: writes land on the primary only (after retries of CS005)', async () => {
    const multi = new URL(primaryUrl)
    const url = primaryUrl.replace(multi.host, `${hostOf(replicaUrl)},${multi.host}`)
    const db = open({ primary: url, pool: { max: 3 } })
    const tenant = await tenantOf(open(), 'multi-host')
    const production = await tenant.productions.create({ title: 'Multi-host' })
    const client = db.tenant(tenant.organizationId)
    const retried: string[] = []
    const ids: string[] = []
    for (let i = 0; i < 12; i++) {
      const id = randomUUID()
      const recovery = await withRetry(
        () =>
          client.transaction(async (tx) => {
            await tx.contacts.create({ id, productionId: production.id, name: `Multi ${i}` })
            return (
              await rawRead<{ recovery: boolean }>(
                tx as unknown as TenantClient,
                'select pg_is_in_recovery() as recovery',
              )
            ).recovery
          }),
        { onRetry: (error) => retried.push(`${error.code}/${error.sqlState ?? ''}`) },
      )
      expect(recovery).toBe(false)
      ids.push(id)
    }
    // Each slot's first connection reached the standby, was refused and dropped; the next went to the primary.
    expect(retried.length).toBeGreaterThan(0)
    expect(new Set(retried)).toEqual(new Set(['CONNECTION_ERROR/CS005']))
    const rows = await owner<{ id: string }[]>`select id from contacts where production_id = ${production.id}`
    expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort())
  }, 120_000)

  it('a primary that turned read-only (default_transaction_read_only, as while demoting): writes refused with CS005, reads served', async () => {
    const db = open()
    const tenant = await tenantOf(db, 'read-only')
    const production = await tenant.productions.create({ title: 'Read-only' })
    await owner`alter system set default_transaction_read_only = on`
    await owner`select pg_reload_conf()`
    try {
      // The reload reaches sessions asynchronously: write until a write is refused (those before it count).
      let error: unknown
      let refusedId = ''
      await waitFor('the primary read-only', async () => {
        refusedId = randomUUID()
        error = await tenant.contacts
          .create({ id: refusedId, productionId: production.id, name: 'Maybe refused' })
          .then(
            () => undefined,
            (e: unknown) => e,
          )
        // Written (the reload not seen yet): try again. Refused for another reason: fail now.
        if (error !== undefined && !isCallsheetDbError(error, 'CONNECTION_ERROR')) throw error
        return error !== undefined
      })
      expect((error as CallsheetDbError).sqlState).toBe('CS005')
      expect(await tenant.contacts.findById(refusedId)).toBeUndefined()
      expect(await tenant.productions.findById(production.id)).toMatchObject({ id: production.id })
    } finally {
      await owner`alter system reset default_transaction_read_only`
      await owner`select pg_reload_conf()`
    }
    const written = randomUUID()
    await waitFor('the primary writable', async () =>
      tenant.contacts.create({ id: written, productionId: production.id, name: 'Written' }).then(
        () => true,
        (e: unknown) => {
          if (isCallsheetDbError(e, 'CONNECTION_ERROR')) return false // the reset not seen yet
          throw e
        },
      ),
    )
    expect(await tenant.contacts.findById(written)).toMatchObject({ name: 'Written' })
  }, 120_000)
})
