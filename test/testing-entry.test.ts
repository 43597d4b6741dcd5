import { testProof } from './harness/secret'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import {
  createTestDatabase,
  disposeTestTemplate,
  expectTenantIsolation,
  seedTenant,
  TenantIsolationError,
  type TestDatabase,
} from '../src/testing'

const mb = (): number => Math.round(process.memoryUsage().rss / 1e6)

describe('@callsheet/db/testing: createTestDatabase', () => {
  const opened: TestDatabase[] = []
  let first: TestDatabase
  let firstMs = 0

  beforeAll(async () => {
    const rss0 = mb()
    const t0 = performance.now()
    // Concurrent first calls share one template.
    const [x, y] = await Promise.all([createTestDatabase(), createTestDatabase()])
    firstMs = performance.now() - t0
    first = x
    opened.push(x, y)
    console.log(
      `[testing] first two createTestDatabase (template + 2 copies): ${Math.round(firstMs)} ms, rss ${rss0} -> ${mb()} MB`,
    )
  })
  afterAll(async () => {
    await Promise.all(opened.map((db) => db.close()))
    await disposeTestTemplate()
  })

  it('is migrated, with RLS enforced between tenants', async () => {
    expect(first.engine).toBe('pglite')
    const a = await seedTenant(first, { productions: 1, contactsPerProduction: 1 })
    const b = await seedTenant(first, { seed: 2, productions: 1, contactsPerProduction: 1 })
    const contact = a.contacts[0]!
    expect(await a.tenant.contacts.findById(contact.id)).toMatchObject({ id: contact.id })
    expect(await b.tenant.contacts.findById(contact.id)).toBeUndefined()
    // RLS itself, not only the repository's filter: raw SQL as the app role with B's tenant set.
    const rows = await first.pglite.transaction(async (tx) => {
      await tx.query(`select set_config('app.organization_id', $1, true), set_config('app.tenant_proof', $2, true)`, [
        b.organization.id,
        testProof(b.organization.id),
      ])
      await tx.query('set local role callsheet_app')
      return (await tx.query<{ id: string }>('select id from contacts')).rows
    })
    expect(rows.map((r) => r.id)).not.toContain(contact.id)
    expect(rows.length).toBe(1)
  })

  // How fast a copy is belongs in bench/, not here: this checks what a copy is (migrated, usable).
  it('copies the template after the first call: a migrated database of its own', async () => {
    const rss0 = mb()
    const t0 = performance.now()
    const db = await createTestDatabase()
    const ms = performance.now() - t0
    opened.push(db)
    const rss1 = mb()
    const t1 = performance.now()
    opened.push(await createTestDatabase())
    const ms2 = performance.now() - t1
    console.log(
      `[testing] copy: ${Math.round(ms)} ms (rss ${rss0} -> ${rss1} MB), another: ${Math.round(ms2)} ms (rss -> ${mb()} MB)`,
    )
    const org = await db.organizations.create({ name: 'Fresh', slug: 'fresh' })
    expect(org.slug).toBe('fresh')
  })

  it('gives independent databases', async () => {
    const [x, y] = [opened[0]!, opened[1]!]
    await x.organizations.create({ name: 'Only in X', slug: 'only-in-x' })
    expect((await x.organizations.findMany()).rows.map((o) => o.slug)).toContain('only-in-x')
    expect((await y.organizations.findMany()).rows.map((o) => o.slug)).not.toContain('only-in-x')
  })

  it('closes idempotently, the PGlite too', async () => {
    const db = await createTestDatabase()
    await Promise.all([db.close(), db.close()])
    await db.close()
    expect(db.pglite.closed).toBe(true)
  })
})

