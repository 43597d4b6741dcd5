import { beforeAll, expect, it } from 'vitest'
import { isCallsheetDbError, type CallsheetDbErrorCode } from '../src/errors'
import { hashApiKey } from '../src/repositories/api-keys-repository'
import type { DeletedFilter } from '../src/repositories/soft-delete'
import type { TenantClient } from '../src/client/tenant-client'
import type { ExtractionResult } from '../src/schema/uploads'
import type { Upload } from '../src/schema/types'
import { describeEachDatabase } from './harness/engines'
import type { SqlRunner } from './harness/sql-runner'
import { fillTenant, type FilledTenant } from './support/fixtures'

// Every repository method of tenant A, aimed at tenant B's ids: nothing of B is seen, nothing of B
// changes, and A's own rows change only where a test writes on purpose. Goes through the library only
// (the raw-SQL half of the double enforcement is isolation-raw-sql.test.ts).

const REPOS = ['users', 'departments', 'productions', 'contacts', 'uploads', 'apiKeys'] as const
type RepoName = (typeof REPOS)[number]
const SOFT_REPOS = ['users', 'departments', 'productions', 'contacts', 'uploads'] as const
type SoftRepoName = (typeof SOFT_REPOS)[number]

const TABLE: Record<RepoName, string> = {
  users: 'users',
  departments: 'departments',
  productions: 'productions',
  contacts: 'contacts',
  uploads: 'uploads',
  apiKeys: 'api_keys',
}
const SNAPSHOT_TABLES = [...Object.values(TABLE), 'audit_logs'] as const

type Row = { id: string; organizationId: string }

/** The shared vocabulary, typed loosely so that one table of cases can drive every repository. */
interface AnyRepo {
  findById(id: string, options?: { deleted?: DeletedFilter }): Promise<Row | undefined>
  getById(id: string, options?: { deleted?: DeletedFilter }): Promise<Row>
  findMany(options?: {
    where?: Record<string, unknown>
    deleted?: DeletedFilter
    limit?: number
  }): Promise<{ rows: Row[]; nextCursor: string | null }>
  count(options?: { where?: Record<string, unknown>; deleted?: DeletedFilter }): Promise<number>
  create(input: Record<string, unknown>): Promise<Row>
  createMany(inputs: Record<string, unknown>[]): Promise<Row[]>
  update(id: string, patch: Record<string, unknown>): Promise<Row>
  softDelete(id: string): Promise<Row>
  restore(id: string): Promise<Row>
  purge(id: string): Promise<void>
}
const repo = (client: TenantClient, name: RepoName): AnyRepo => client[name] as unknown as AnyRepo

/** A valid patch per repository: applied to the right row it would succeed. */
const PATCH: Record<RepoName, Record<string, unknown>> = {
  users: { name: 'Hijacked' },
  departments: { name: 'Hijacked' },
  productions: { title: 'Hijacked' },
  contacts: { name: 'Hijacked' },
  uploads: { fileName: 'hijacked.pdf' },
  apiKeys: { name: 'Hijacked' },
}

const EXTRACTION: ExtractionResult = { contacts: [{ name: 'Mallory' }], confidence: 0.9 }

interface World {
  a: FilledTenant
  b: FilledTenant
  /** One soft-deleted row of B per soft-deletable repository (deleted through B's own client). */
  bDeleted: Record<SoftRepoName, string>
  /** A's soft-deleted rows, so that `deleted: 'only'` has something of A's to return. */
  aDeleted: Record<SoftRepoName, string>
  /** B's upload in `processing`, so that completeExtraction / failExtraction would have something to move. */
  bProcessing: Upload
}

type Snapshot = Record<string, Record<string, unknown>[]>

async function snapshot(admin: SqlRunner, orgId: string): Promise<Snapshot> {
  const out: Snapshot = {}
  for (const table of SNAPSHOT_TABLES) {
    out[table] = await admin.query(`select * from ${table} where organization_id = $1 order by id`, [orgId])
  }
  out.organizations = await admin.query('select * from organizations where id = $1', [orgId])
  return out
}

