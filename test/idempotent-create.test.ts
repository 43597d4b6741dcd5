import { randomUUID } from 'node:crypto'
import { beforeAll, expect, it } from 'vitest'
import { withRetry } from '../src'
import { ConnectionError, isCallsheetDbError } from '../src/errors'
import type { ChangeEvent } from '../src/unit-of-work/hooks'
import { describeEachDatabase } from './harness/engines'
import { fillTenant, type FilledTenant } from './support/fixtures'

// `create` with a caller-given id (tenant-repository.ts idempotentInsertWrite): a retry after a COMMIT whose
// answer was lost returns the committed row. Calling create twice with the same id is what such a retry
// looks like to the database (the first attempt committed), so most cases below do just that.

const rejection = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${JSON.stringify(value)}`)
    },
    (error: unknown) => error,
  )

/** What every tenant repository's create looks like here (each input matches its repository at run time). */
interface Creating {
  create(input: unknown): Promise<Record<string, unknown> & { id: string }>
  softDelete(id: string): Promise<unknown>
  findById(id: string, options?: object): Promise<(Record<string, unknown> & { id: string }) | undefined>
}

/** Every change event the afterCommit hook saw. */
const committed: ChangeEvent[] = []

describeEachDatabase(
  'idempotent create with a caller-given id',
  (ctx) => {
    let a: FilledTenant
    let b: FilledTenant
    const admin = () => ctx().engine.admin

    beforeAll(async () => {
      a = await fillTenant(ctx().db, 'idem-a')
      b = await fillTenant(ctx().db, 'idem-b')
    })

    /** Rows with this id in the table, and insert audit rows for it, of one organization. */
    async function written(table: string, orgId: string, id: string) {
      const [row] = await admin().query<{ rows: number; audit: number }>(
        `select (select count(*)::int from ${table} where organization_id = $1 and id = $2) as rows,
                (select count(*)::int from audit_logs where organization_id = $1 and entity_type = '${table}'
                   and entity_id = $2 and action = 'insert') as audit`,
        [orgId, id],
      )
      return row!
    }

    /** One input per tenant entity, exercising each column kind a create may give (citext, numeric(3,2), jsonb, date, bigint). */
    const inputs = (t: FilledTenant, tag: string): [string, Creating, Record<string, unknown>][] => [
      [
        'users',
        t.tenant.users as unknown as Creating,
        { email: `Idem.${tag}@Example.com`, name: 'Ida', role: 'member' },
      ],
      ['departments', t.tenant.departments as unknown as Creating, { name: 'Sound', code: `SND-${tag}`, sortOrder: 3 }],
      [
        'productions',
        t.tenant.productions as unknown as Creating,
        { title: 'Pilot', code: null, startDate: '2026-01-05', endDate: '2026-02-01', createdBy: t.user.id },
      ],
      [
        'contacts',
        t.tenant.contacts as unknown as Creating,
        {
          productionId: t.production.id,
          departmentId: t.department.id,
          name: 'Ann Lee',
          email: `ann.${tag}@example.com`,
          // Stored as 0.88 (numeric(3,2)): the retry compares what the insert would store, not the literal.
          extractionConfidence: 0.875,
          metadata: { b: [1, 2, { c: 'x' }], a: true },
        },
      ],
      [
        'uploads',
        t.tenant.uploads as unknown as Creating,
        {
          productionId: t.production.id,
          fileName: 'sheet.pdf',
          mimeType: 'application/pdf',
          sizeBytes: 9_007_199_254,
          checksumSha256: 'c'.repeat(64),
          storageKey: `k/${tag}.pdf`,
        },
      ],
    ]

    it('the same id and input twice: the same row back, one row, one audit row, on every tenant entity', async () => {
      for (const [table, repo, input] of inputs(a, 'twice')) {
        const id = randomUUID()
        const first = await repo.create({ id, ...input })
        const second = await repo.create({ id, ...input })
        expect(first.id, table).toBe(id)
        expect(second, table).toEqual(first)
        expect(await written(table, a.org.id, id), table).toEqual({ rows: 1, audit: 1 })
      }
    })

    it('withRetry around a create whose first attempt committed but failed on the way back: the committed row', async () => {
      const id = randomUUID()
      let attempts = 0
      const contact = await withRetry(
        async () => {
          attempts++
          const row = await a.tenant.contacts.create({ id, productionId: a.production.id, name: 'Lost Commit' })
          // What a connection lost during COMMIT looks like to the caller: committed, yet an error.
          if (attempts === 1) throw new ConnectionError('connection lost while COMMIT was in flight')
          return row
        },
        { baseDelayMs: 1 },
      )
      expect(attempts).toBe(2)
      expect(contact.id).toBe(id)
      expect(contact.name).toBe('Lost Commit')
      expect(await written('contacts', a.org.id, id)).toEqual({ rows: 1, audit: 1 })
    })

    it('the same id with other values: UNIQUE_VIOLATION on <table>_pkey, and the stored row is unchanged', async () => {
      for (const [table, repo, input] of inputs(a, 'differ')) {
        const id = randomUUID()
        const first = await repo.create({ id, ...input })
        const changed =
          table === 'users'
            ? // citext: the case of the e-mail counts as a difference (the caller would get another value back).
              { ...input, email: String(input.email).toLowerCase() }
            : table === 'contacts'
              ? { ...input, metadata: { a: false } }
              : table === 'productions'
                ? { ...input, endDate: '2026-03-01' }
                : table === 'uploads'
                  ? { ...input, sizeBytes: 1 }
                  : { ...input, name: 'Other' }
        const error = await rejection(repo.create({ id, ...changed }))
        expect(isCallsheetDbError(error, 'UNIQUE_VIOLATION'), `${table}: ${String(error)}`).toBe(true)
        expect(error).toMatchObject({ constraint: `${table}_pkey`, table, sqlState: '23505' })
        expect(await repo.findById(id), table).toEqual(first)
        expect(await written(table, a.org.id, id), table).toEqual({ rows: 1, audit: 1 })
      }
    })

    it('a column the retry leaves out is not compared; one it adds that differs from the default is', async () => {
      const id = randomUUID()
      const first = await a.tenant.departments.create({ id, name: 'Props', code: 'PROPS-1', sortOrder: 7 })
      expect(await a.tenant.departments.create({ id, name: 'Props', code: 'PROPS-1' })).toEqual(first)
      const error = await rejection(a.tenant.departments.create({ id, name: 'Props', code: 'PROPS-1', sortOrder: 8 }))
      expect(isCallsheetDbError(error, 'UNIQUE_VIOLATION')).toBe(true)
    })

    it('a soft-deleted row with that id: UNIQUE_VIOLATION, the row stays deleted (no resurrection)', async () => {
      const id = randomUUID()
      const input = { id, productionId: a.production.id, name: 'Gone Soon' }
      await a.tenant.contacts.create(input)
      await a.tenant.contacts.softDelete(id)
      const error = await rejection(a.tenant.contacts.create(input))
      expect(isCallsheetDbError(error, 'UNIQUE_VIOLATION')).toBe(true)
      expect(error).toMatchObject({ constraint: 'contacts_pkey', table: 'contacts' })
      expect(await a.tenant.contacts.findById(id)).toBeUndefined()
      expect((await a.tenant.contacts.findById(id, { deleted: 'include' }))?.deletedAt).toBeInstanceOf(Date)
      expect(await written('contacts', a.org.id, id)).toEqual({ rows: 1, audit: 1 })
    })

    it("another tenant's row with the same id does not matter: both exist, each tenant sees its own", async () => {
      for (const [[table, repoA, inputA], [, repoB, inputB]] of zip(inputs(a, 'shared'), inputs(b, 'shared'))) {
        const id = randomUUID()
        const rowA = await repoA.create({ id, ...inputA })
        const rowB = await repoB.create({ id, ...inputB })
        expect(rowB.id, table).toBe(id)
        expect(rowB.organizationId, table).toBe(b.org.id)
        expect((await repoA.findById(id))?.organizationId, table).toBe(a.org.id)
        expect((await repoB.findById(id))?.organizationId, table).toBe(b.org.id)
        expect(await repoA.findById(id), table).toEqual(rowA)
        expect(await written(table, a.org.id, id), table).toEqual({ rows: 1, audit: 1 })
        expect(await written(table, b.org.id, id), table).toEqual({ rows: 1, audit: 1 })
      }
    })

    it("a tenant repeating another tenant's create with its id and input gets its own new row, never the other's", async () => {
      const id = randomUUID()
      const input = { id, name: 'Wardrobe', code: 'WARD-X' }
      const inA = await a.tenant.departments.create(input)
      const inB = await b.tenant.departments.create(input)
      expect(inB.organizationId).toBe(b.org.id)
      expect(inA.organizationId).toBe(a.org.id)
      // B's retry returns B's row.
      expect(await b.tenant.departments.create(input)).toEqual(inB)
    })

    it('hooks see the repeated create as an insert of the same row (the first afterCommit may have been lost)', async () => {
      const id = randomUUID()
      committed.length = 0
      await a.tenant.departments.create({ id, name: 'Hooks', code: 'HOOKS' })
      await a.tenant.departments.create({ id, name: 'Hooks', code: 'HOOKS' })
      expect(committed.map((e) => [e.entity, e.operation, e.ids])).toEqual([
        ['departments', 'insert', [id]],
        ['departments', 'insert', [id]],
      ])
    })

    it('a bad id is a ValidationError, before any SQL', async () => {
      for (const id of ['not-a-uuid', '', 42, null, '00000000-0000-0000-0000-00000000000g']) {
        const error = await rejection(a.tenant.departments.create({ id, name: 'Bad', code: 'BAD' } as never))
        expect(isCallsheetDbError(error, 'VALIDATION_FAILED'), String(id)).toBe(true)
      }
      const [row] = await admin().query<{ n: number }>(
        `select count(*)::int as n from departments where organization_id = $1 and code = 'BAD'`,
        [a.org.id],
      )
      expect(row?.n).toBe(0)
    })

    it('inside a transaction: the retried create is a no-op in the same unit, and other writes go on', async () => {
      const id = randomUUID()
      const [first, again] = await a.tenant.transaction(async (tx) => {
        const row = await tx.departments.create({ id, name: 'Rigging', code: 'RIG' })
        return [row, await tx.departments.create({ id, name: 'Rigging', code: 'RIG' })]
      })
      expect(again).toEqual(first)
      expect(await written('departments', a.org.id, id)).toEqual({ rows: 1, audit: 1 })
    })

    it('without an id, create is not idempotent (unchanged): a second create of a natural key is refused', async () => {
      await a.tenant.departments.create({ name: 'Lighting', code: 'LITE' })
      const error = await rejection(a.tenant.departments.create({ name: 'Lighting', code: 'LITE' }))
      expect(isCallsheetDbError(error, 'UNIQUE_VIOLATION')).toBe(true)
      expect(error).not.toMatchObject({ constraint: 'departments_pkey' })
    })
  },
  { hooks: [{ name: 'record', afterCommit: (events) => void committed.push(...events) }] },
  { citus: true },
)

function zip<A, B>(as: readonly A[], bs: readonly B[]): [A, B][] {
  return as.map((x, i) => [x, bs[i] as B])
}