describe('@callsheet/db/testing: seedTenant', () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await createTestDatabase()
  })
  afterAll(() => db.close())

  it('creates the requested counts with realistic, deterministic data', async () => {
    const s = await seedTenant(db, { seed: 7, productions: 3, contactsPerProduction: 4, departments: 5 })
    expect(s.productions).toHaveLength(3)
    expect(s.contacts).toHaveLength(12)
    expect(s.departments.map((d) => d.code)).toEqual(['CAM', 'GRP', 'ELE', 'SND', 'ART'])
    expect(await s.tenant.contacts.count({ where: { productionId: s.productions[1]!.id } })).toBe(4)
    expect(await s.tenant.productions.count()).toBe(3)
    const again = await seedTenant(db, { seed: 7, productions: 3, contactsPerProduction: 4, departments: 5 })
    expect(again.organization.slug).not.toBe(s.organization.slug)
    expect(again.contacts.map((c) => [c.name, c.role])).toEqual(s.contacts.map((c) => [c.name, c.role]))
    expect(again.productions.map((p) => p.title)).toEqual(s.productions.map((p) => p.title))
  })

  it('refuses bad counts', async () => {
    await expect(seedTenant(db, { productions: -1 })).rejects.toThrow(RangeError)
  })
})

describe('@callsheet/db/testing: expectTenantIsolation', () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await createTestDatabase()
  })
  afterAll(() => db.close())

  it('passes for a code path that stays within its tenant', async () => {
    const report = await expectTenantIsolation(db, async ({ as, foreign }) => ({
      contact: await as.contacts.findById(foreign.contactId),
      production: await as.productions.findWithContacts(foreign.productionId),
      all: await as.contacts.findMany({ where: { productionId: [...foreign.productionIds] } }),
    }))
    expect(report.result).toEqual({ contact: undefined, production: undefined, all: { rows: [], nextCursor: null } })
  })

  it('passes when the code path throws NotFound for a foreign id, and reports the error', async () => {
    const report = await expectTenantIsolation(db, ({ as, foreign }) =>
      as.contacts.update(foreign.contactId, { name: 'Hijacked' }),
    )
    expect(report.error).toBeInstanceOf(Error)
    expect(String(report.error)).toMatch(/not found/i)
  })

  it('throws naming the leaked id when the probe returns data read as tenant A', async () => {
    let leakedId = ''
    const error = await expectTenantIsolation(db, async ({ db: database, foreign }) => {
      leakedId = foreign.contactId
      // The bug under test: the code path trusts an org id from the request.
      const wrong = database.tenant(foreign.organizationId)
      return { contact: await wrong.contacts.findById(foreign.contactId) }
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TenantIsolationError)
    const isolation = error as TenantIsolationError
    expect(isolation.message).toContain(leakedId)
    expect(isolation.leaks.some((l) => l.startsWith('result.contact.id: contact id'))).toBe(true)
    expect(isolation.changes).toEqual([])
  })

  it('throws naming the changed row when the probe writes to A through A', async () => {
    let target = ''
    const error = await expectTenantIsolation(db, async ({ db: database, foreign }) => {
      target = foreign.productionId
      await database.tenant(foreign.organizationId).productions.update(foreign.productionId, { title: 'Overwritten' })
      return 'ok'
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TenantIsolationError)
    const isolation = error as TenantIsolationError
    expect(isolation.leaks).toEqual([])
    expect(isolation.changes).toHaveLength(1)
    expect(isolation.changes[0]).toContain(`productions/${target}: updated_at=`)
    expect(isolation.message).toContain(target)
  })

  it("catches an API key issued in A's name (every tenant table is snapshotted, from the schema)", async () => {
    const error = await expectTenantIsolation(db, async ({ db: database, foreign }) => {
      await database.tenant(foreign.organizationId).apiKeys.create({ name: 'planted' })
      return 'ok'
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TenantIsolationError)
    expect((error as TenantIsolationError).changes.some((c) => c.startsWith('apiKeys/') && c.endsWith(': added'))).toBe(
      true,
    )
  })

  it('catches an insert into A and a leak inside a thrown error', async () => {
    const error = await expectTenantIsolation(db, async ({ db: database, foreign }) => {
      const asA = database.tenant(foreign.organizationId)
      await asA.departments.create({ name: 'Stunts', code: 'STN' })
      const contact = await asA.contacts.getById(foreign.contactId)
      throw new Error(`e-mail already used by ${contact.email ?? ''} (contact ${foreign.contactId})`)
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TenantIsolationError)
    const isolation = error as TenantIsolationError
    expect(isolation.changes.some((c) => c.startsWith('departments/') && c.endsWith(': added'))).toBe(true)
    expect(isolation.leaks.some((l) => l.startsWith('thrown.message: contact e-mail'))).toBe(true)
  })
})