/** What `promise` settled with, as a describable outcome. */
async function outcome(
  promise: Promise<unknown>,
): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise }
  } catch (error) {
    return { ok: false, error }
  }
}

const show = (value: unknown): string => {
  if (value instanceof Error)
    return `${value.name} (${(value as { code?: unknown }).code ?? 'no code'}): ${value.message}`
  try {
    return JSON.stringify(value)?.slice(0, 300) ?? String(value)
  } catch {
    return String(value)
  }
}

async function expectError(what: string, promise: Promise<unknown>, code: CallsheetDbErrorCode): Promise<void> {
  const result = await outcome(promise)
  if (result.ok) expect.fail(`${what}: expected ${code}, but it resolved with ${show(result.value)}`)
  expect(isCallsheetDbError(result.error, code), `${what}: expected ${code}, got ${show(result.error)}`).toBe(true)
}

describeEachDatabase(
  'tenant isolation through the repositories',
  (ctx) => {
    let w: World
    let bBefore: Snapshot
    let aBefore: Snapshot
    /** Rows the tests below write into A on purpose: left out of the "A unchanged" comparison. */
    const aWrittenOnPurpose = new Set<string>()
    const admin = () => ctx().engine.admin
    const A = () => w.a.tenant

    beforeAll(async () => {
      const db = ctx().db
      const a = await fillTenant(db, 'tenant-a')
      const b = await fillTenant(db, 'tenant-b')
      const deletedRows = async (t: FilledTenant, tag: string): Promise<Record<SoftRepoName, string>> => {
        const c = t.tenant
        const user = await c.users.create({ email: `gone-${tag}@example.com`, name: 'Gone User' })
        const department = await c.departments.create({ name: 'Grip', code: `GRIP-${tag}` })
        const production = await c.productions.create({ title: 'Shelved', code: `P2-${tag}` })
        // Named like the live contact, so a leaking search would find it too.
        const contact = await c.contacts.create({ productionId: t.production.id, name: 'Jon Smith' })
        const upload = await c.uploads.create({
          productionId: t.production.id,
          fileName: 'day-02.pdf',
          mimeType: 'application/pdf',
          sizeBytes: 1,
          checksumSha256: 'b'.repeat(64),
          storageKey: `uploads/${tag}/day-02.pdf`,
        })
        await c.users.softDelete(user.id)
        await c.departments.softDelete(department.id)
        await c.productions.softDelete(production.id)
        await c.contacts.softDelete(contact.id)
        await c.uploads.softDelete(upload.id)
        return {
          users: user.id,
          departments: department.id,
          productions: production.id,
          contacts: contact.id,
          uploads: upload.id,
        }
      }
      const bDeleted = await deletedRows(b, 'b')
      const aDeleted = await deletedRows(a, 'a')
      const processing = await b.tenant.uploads.create({
        productionId: b.production.id,
        fileName: 'day-03.pdf',
        mimeType: 'application/pdf',
        sizeBytes: 1,
        checksumSha256: 'c'.repeat(64),
        storageKey: 'uploads/b/day-03.pdf',
      })
      const bProcessing = await b.tenant.uploads.markProcessing(processing.id)
      w = { a, b, bDeleted, aDeleted, bProcessing }
      bBefore = await snapshot(admin(), b.org.id)
      aBefore = await snapshot(admin(), a.org.id)
      expect(bBefore.contacts).toHaveLength(2)
    })

    const liveId = (t: FilledTenant, name: RepoName): string =>
      ({
        users: t.user,
        departments: t.department,
        productions: t.production,
        contacts: t.contact,
        uploads: t.upload,
        apiKeys: t.apiKey,
      })[name].id
    const liveIdOfB = (name: RepoName): string => liveId(w.b, name)

    /** The ids of A's rows as the database (not the library) sees them. */
    async function idsOfA(name: RepoName, deleted: DeletedFilter): Promise<string[]> {
      const condition =
        name === 'apiKeys' || deleted === 'include'
          ? 'true'
          : deleted === 'only'
            ? 'deleted_at is not null'
            : 'deleted_at is null'
      const rows = await admin().query<{ id: string }>(
        `select id from ${TABLE[name]} where organization_id = $1 and ${condition} order by id`,
        [w.a.org.id],
      )
      return rows.map((r) => r.id)
    }

    // ---- reads -------------------------------------------------------------------------------------

    const readModes = REPOS.flatMap((name) =>
      (name === 'apiKeys' ? (['exclude'] as const) : (['exclude', 'include', 'only'] as const)).map(
        (deleted) => [name, deleted] as const,
      ),
    )

    it.each(readModes)(
      "%s: findById / getById (deleted: %s) of B's ids give undefined / NOT_FOUND",
      async (name, deleted) => {
        const r = repo(A(), name)
        const live = liveIdOfB(name)
        const ids = [live, live.toUpperCase(), ...(name === 'apiKeys' ? [] : [w.bDeleted[name]])]
        for (const id of ids) {
          expect(
            await r.findById(id, { deleted }),
            `${name}.findById(${id}, ${deleted}) leaked B's row`,
          ).toBeUndefined()
          await expectError(`${name}.getById(${id}, ${deleted})`, r.getById(id, { deleted }), 'NOT_FOUND')
        }
      },
    )

    it.each(readModes)("%s: findMany / count (deleted: %s) return exactly A's rows", async (name, deleted) => {
      const r = repo(A(), name)
      const expected = await idsOfA(name, deleted)
      expect(expected.length, `A has ${name} rows to see (deleted: ${deleted})`).toBeGreaterThan(0)
      const page = await r.findMany({ deleted, limit: 1000 })
      expect(page.rows.map((row) => row.id).sort(), `${name}.findMany(${deleted})`).toEqual(expected)
      expect(page.rows.every((row) => row.organizationId === w.a.org.id)).toBe(true)
      expect(await r.count({ deleted }), `${name}.count(${deleted})`).toBe(expected.length)
    })

    const bFilters = (): { name: RepoName; where: Record<string, unknown> }[] => [
      { name: 'users', where: { email: w.b.user.email } },
      { name: 'departments', where: { code: 'GRIP-b' } },
      { name: 'productions', where: { createdBy: w.b.user.id } },
      { name: 'productions', where: { code: 'P2-b' } },
      { name: 'contacts', where: { productionId: w.b.production.id } },
      { name: 'contacts', where: { departmentId: w.b.department.id } },
      { name: 'contacts', where: { uploadId: w.b.upload.id } },
      { name: 'contacts', where: { email: w.b.contact.email } },
      { name: 'contacts', where: { productionId: [w.a.production.id, w.b.production.id], uploadId: w.b.upload.id } },
      { name: 'uploads', where: { productionId: w.b.production.id } },
      { name: 'uploads', where: { uploadedBy: w.b.user.id } },
      { name: 'uploads', where: { status: 'processing' } },
      { name: 'apiKeys', where: { createdBy: w.b.user.id } },
    ]

    it.each(REPOS)(
      "%s.findMany / count filtered on B's values: empty and 0, whatever the deleted mode",
      async (name) => {
        const filters = bFilters().filter((f) => f.name === name)
        expect(filters.length).toBeGreaterThan(0)
        for (const { where } of filters) {
          for (const deleted of name === 'apiKeys'
            ? (['exclude'] as const)
            : (['exclude', 'include', 'only'] as const)) {
            const what = `${name}.findMany({ where: ${JSON.stringify(where)}, deleted: ${deleted} })`
            const page = await repo(A(), name).findMany({ where, deleted })
            expect(page.rows, what).toEqual([])
            expect(page.nextCursor, what).toBeNull()
            expect(await repo(A(), name).count({ where, deleted }), what.replace('findMany', 'count')).toBe(0)
          }
        }
      },
    )

    it("contacts.search finds only A's contacts, and nothing within B's production", async () => {
      const hits = await A().contacts.search('Jon Smith')
      expect(hits.map((h) => h.id)).toEqual([w.a.contact.id])
      expect(hits.every((h) => h.organizationId === w.a.org.id)).toBe(true)
      expect(await A().contacts.search('Jon Smith', { productionId: w.b.production.id })).toEqual([])
      expect(await A().contacts.search('Jon Smith', { threshold: 0, limit: 100 })).toSatisfy((rows: Row[]) =>
        rows.every((r) => r.organizationId === w.a.org.id),
      )
    })

    it("productions.findWithContacts of B's production (live or deleted) is undefined", async () => {
      expect(await A().productions.findWithContacts(w.b.production.id)).toBeUndefined()
      expect(await A().productions.findWithContacts(w.bDeleted.productions)).toBeUndefined()
      const own = await A().productions.findWithContacts(w.a.production.id)
      expect(own?.contacts.map((c) => c.id)).toEqual([w.a.contact.id])
    })

    it.each(['exclude', 'include', 'only'] as const)(
      "productions.findManyWithContactCounts (deleted: %s) returns only A's productions, counting only A's contacts",
      async (deleted) => {
        const page = await A().productions.findManyWithContactCounts({ deleted, limit: 1000 })
        expect(page.rows.map((r) => r.id).sort()).toEqual(await idsOfA('productions', deleted))
        for (const row of page.rows) {
          expect(row.organizationId).toBe(w.a.org.id)
          expect(row.contactCount).toBe(row.id === w.a.production.id ? 1 : 0)
        }
        const filtered = await A().productions.findManyWithContactCounts({ deleted, where: { createdBy: w.b.user.id } })
        expect(filtered.rows).toEqual([])
      },
    )

    // ---- writes by id ------------------------------------------------------------------------------

    interface WriteCase {
      name: string
      run: () => Promise<unknown>
    }
    const byIdWrites: WriteCase[] = [
      ...REPOS.flatMap((name): WriteCase[] => [
        { name: `${name}.update(B's live id)`, run: () => repo(A(), name).update(liveIdOfB(name), PATCH[name]) },
        { name: `${name}.purge(B's live id)`, run: () => repo(A(), name).purge(liveIdOfB(name)) },
      ]),
      ...SOFT_REPOS.flatMap((name): WriteCase[] => [
        { name: `${name}.update(B's deleted id)`, run: () => repo(A(), name).update(w.bDeleted[name], PATCH[name]) },
        { name: `${name}.softDelete(B's live id)`, run: () => repo(A(), name).softDelete(liveIdOfB(name)) },
        { name: `${name}.softDelete(B's deleted id)`, run: () => repo(A(), name).softDelete(w.bDeleted[name]) },
        { name: `${name}.restore(B's deleted id)`, run: () => repo(A(), name).restore(w.bDeleted[name]) },
        { name: `${name}.restore(B's live id)`, run: () => repo(A(), name).restore(liveIdOfB(name)) },
        { name: `${name}.purge(B's deleted id)`, run: () => repo(A(), name).purge(w.bDeleted[name]) },
      ]),
      { name: "uploads.markProcessing(B's pending upload)", run: () => A().uploads.markProcessing(w.b.upload.id) },
      {
        name: "uploads.completeExtraction(B's processing upload)",
        run: () => A().uploads.completeExtraction(w.bProcessing.id, EXTRACTION),
      },
      {
        name: "uploads.failExtraction(B's processing upload)",
        run: () => A().uploads.failExtraction(w.bProcessing.id, 'sabotage'),
      },
      { name: "uploads.failExtraction(B's pending upload)", run: () => A().uploads.failExtraction(w.b.upload.id, 'x') },
      { name: "uploads.markProcessing(B's deleted upload)", run: () => A().uploads.markProcessing(w.bDeleted.uploads) },
      { name: "apiKeys.revoke(B's key)", run: () => A().apiKeys.revoke(w.b.apiKey.id) },
    ]

    it.each(byIdWrites.map((c) => [c.name, c] as const))('%s → NOT_FOUND', async (name, { run }) => {
      await expectError(`A ${name}`, run(), 'NOT_FOUND')
    })

    // ---- cross-tenant references -------------------------------------------------------------------

    interface CrossCase {
      name: string
      run: (a: FilledTenant, b: FilledTenant) => Promise<unknown>
    }
    const upload = (a: FilledTenant, extra: Record<string, unknown>) => ({
      productionId: a.production.id,
      fileName: 'x.pdf',
      mimeType: 'application/pdf',
      sizeBytes: 1,
      checksumSha256: 'd'.repeat(64),
      storageKey: 'uploads/x.pdf',
      ...extra,
    })
    const crossReferences: CrossCase[] = [
      {
        name: "contacts.create in B's production",
        run: (_a, b) => A().contacts.create({ productionId: b.production.id, name: 'Mallory' }),
      },
      {
        name: "contacts.create in B's department",
        run: (a, b) =>
          A().contacts.create({ productionId: a.production.id, departmentId: b.department.id, name: 'Mallory' }),
      },
      {
        name: "contacts.create from B's upload",
        run: (a, b) => A().contacts.create({ productionId: a.production.id, uploadId: b.upload.id, name: 'Mallory' }),
      },
      {
        name: "contacts.createMany with one row in B's production",
        run: (a, b) =>
          A().contacts.createMany([
            { productionId: a.production.id, name: 'Good One' },
            { productionId: b.production.id, name: 'Mallory' },
            { productionId: a.production.id, name: 'Good Two' },
          ]),
      },
      {
        name: "productions.create created by B's user",
        run: (_a, b) => A().productions.create({ title: 'Heist', createdBy: b.user.id }),
      },
      {
        name: "uploads.create in B's production",
        run: (a, b) => A().uploads.create(upload(a, { productionId: b.production.id })),
      },
      {
        name: "uploads.create uploaded by B's user",
        run: (a, b) => A().uploads.create(upload(a, { uploadedBy: b.user.id })),
      },
      {
        name: "apiKeys.create created by B's user",
        run: (_a, b) => A().apiKeys.create({ name: 'sneaky', createdBy: b.user.id }),
      },
      {
        name: "contacts.update of A's contact into B's production",
        run: (a, b) => A().contacts.update(a.contact.id, { productionId: b.production.id }),
      },
      {
        name: "contacts.update of A's contact into B's department",
        run: (a, b) => A().contacts.update(a.contact.id, { departmentId: b.department.id }),
      },
      {
        name: "contacts.update of A's contact onto B's upload",
        run: (a, b) => A().contacts.update(a.contact.id, { uploadId: b.upload.id }),
      },
      {
        name: "productions.update of A's production to B's user",
        run: (a, b) => A().productions.update(a.production.id, { createdBy: b.user.id }),
      },
      {
        name: "uploads.update of A's upload into B's production",
        run: (a, b) => A().uploads.update(a.upload.id, { productionId: b.production.id }),
      },
      {
        name: "uploads.update of A's upload to B's user",
        run: (a, b) => A().uploads.update(a.upload.id, { uploadedBy: b.user.id }),
      },
    ]

    it.each(crossReferences.map((c) => [c.name, c] as const))('%s → FOREIGN_KEY_VIOLATION', async (name, { run }) => {
      await expectError(`A ${name}`, run(w.a, w.b), 'FOREIGN_KEY_VIOLATION')
    })

    // Ids are unique per tenant (primary key (organization_id, id), migration 0015), so A may create a row
    // whose id B already uses: it is A's own row, created exactly as with a fresh id. The answer cannot
    // tell A whether the id exists in another tenant (before 0015 it was a UNIQUE_VIOLATION naming it).
    it("creating a row with B's row id as its own id creates A's own row, as a fresh id would, and B's row stays B's", async () => {
      const inputs = (id: string): Record<string, Record<string, unknown>> => ({
        users: { id, email: `thief-${id.slice(-6)}@example.com`, name: 'Thief' },
        departments: { id, name: 'Thief', code: `THIEF-${id.slice(-6)}` },
        productions: { id, title: 'Thief' },
        contacts: { id, productionId: w.a.production.id, name: 'Thief' },
      })
      const bIds = {
        users: w.b.user.id,
        departments: w.b.department.id,
        productions: w.b.production.id,
        contacts: w.b.contact.id,
      }
      for (const name of ['users', 'departments', 'productions', 'contacts'] as const) {
        const bRow = await admin().query(`select * from ${TABLE[name]} where id = $1`, [bIds[name]])
        const fresh = crypto.randomUUID()
        for (const id of [bIds[name], fresh]) {
          const created = await outcome(repo(A(), name).create(inputs(id)[name] ?? {}))
          if (!created.ok) expect.fail(`A ${name}.create({ id }): ${show(created.error)}`)
          expect(created.value).toMatchObject({ id, organizationId: w.a.org.id })
          // A's copy goes again, so that the later reads of B's ids through A find nothing.
          await repo(A(), name).purge(id)
          aWrittenOnPurpose.add(id)
        }
        expect(
          await admin().query(`select * from ${TABLE[name]} where id = $1`, [bIds[name]]),
          `B's ${name} row`,
        ).toEqual(bRow)
      }
    })

    it("passing B's organizationId to create or update never lands a row in B", async () => {
      const created = await outcome(
        A().contacts.create({
          productionId: w.a.production.id,
          name: 'Org Hopper',
          organizationId: w.b.org.id,
        } as Parameters<TenantClient['contacts']['create']>[0]),
      )
      if (created.ok) {
        const row = created.value as Row
        aWrittenOnPurpose.add(row.id)
        expect(row.organizationId).toBe(w.a.org.id)
        // With a real change next to it, the organizationId is dropped (or the patch refused): never moved.
        const patched = await outcome(
          A().contacts.update(row.id, { name: 'Org Hopper 2', organizationId: w.b.org.id } as Record<string, unknown>),
        )
        if (patched.ok) expect((patched.value as Row).organizationId).toBe(w.a.org.id)
        else expect(isCallsheetDbError(patched.error, 'VALIDATION_FAILED'), show(patched.error)).toBe(true)
        const [stored] = await admin().query<{ organization_id: string }>(
          'select organization_id from contacts where id = $1',
          [row.id],
        )
        expect(stored?.organization_id).toBe(w.a.org.id)
      } else {
        expect(isCallsheetDbError(created.error, 'VALIDATION_FAILED'), show(created.error)).toBe(true)
      }
      for (const name of REPOS) {
        const own = { id: liveId(w.a, name) }
        const result = await outcome(repo(A(), name).update(own.id, { organizationId: w.b.org.id }))
        // Either refused as invalid (unknown key / empty patch once stripped), or not moved: never in B.
        if (result.ok) expect((result.value as Row).organizationId, `${name}.update moved the row`).toBe(w.a.org.id)
        else
          expect(isCallsheetDbError(result.error, 'VALIDATION_FAILED'), `${name}.update: ${show(result.error)}`).toBe(
            true,
          )
        const [row] = await admin().query<{ organization_id: string }>(
          `select organization_id from ${TABLE[name]} where id = $1`,
          [own.id],
        )
        expect(row?.organization_id, `${name} row moved tenants`).toBe(w.a.org.id)
      }
    })

    // ---- transactions ------------------------------------------------------------------------------

    it("a transaction mixing A's writes with a cross-tenant reference rolls back entirely", async () => {
      let departmentId: string | undefined
      let contactId: string | undefined
      const result = await outcome(
        A().transaction(async (tx) => {
          const department = await tx.departments.create({ name: 'Doomed', code: 'DOOMED' })
          departmentId = department.id
          const contact = await tx.contacts.create({ productionId: w.a.production.id, name: 'Doomed Contact' })
          contactId = contact.id
          await tx.contacts.update(w.a.contact.id, { notes: 'changed inside the doomed transaction' })
          await tx.contacts.create({ productionId: w.b.production.id, name: 'Mallory' })
        }),
      )
      expect(result.ok).toBe(false)
      if (!result.ok) expect(isCallsheetDbError(result.error, 'FOREIGN_KEY_VIOLATION'), show(result.error)).toBe(true)
      expect(departmentId).toBeDefined()
      expect(contactId).toBeDefined()
      expect(await admin().query('select id from departments where id = $1', [departmentId])).toEqual([])
      expect(await admin().query('select id from contacts where id = $1', [contactId])).toEqual([])
      const [contact] = await admin().query<{ notes: string | null }>('select notes from contacts where id = $1', [
        w.a.contact.id,
      ])
      expect(contact?.notes).toBeNull()
    })

    it("a transaction mixing A's writes with a write to B's row (NOT_FOUND) rolls back entirely", async () => {
      let departmentId: string | undefined
      const result = await outcome(
        A().transaction(async (tx) => {
          departmentId = (await tx.departments.create({ name: 'Doomed Too', code: 'DOOMED2' })).id
          expect(await tx.contacts.findById(w.b.contact.id)).toBeUndefined()
          await tx.contacts.softDelete(w.b.contact.id)
        }),
      )
      expect(result.ok).toBe(false)
      if (!result.ok) expect(isCallsheetDbError(result.error, 'NOT_FOUND'), show(result.error)).toBe(true)
      expect(await admin().query('select id from departments where id = $1', [departmentId])).toEqual([])
    })

    it("inside a transaction, every read of B's ids is empty too", async () => {
      await A().transaction(async (tx) => {
        expect(await tx.users.findById(w.b.user.id)).toBeUndefined()
        expect(await tx.contacts.findMany({ where: { productionId: w.b.production.id }, deleted: 'include' })).toEqual({
          rows: [],
          nextCursor: null,
        })
        expect(await tx.uploads.count({ where: { productionId: w.b.production.id }, deleted: 'include' })).toBe(0)
        expect((await tx.contacts.search('Jon Smith')).map((h) => h.id)).toEqual([w.a.contact.id])
        expect(await tx.productions.findWithContacts(w.b.production.id)).toBeUndefined()
      })
    })

    // ---- nothing changed ---------------------------------------------------------------------------

    it("after every attack above, B's rows in every table (and its audit trail) are exactly as before", async () => {
      const after = await snapshot(admin(), w.b.org.id)
      for (const table of Object.keys(bBefore)) {
        expect(after[table], `B's ${table} changed`).toEqual(bBefore[table])
      }
    })

    it("A's own rows are unchanged too, apart from the rows written on purpose", async () => {
      const after = await snapshot(admin(), w.a.org.id)
      for (const table of Object.keys(aBefore)) {
        if (table === 'audit_logs') continue
        const rows = (after[table] ?? []).filter((r) => !aWrittenOnPurpose.has(String(r.id)))
        expect(rows, `A's ${table} changed`).toEqual(aBefore[table])
      }
      // The only audit rows added are the on-purpose writes' own.
      const added = (after.audit_logs ?? []).filter((r) => !(aBefore.audit_logs ?? []).some((b) => b.id === r.id))
      expect(
        added.every((r) => aWrittenOnPurpose.has(String(r.entity_id))),
        show(added),
      ).toBe(true)
    })

    // ---- API keys (after the snapshot checks: verify records last use) ------------------------------

    it("db.apiKeys.verify returns each key's own organization; garbage and revoked keys return null", async () => {
      const db = ctx().db
      const verifiedB = await db.apiKeys.verify(w.b.apiKey.plaintext)
      expect(verifiedB).toMatchObject({ apiKeyId: w.b.apiKey.id, organizationId: w.b.org.id })
      const verifiedA = await db.apiKeys.verify(w.a.apiKey.plaintext)
      expect(verifiedA).toMatchObject({ apiKeyId: w.a.apiKey.id, organizationId: w.a.org.id })

      for (const garbage of [
        '',
        'garbage',
        `csk_${'0'.repeat(64)}`,
        `csk_${'z'.repeat(64)}`,
        w.a.apiKey.prefix,
        `${w.b.apiKey.plaintext} `,
      ]) {
        expect(await db.apiKeys.verify(garbage), `verify(${JSON.stringify(garbage)})`).toBeNull()
      }

      const spare = await A().apiKeys.create({ name: 'to be revoked' })
      expect(await db.apiKeys.verify(spare.plaintext)).toMatchObject({ organizationId: w.a.org.id })
      await A().apiKeys.revoke(spare.id)
      expect(await db.apiKeys.verify(spare.plaintext)).toBeNull()
      // B cannot revoke A's key either, and A's key still verifies as A's.
      await expectError("B apiKeys.revoke(A's key)", w.b.tenant.apiKeys.revoke(w.a.apiKey.id), 'NOT_FOUND')
      expect(await db.apiKeys.verify(w.a.apiKey.plaintext)).toMatchObject({ organizationId: w.a.org.id })
    })

    // Keys name their organization (csk_<org>_<secret>, migration 0015) and are looked up by (org, hash).
    it('a key verifies only for the organization it names: a tampered organization part is null, never an error', async () => {
      const db = ctx().db
      const hex = (org: string) => org.replaceAll('-', '')
      const secretOf = (plaintext: string) => plaintext.slice(-64)
      expect(w.a.apiKey.plaintext).toBe(`csk_${hex(w.a.org.id)}_${secretOf(w.a.apiKey.plaintext)}`)
      for (const tampered of [
        `csk_${hex(w.b.org.id)}_${secretOf(w.a.apiKey.plaintext)}`, // A's secret under B's name
        `csk_${hex(w.a.org.id)}_${secretOf(w.b.apiKey.plaintext)}`, // B's secret under A's name
        `csk_${'0'.repeat(32)}_${secretOf(w.a.apiKey.plaintext)}`, // an organization that does not exist
        `csk_${hex(w.a.org.id).toUpperCase()}_${secretOf(w.a.apiKey.plaintext)}`,
        `csk_${hex(w.a.org.id).slice(1)}_${secretOf(w.a.apiKey.plaintext)}`,
        `csk_${w.a.org.id}_${secretOf(w.a.apiKey.plaintext)}`, // dashed
        `csk_${secretOf(w.a.apiKey.plaintext)}`, // the 0.1.0-pre format
      ]) {
        expect(await db.apiKeys.verify(tampered), `verify(${tampered})`).toBeNull()
      }
      // A row of B holding the hash of a key that names A: found only under B's name, so never verifies.
      const namesA = `csk_${hex(w.a.org.id)}_${'ab'.repeat(32)}`
      await admin().query(
        `insert into api_keys (organization_id, name, prefix, key_hash) values ($1, 'planted', 'csk_planted', $2)`,
        [w.b.org.id, hashApiKey(namesA)],
      )
      try {
        expect(await db.apiKeys.verify(namesA)).toBeNull()
      } finally {
        await admin().query(`delete from api_keys where organization_id = $1 and name = 'planted'`, [w.b.org.id])
      }
      // Both real keys still verify as their own.
      expect(await db.apiKeys.verify(w.a.apiKey.plaintext)).toMatchObject({ organizationId: w.a.org.id })
      expect(await db.apiKeys.verify(w.b.apiKey.plaintext)).toMatchObject({ organizationId: w.b.org.id })
    })
  },
  {},
  { citus: true },
)
