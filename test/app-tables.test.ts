import { and, eq } from 'drizzle-orm'
import { beforeAll, expect, expectTypeOf, it } from 'vitest'
import { ForeignKeyViolationError, InvalidStateError, NotFoundError, ValidationError } from '../src/errors'
import { isCallsheetDbError } from '../src'
import { migrate } from '../src/migrations/migrate'
import { contacts } from '../src/schema'
import type { ChangeEvent, DatabaseHook } from '../src/unit-of-work/hooks'
import { callNotes, callTimes } from './fixtures/app/schema'
import { describeEachDatabase } from './harness/engines'
import { asAppRole, sqlState } from './harness/sql-runner'
import { expectTenantIsolation, TenantIsolationError, type SeededTenant } from '../src/testing'
import type { TenantClient } from '../src'

const APP_MIGRATIONS = 'test/fixtures/app/drizzle'

const seen: string[] = []
const committed: ChangeEvent[] = []
const hooks: DatabaseHook[] = [
  {
    name: 'recorder',
    beforeWrite: (ctx) => {
      if (ctx.entity === 'call_times' || ctx.entity === 'call_notes') seen.push(`${ctx.entity}:${ctx.operation}`)
      return ctx.entity === 'call_times' && ctx.operation === 'insert' ? { location: 'stage 4' } : undefined
    },
    afterCommit: (events) => {
      committed.push(...events)
    },
  },
]

