import { expect, it } from 'vitest'
import { createDatabase, isCallsheetDbError, withRetry, type Database, type TenantClient } from '../src'
import { describeEachDatabase } from './harness/engines'

// Issue 14: a unit of work started from inside another unit of the same database (the outer client inside
// tenant.transaction(fn), another tenant's client, db.apiKeys.verify, a nested tenant.read) used to wait
// forever on PGlite (one session) and took a second connection on a server. It now fails at once with
// InvalidStateError; independent concurrent units (Promise.all) are not mistaken for nested ones.

// Each case must settle quickly: a hang is the bug being tested.
const settlesWithin = <T>(work: Promise<T>, ms = 5000): Promise<T> =>
  Promise.race([
    work,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms)),
  ])

const failure = async (work: Promise<unknown>): Promise<unknown> => {
  try {
    await settlesWithin(work)
  } catch (error) {
    return error
  }
  return undefined
}

const expectNested = (error: unknown) => {
  expect(isCallsheetDbError(error, 'INVALID_STATE'), String(error)).toBe(true)
  expect((error as Error).message).toMatch(/use the handle the callback receives \(tx\.contacts…\)/)
}

describeEachDatabase(
  'nested units of work',
  (ctx) => {
    let seq = 0
    const tenantOf = async (db: Database, label: string): Promise<TenantClient> => {
      const org = await db.organizations.create({
        name: label,
        slug: `${label}-${Date.now().toString(36)}-${seq++}`,
      })
      return db.tenant(org.id, { requestId: label })
    }

    it('the outer client inside transaction(fn) fails at once; the transaction then rolls back; tx still works', async () => {
      const { db } = ctx()
      const tenant = await tenantOf(db, 'nest-outer')
      const p = await tenant.productions.create({ title: 'Nest' })
      const started = performance.now()
      let inner: unknown
      const outcome = await failure(
        tenant.transaction(async (tx) => {
          await tx.contacts.create({ productionId: p.id, name: 'Written by tx' })
          try {
            await tenant.contacts.findMany()
          } catch (error) {
            inner = error
            throw error
          }
        }),
      )
      expect(performance.now() - started).toBeLessThan(3000)
      expectNested(inner)
      expect(outcome).toBe(inner)
      // The transaction rolled back: the tx's write is gone.
      expect(await tenant.contacts.count()).toBe(0)

      // Every way of reaching the same database from inside: writes, another tenant, a read unit, a key check.
      const other = await tenantOf(db, 'nest-other')
      const attempts: ((tx: unknown) => Promise<unknown>)[] = [
        () => tenant.contacts.create({ productionId: p.id, name: 'outer write' }),
        () => tenant.productions.getById(p.id),
        () => tenant.transaction(async () => 1),
        () => tenant.read(async () => 1),
        () => tenant.withContext({ requestId: 'copy' }).contacts.count(),
        () => db.tenant(tenant.organizationId).contacts.count(),
        () => other.contacts.count(),
        () => db.apiKeys.verify(`csk_${'a'.repeat(32)}_${'a'.repeat(64)}`),
        // The owner's statements outside units wait for a connection too (forever on PGlite).
        () => db.organizations.findById(tenant.organizationId),
        () => db.maintenance.ensureAuditPartitions(),
      ]
      for (const attempt of attempts) {
        let seen: unknown
        await failure(
          tenant.transaction(async (tx) => {
            seen = await failure(attempt(tx))
          }),
        )
        expectNested(seen)
      }

      // Caught inside, the transaction goes on and commits what tx wrote (the refused call sent nothing).
      await settlesWithin(
        tenant.transaction(async (tx) => {
          await tx.contacts.create({ productionId: p.id, name: 'Kept' })
          expectNested(await failure(tenant.contacts.count()))
          expect(await tx.contacts.count()).toBe(1)
        }),
      )
      // After the transaction, the outer client works again.
      expect((await tenant.contacts.findMany()).rows.map((c) => c.name)).toEqual(['Kept'])
      expect(await other.contacts.count()).toBe(0)
    })

    it('tenant.read(fn) nests the same way: the outer client inside fails at once, r works', async () => {
      const { db } = ctx()
      const tenant = await tenantOf(db, 'nest-read')
      await tenant.productions.create({ title: 'Read nest' })
      let seen: unknown
      const counted = await settlesWithin(
        tenant.read(async (r) => {
          seen = await failure(tenant.productions.count())
          return r.productions.count()
        }),
      )
      expectNested(seen)
      expect(counted).toBe(1)
    })

    it('a write hook that uses the outer client fails the write at once and writes nothing', async () => {
      const { engine } = ctx()
      let outer: TenantClient | undefined
      const hooked = createDatabase({
        primary: engine.pglite ?? engine.url!,
        pool: { max: 2 },
        hooks: [
          {
            name: 'looks-up-through-the-outer-client',
            beforeWrite: async (event) => {
              if (event.entity === 'contacts') await outer?.productions.count()
            },
          },
        ],
      })
      try {
        const tenant = await tenantOf(hooked, 'nest-hook')
        outer = tenant
        const p = await tenant.productions.create({ title: 'Hooked' })
        expectNested(await failure(tenant.contacts.create({ productionId: p.id, name: 'Never' })))
        outer = undefined
        expect(await tenant.contacts.count()).toBe(0)
      } finally {
        await hooked.close()
      }
    })

    it('withRetry around the outer client inside a transaction: refused at once, not retried', async () => {
      const { db } = ctx()
      const tenant = await tenantOf(db, 'nest-retry')
      let retries = 0
      let seen: unknown
      await settlesWithin(
        tenant.transaction(async () => {
          seen = await failure(withRetry(() => tenant.contacts.count(), { onRetry: () => retries++ }))
        }),
      )
      expectNested(seen)
      expect(retries).toBe(0)
    })

    it('independent concurrent units are not nested: Promise.all of tenants, of transactions, and inside a tx', async () => {
      const { db } = ctx()
      const a = await tenantOf(db, 'conc-a')
      const b = await tenantOf(db, 'conc-b')
      const pa = await a.productions.create({ title: 'A' })
      const pb = await b.productions.create({ title: 'B' })
      // Many units at once, started from one async context (the trap: a store leaking through Promise.all).
      const results = await settlesWithin(
        Promise.all([
          a.productions.count(),
          b.productions.count(),
          a.transaction((tx) => tx.contacts.create({ productionId: pa.id, name: 'a1' })),
          b.transaction((tx) => tx.contacts.create({ productionId: pb.id, name: 'b1' })),
          a.read((r) => r.productions.count()),
          ...Array.from({ length: 10 }, (_, i) =>
            (i % 2 === 0 ? a : b).transaction(async (tx) => {
              await tx.productions.count()
              return tx.productions.count()
            }),
          ),
        ]),
        20_000,
      )
      expect(results.slice(0, 2)).toEqual([1, 1])
      expect(results.every((r) => r !== undefined)).toBe(true)
      // Units started one after another from a unit's continuation, and inside a tx with Promise.all on tx.
      await a.transaction(async (tx) => {
        const [n, m] = await Promise.all([tx.contacts.count(), tx.productions.count()])
        expect([n, m]).toEqual([1, 1])
      })
      expect(await a.contacts.count()).toBe(1)
      // Work a unit's callback left behind (a timer) may start units once that unit has ended.
      const later = await a.transaction(async () => ({
        count: new Promise<number>((resolve, reject) => {
          setTimeout(() => a.contacts.count().then(resolve, reject), 50)
        }),
      }))
      expect(await settlesWithin(later.count)).toBe(1)
      expect(await b.contacts.count()).toBe(1)
    })

    it('a unit of another database inside a unit is allowed (on PGlite only when it is another instance)', async () => {
      const { db, engine } = ctx()
      const tenant = await tenantOf(db, 'nest-db')
      if (engine.name === 'postgres') {
        const second = createDatabase({ primary: engine.url!, pool: { max: 2 } })
        try {
          const other = await tenantOf(second, 'nest-db2')
          const n = await settlesWithin(tenant.transaction(() => other.productions.count()))
          expect(n).toBe(0)
        } finally {
          await second.close()
        }
      } else {
        // Two databases over one PGlite instance share its one session: still a nested unit.
        const same = createDatabase({ primary: engine.pglite! })
        const other = await tenantOf(same, 'nest-db2')
        expectNested(await failure(tenant.transaction(() => other.productions.count())))
      }
    })
  },
  { pool: { max: 1 } },
)