describeEachDatabase(
  "an app's own tenant tables",
  (ctx) => {
    const db = () => ctx().db
    let orgA: string
    let orgB: string
    let contactA: string
    let productionA: string
    let contactB: string
    let productionB: string

    const tenant = (org: string) => db().tenant(org, { actorId: undefined, requestId: 'req-app' })
    const countRows = async (table: string): Promise<number> => {
      const [row] = await ctx().engine.admin.query<{ n: number }>(`select count(*)::int as n from ${table}`)
      return row?.n ?? -1
    }

    beforeAll(async () => {
      const engine = ctx().engine
      await migrate(engine.pglite ?? engine.ownerUrl, { appMigrationsFolder: APP_MIGRATIONS })
      const a = await db().organizations.create({ name: 'App A', slug: 'app-a' })
      const b = await db().organizations.create({ name: 'App B', slug: 'app-b' })
      orgA = a.id
      orgB = b.id
      for (const [org, set] of [
        [orgA, (p: string, c: string) => ((productionA = p), (contactA = c))],
        [orgB, (p: string, c: string) => ((productionB = p), (contactB = c))],
      ] as const) {
        const production = await tenant(org).productions.create({ title: 'The Long Night' })
        const contact = await tenant(org).contacts.create({ productionId: production.id, name: 'Jon Smith' })
        set(production.id, contact.id)
      }
    })

    it('creates through tenant.table(t): validated, the tenant set, hooks run, audited with the context', async () => {
      seen.length = 0
      committed.length = 0
      const row = await tenant(orgA)
        .table(callTimes)
        .create({ contactId: contactA, productionId: productionA, callAt: new Date('2026-12-04T06:30:00Z') })
      expect(row.organizationId).toBe(orgA)
      expect(row.location).toBe('stage 4') // merged by beforeWrite
      expect(row.deletedAt).toBeNull()
      expect(seen).toEqual(['call_times:insert'])
      expect(committed).toEqual([expect.objectContaining({ entity: 'call_times', operation: 'insert', ids: [row.id] })])
      const trail = await tenant(orgA).auditLogs.history('call_times', row.id)
      expect(trail.rows.map((r) => [r.action, r.requestId])).toEqual([['insert', 'req-app']])
    })

    it('refuses bad input with ValidationError and writes nothing', async () => {
      const before = await countRows('call_times')
      const repo = tenant(orgA).table(callTimes)
      for (const input of [
        { contactId: contactA, productionId: productionA }, // callAt missing
        { contactId: 'not-a-uuid', productionId: productionA, callAt: new Date() },
        { contactId: contactA, productionId: productionA, callAt: new Date(), organizationId: orgB },
        { contactId: contactA, productionId: productionA, callAt: new Date(), unknown: 1 },
      ]) {
        await expect(repo.create(input as never)).rejects.toBeInstanceOf(ValidationError)
      }
      expect(await countRows('call_times')).toBe(before)
    })

    it("refuses a reference to another tenant's contact, and leaves no trace", async () => {
      const before = await countRows('call_times')
      const auditBefore = await countRows('audit_logs')
      await expect(
        tenant(orgA).table(callTimes).create({ contactId: contactB, productionId: productionA, callAt: new Date() }),
      ).rejects.toBeInstanceOf(ForeignKeyViolationError)
      expect(await countRows('call_times')).toBe(before)
      expect(await countRows('audit_logs')).toBe(auditBefore)
    })

    it("gives not-found for another tenant's ids, on every read and write", async () => {
      const row = await tenant(orgA)
        .table(callTimes)
        .create({ contactId: contactA, productionId: productionA, callAt: new Date() })
      const other = tenant(orgB).table(callTimes)
      expect(await other.findById(row.id)).toBeUndefined()
      await expect(other.getById(row.id)).rejects.toBeInstanceOf(NotFoundError)
      await expect(other.update(row.id, { location: 'hijacked' })).rejects.toBeInstanceOf(NotFoundError)
      await expect(other.softDelete(row.id)).rejects.toBeInstanceOf(NotFoundError)
      await expect(other.purge(row.id)).rejects.toBeInstanceOf(NotFoundError)
      expect((await other.findMany()).rows.map((r) => r.id)).not.toContain(row.id)
      const mine = await tenant(orgA).table(callTimes).getById(row.id)
      expect(mine.location).toBe('stage 4')
    })

    it('has the vocabulary: pages, filters, count, update, soft delete and restore; no soft delete without deleted_at', async () => {
      const repo = tenant(orgA).table(callTimes)
      const made = await repo.createMany(
        [1, 2, 3].map((sequence) => ({
          contactId: contactA,
          productionId: productionA,
          callAt: new Date(Date.UTC(2027, 0, sequence)),
          sequence,
        })),
      )
      const first = await repo.findMany({ where: { sequence: [1, 2, 3] }, orderBy: 'callAt', limit: 2 })
      expect(first.rows.map((r) => r.sequence)).toEqual([1, 2])
      const rest = await repo.findMany({ where: { sequence: [1, 2, 3] }, orderBy: 'callAt', cursor: first.nextCursor! })
      expect(rest.rows.map((r) => r.sequence)).toEqual([3])
      expect(await repo.count({ where: { sequence: 2 } })).toBe(1)
      await expect(repo.findMany({ orderBy: 'location' as never })).rejects.toBeInstanceOf(ValidationError)
      await expect(
        tenant(orgA)
          .table(callNotes)
          .count({ where: { tags: ['x'] } as never }),
      ).rejects.toBeInstanceOf(ValidationError)
      const updated = await repo.update(made[0]!.id, { location: 'gate 2' })
      expect(updated.updatedAt.getTime()).toBeGreaterThanOrEqual(made[0]!.updatedAt.getTime())
      await repo.softDelete(made[0]!.id)
      expect(await repo.findById(made[0]!.id)).toBeUndefined()
      expect((await repo.findById(made[0]!.id, { deleted: 'include' }))?.deletedAt).toBeInstanceOf(Date)
      await repo.restore(made[0]!.id)
      const notes = tenant(orgA).table(callNotes)
      expect('softDelete' in notes).toBe(false)
      expectTypeOf(notes).not.toHaveProperty('softDelete')
      const note = await notes.create({ callTimeId: made[1]!.id, body: 'bring the long lens', tags: ['camera'] })
      await notes.purge(note.id)
      expect(await notes.findById(note.id)).toBeUndefined()
    })

    it('tx.db writes app tables in the unit, with the tenant set, and reads joined with ours', async () => {
      const result = await tenant(orgA).transaction(async (tx) => {
        const [call] = await tx.db
          .insert(callTimes)
          .values({ contactId: contactA, productionId: productionA, callAt: new Date(), location: 'base camp' })
          .returning()
        await tx.db.insert(callNotes).values([{ callTimeId: call!.id, body: 'early' }])
        await tx.db.update(callTimes).set({ sequence: 7 }).where(eq(callTimes.id, call!.id))
        const joined = await tx.db
          .select({ id: callTimes.id, name: contacts.name, sequence: callTimes.sequence })
          .from(callTimes)
          .innerJoin(
            contacts,
            and(eq(contacts.organizationId, callTimes.organizationId), eq(contacts.id, callTimes.contactId)),
          )
          .where(eq(callTimes.id, call!.id))
        return { call: call!, joined }
      })
      expect(result.call.organizationId).toBe(orgA)
      expect(result.joined).toEqual([{ id: result.call.id, name: 'Jon Smith', sequence: 7 }])
      const trail = await tenant(orgA).auditLogs.history('call_times', result.call.id)
      expect(trail.rows.map((r) => r.action)).toEqual(['update', 'insert']) // newest first
    })

    it('tx.db sees only the tenant: selects, updates and deletes never reach another tenant', async () => {
      const bRow = await tenant(orgB)
        .table(callTimes)
        .create({ contactId: contactB, productionId: productionB, callAt: new Date() })
      await tenant(orgA).transaction(async (tx) => {
        const all = await tx.db.select().from(callTimes)
        expect(all.every((r) => r.organizationId === orgA)).toBe(true)
        expect(await tx.db.select().from(callTimes).where(eq(callTimes.id, bRow.id))).toEqual([])
        expect(await tx.db.select().from(contacts).where(eq(contacts.id, contactB))).toEqual([])
        expect(
          await tx.db.update(callTimes).set({ location: 'x' }).where(eq(callTimes.id, bRow.id)).returning(),
        ).toEqual([])
        expect(await tx.db.delete(callTimes).where(eq(callTimes.id, bRow.id)).returning()).toEqual([])
        expect(await tx.db.$count(callTimes, eq(callTimes.id, bRow.id))).toBe(0)
      })
      expect((await tenant(orgB).table(callTimes).getById(bRow.id)).location).toBe('stage 4')
    })

    it("tx.db refuses another tenant's organization_id and references, with typed errors and no trace", async () => {
      const before = await countRows('call_times')
      const refusal = await tenant(orgA)
        .transaction((tx) =>
          tx.db
            .insert(callTimes)
            .values({ organizationId: orgB, contactId: contactB, productionId: productionB, callAt: new Date() }),
        )
        .catch((e: unknown) => e)
      expect(isCallsheetDbError(refusal)).toBe(true)
      let inside: unknown
      const fk = await tenant(orgA)
        .transaction(async (tx) => {
          try {
            await tx.db.insert(callTimes).values({ contactId: contactB, productionId: productionA, callAt: new Date() })
          } catch (error) {
            inside = error // typed inside fn already
            throw error
          }
        })
        .catch((e: unknown) => e)
      expect(inside).toBeInstanceOf(ForeignKeyViolationError)
      expect(fk).toBeInstanceOf(ForeignKeyViolationError)
      const moved = await tenant(orgA)
        .transaction(async (tx) => {
          const [row] = await tx.db
            .insert(callTimes)
            .values({ contactId: contactA, productionId: productionA, callAt: new Date() })
            .returning()
          await tx.db.update(callTimes).set({ organizationId: orgB }).where(eq(callTimes.id, row!.id))
        })
        .catch((e: unknown) => e)
      expect(isCallsheetDbError(moved)).toBe(true)
      expect(await countRows('call_times')).toBe(before)
    })

    it("tx.db is read-only for the library's tables, and in tenant.read(fn)", async () => {
      await tenant(orgA).transaction(async (tx) => {
        expect(() => tx.db.insert(contacts as never)).toThrow(InvalidStateError)
        expect(() => tx.db.update(contacts as never)).toThrow(InvalidStateError)
        expect(() => tx.db.delete(contacts as never)).toThrow(InvalidStateError)
        expect(await tx.db.query.contacts.findMany({ columns: { id: true } })).toEqual([{ id: contactA }])
      })
      const rows = await tenant(orgA).read(async (r) => {
        expect(() => r.db.insert(callTimes)).toThrow(InvalidStateError)
        return r.db.select({ id: callTimes.id }).from(callTimes)
      })
      expect(rows.length).toBeGreaterThan(0)
    })

    it('tx.db refuses a statement sent after the unit ended', async () => {
      let leaked: (() => Promise<unknown>) | undefined
      await tenant(orgA).transaction(async (tx) => {
        leaked = () =>
          tx.db
            .select()
            .from(callTimes)
            .then((r) => r)
        return Promise.resolve()
      })
      await expect(leaked!()).rejects.toBeInstanceOf(Error)
    })

    it('raw SQL as the app role: app tables keep tenants apart and refuse cross-tenant writes', async () => {
      const admin = ctx().engine.admin
      await asAppRole(admin, orgA, async (tx) => {
        const rows = await tx.query<{ organization_id: string }>('select organization_id from call_times')
        expect(rows.every((r) => r.organization_id === orgA)).toBe(true)
      })
      const refused = await asAppRole(admin, orgA, (tx) =>
        tx.query(
          'insert into call_times (organization_id, contact_id, production_id, call_at) values ($1, $2, $3, now())',
          [orgB, contactB, productionB],
        ),
      ).catch((e: unknown) => e)
      expect(sqlState(refused)).toBe('42501')
      // organization_id defaults to the unit's tenant.
      const [made] = await asAppRole(admin, orgA, (tx) =>
        tx.query<{ organization_id: string }>(
          'insert into call_times (contact_id, production_id, call_at) values ($1, $2, now()) returning organization_id',
          [contactA, productionA],
        ),
      )
      expect(made?.organization_id).toBe(orgA)
    })

    it('expectTenantIsolation covers app tables: an honest probe passes, a leaking one is caught', async () => {
      const seed = async (t: TenantClient, seeded: SeededTenant) => {
        await t.table(callTimes).create({
          contactId: seeded.contacts[0]!.id,
          productionId: seeded.productions[0]!.id,
          callAt: new Date(),
        })
      }
      const options = { tables: [callTimes, callNotes], seed, productions: 1, contactsPerProduction: 1 }
      const report = await expectTenantIsolation(
        db(),
        ({ as, foreign }) => as.table(callTimes).findById(foreign.appIds.call_times![0]!),
        options,
      )
      expect(report.result).toBeUndefined()
      await expect(
        expectTenantIsolation(
          db(),
          ({ db: database, foreign }) => database.tenant(foreign.organizationId).table(callTimes).findMany(),
          options,
        ),
      ).rejects.toBeInstanceOf(TenantIsolationError)
      const changed = await expectTenantIsolation(
        db(),
        async ({ db: database, foreign }) => {
          await database.tenant(foreign.organizationId).table(callTimes).softDelete(foreign.appIds.call_times![0]!)
        },
        options,
      ).catch((e: unknown) => e)
      expect(changed).toBeInstanceOf(TenantIsolationError)
      expect((changed as TenantIsolationError).changes).toEqual([
        expect.stringMatching(/^call_times\/.* deleted_at=null -> .* deleted_at=\d{4}-/),
      ])
    })

    it('tenant.table refuses a table not made by tenantTable', () => {
      expect(() => tenant(orgA).table(contacts as never)).toThrow(/tenantTable/)
    })
  },
  { hooks },
)
