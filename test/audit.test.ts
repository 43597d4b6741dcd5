import { beforeAll, describe, expect, inject, it } from 'vitest'
import { isCallsheetDbError } from '../src/errors'
import type { AuditLog } from '../src/schema'
import { describeEachDatabase } from './harness/engines'
import { asAppRole } from './harness/sql-runner'
import { fillTenant, type FilledTenant } from './support/fixtures'

const since = new Date(Date.now() - 60_000)

describeEachDatabase(
  'audit trail',
  (ctx) => {
    let a: FilledTenant
    let b: FilledTenant

    beforeAll(async () => {
      a = await fillTenant(ctx().db, 'audit-a')
      b = await fillTenant(ctx().db, 'audit-b')
    })

    /** Audit rows of one entity, oldest first, as the owner sees them. */
    const trail = async (entityId: string) =>
      await ctx().engine.admin.query<{
        action: string
        entity_type: string
        old_values: Record<string, unknown> | null
        new_values: Record<string, unknown> | null
        user_id: string | null
        api_key_id: string | null
        ip_address: string | null
        request_id: string | null
        organization_id: string
      }>(`select * from audit_logs where entity_id = $1 order by created_at, id`, [entityId])

    it('records each write path once, with the action and the values that changed', async () => {
      const t = a.tenant.withContext({
        actorId: a.user.id,
        apiKeyId: a.apiKey.id,
        ip: '203.0.113.9',
        requestId: 'req-audit-1',
      })
      const c = await t.contacts.create({ productionId: a.production.id, name: 'Audit Me', phone: '555-0100' })
      await t.contacts.update(c.id, { phone: '555-0199' })
      await t.contacts.update(c.id, { phone: '555-0199' }) // no change: no audit row
      await t.contacts.softDelete(c.id)
      await t.contacts.restore(c.id)
      await t.contacts.purge(c.id)
      const rows = await trail(c.id)
      expect(rows.map((r) => r.action)).toEqual(['insert', 'update', 'soft_delete', 'restore', 'purge'])
      expect(rows[0]?.new_values).toMatchObject({ name: 'Audit Me', phone: '555-0100', organization_id: a.org.id })
      expect(rows[0]?.old_values).toBeNull()
      expect(rows[1]).toMatchObject({ old_values: { phone: '555-0100' }, new_values: { phone: '555-0199' } })
      expect(Object.keys(rows[2]!.new_values!)).toEqual(['deleted_at'])
      expect(rows[4]?.old_values).toMatchObject({ name: 'Audit Me' })
      for (const row of rows) {
        expect(row).toMatchObject({
          entity_type: 'contacts',
          organization_id: a.org.id,
          user_id: a.user.id,
          api_key_id: a.apiKey.id,
          request_id: 'req-audit-1',
        })
        expect(String(row.ip_address)).toBe('203.0.113.9')
      }
    })

    it('audits cascades, batches, transitions and keys; never the key hash, never a key’s last use', async () => {
      const t = a.tenant
      const p = await t.productions.create({ title: 'Audited Cascade' })
      const batch = await t.contacts.createMany(
        Array.from({ length: 25 }, (_, i) => ({ productionId: p.id, name: `Extra ${i}` })),
      )
      await t.productions.softDelete(p.id)
      for (const c of batch.slice(0, 3))
        expect((await trail(c.id)).map((r) => r.action)).toEqual(['insert', 'soft_delete'])
      await t.productions.restore(p.id)
      expect((await trail(batch[0]!.id)).map((r) => r.action)).toEqual(['insert', 'soft_delete', 'restore'])

      const u = await t.uploads.create({
        productionId: p.id,
        fileName: 'a.pdf',
        mimeType: 'application/pdf',
        sizeBytes: 1,
        checksumSha256: 'e'.repeat(64),
        storageKey: 'a',
      })
      await t.uploads.markProcessing(u.id)
      await t.uploads.failExtraction(u.id, 'unreadable')
      const uploadTrail = await trail(u.id)
      expect(uploadTrail.map((r) => r.action)).toEqual(['insert', 'update', 'update'])
      expect(uploadTrail[2]?.new_values).toMatchObject({ status: 'failed', error: 'unreadable' })

      const key = await t.apiKeys.create({ name: 'audited' })
      await ctx().db.apiKeys.verify(key.plaintext)
      await t.apiKeys.revoke(key.id)
      const keyTrail = await trail(key.id)
      expect(keyTrail.map((r) => r.action)).toEqual(['insert', 'update'])
      expect(JSON.stringify(keyTrail)).not.toContain('key_hash')
      expect(Object.keys(keyTrail[1]!.new_values!)).toEqual(['revoked_at'])
    })

    it('a rollback leaves no audit row; a refused batch leaves none either', async () => {
      const before = await ctx().engine.admin.query<{ n: number }>('select count(*)::int as n from audit_logs')
      await expect(
        a.tenant.transaction(async (tx) => {
          const p = await tx.productions.create({ title: 'Never Audited' })
          await tx.contacts.create({ productionId: p.id, name: 'Ghost' })
          throw new Error('roll back')
        }),
      ).rejects.toThrow('roll back')
      await expect(
        a.tenant.contacts.createMany([
          { productionId: a.production.id, name: 'Fine' },
          { productionId: b.production.id, name: 'Cross-tenant: the database refuses the batch' },
        ]),
      ).rejects.toSatisfy((e) => isCallsheetDbError(e, 'FOREIGN_KEY_VIOLATION'))
      const after = await ctx().engine.admin.query<{ n: number }>('select count(*)::int as n from audit_logs')
      expect(after[0]?.n).toBe(before[0]?.n)
    })

    it('a run of mixed writes, some rolled back: the log matches exactly what committed', async () => {
      const t = a.tenant.withContext({ requestId: 'mixed-run' })
      const expected: string[] = []
      for (let i = 0; i < 12; i++) {
        const commit = i % 3 !== 1
        const work = t.transaction(async (tx) => {
          const d = await tx.departments.create({ name: `Dept ${i}`, code: `D${i}` })
          const local = [`insert:${d.id}`]
          if (i % 2 === 0) {
            await tx.departments.update(d.id, { sortOrder: i + 1 })
            local.push(`update:${d.id}`)
          }
          if (i % 4 === 0) {
            await tx.departments.softDelete(d.id)
            local.push(`soft_delete:${d.id}`)
          }
          if (!commit) throw new Error(`abort ${i}`)
          expected.push(...local)
        })
        if (commit) await work
        else await expect(work).rejects.toThrow(`abort ${i}`)
      }
      const rows = await ctx().engine.admin.query<{ action: string; entity_id: string }>(
        `select action, entity_id from audit_logs where request_id = 'mixed-run' order by created_at, id`,
      )
      expect(rows.map((r) => `${r.action}:${r.entity_id}`)).toEqual(expected)
    })

    it('tenant.auditLogs: history of one row and a time-range listing, paged newest first, never another tenant’s', async () => {
      const t = a.tenant.withContext({ actorId: a.user.id })
      const d = await t.departments.create({ name: 'Paged', code: 'PAGED' })
      for (let i = 0; i < 5; i++) await t.departments.update(d.id, { sortOrder: 100 + i })
      const seen: AuditLog[] = []
      let cursor: string | undefined
      do {
        const page = await t.auditLogs.history('departments', d.id, { limit: 2, ...(cursor ? { cursor } : {}) })
        seen.push(...page.rows)
        cursor = page.nextCursor ?? undefined
      } while (cursor)
      expect(seen.map((r) => r.action)).toEqual(['update', 'update', 'update', 'update', 'update', 'insert'])
      expect(seen[0]?.newValues).toEqual({ sort_order: 104 })

      const listed = await t.auditLogs.findMany({
        from: since,
        actorId: a.user.id,
        entityType: 'departments',
        limit: 1000,
      })
      expect(listed.rows.length).toBeGreaterThanOrEqual(6)
      expect(listed.rows.every((r) => r.organizationId === a.org.id && r.userId === a.user.id)).toBe(true)
      expect((await t.auditLogs.history('contacts', b.contact.id)).rows).toEqual([])
      expect(
        (await b.tenant.auditLogs.findMany({ from: since, limit: 1000 })).rows.every(
          (r) => r.organizationId === b.org.id,
        ),
      ).toBe(true)
      await expect(t.auditLogs.findMany({ from: new Date(), to: since })).rejects.toSatisfy((e) =>
        isCallsheetDbError(e, 'VALIDATION_FAILED'),
      )
    })

    it('changes that share a clock tick keep the order they were written in, across pages', async () => {
      // PGlite's clock is coarse: consecutive changes of one row can share a created_at. A fixed
      // created_at forces that tie on both engines; the id default alone must then keep the order.
      const entityId = crypto.randomUUID()
      const actions = ['insert', 'update', 'soft_delete', 'restore', 'update', 'soft_delete', 'restore', 'purge']
      const written = Array.from({ length: 40 }, (_, i) => actions[i % actions.length]!)
      for (const action of written) {
        await ctx().engine.admin.query(
          `insert into audit_logs (organization_id, action, entity_type, entity_id, created_at)
         values ($1, $2, 'contacts', $3, '2031-06-01T12:00:00Z')`,
          [a.org.id, action, entityId],
        )
      }
      const seen: string[] = []
      let cursor: string | undefined
      do {
        const page = await a.tenant.auditLogs.history('contacts', entityId, { limit: 7, ...(cursor ? { cursor } : {}) })
        seen.push(...page.rows.map((r) => r.action))
        cursor = page.nextCursor ?? undefined
      } while (cursor)
      expect(seen).toEqual([...written].reverse())
    })

    it('maintenance: partitions across a year boundary, rows moved out of DEFAULT, retention by detach + drop', async () => {
      const m = ctx().db.maintenance
      expect(await m.ensureAuditPartitions({ from: new Date('1990-11-15T00:00:00Z'), monthsAhead: 3 })).toEqual([
        'audit_logs_1990_11',
        'audit_logs_1990_12',
        'audit_logs_1991_01',
        'audit_logs_1991_02',
      ])
      expect(await m.ensureAuditPartitions({ from: new Date('1990-11-15T00:00:00Z'), monthsAhead: 3 })).toEqual([])

      // A row for a month with no partition lands in DEFAULT: no insert ever fails…
      await ctx().engine.admin.query(
        `insert into audit_logs (organization_id, action, entity_type, entity_id, created_at) values ($1, 'insert', 'contacts', $2, '1991-03-31T23:30:00Z')`,
        [a.org.id, a.contact.id],
      )
      const inDefault = async () =>
        (
          await ctx().engine.admin.query<{ n: number }>(
            `select count(*)::int as n from audit_logs_default where created_at < '1992-01-01'`,
          )
        )[0]?.n
      expect(await inDefault()).toBe(1)
      // …and is moved into its month when that month is created.
      expect(await m.ensureAuditPartitions({ from: new Date('1991-03-01T00:00:00Z'), monthsAhead: 0 })).toEqual([
        'audit_logs_1991_03',
      ])
      expect(await inDefault()).toBe(0)
      const [moved] = await ctx().engine.admin.query<{ n: number }>('select count(*)::int as n from audit_logs_1991_03')
      expect(moved?.n).toBe(1)

      expect(await m.dropAuditPartitionsBefore(new Date('1991-01-01T00:00:00Z'))).toEqual([
        'audit_logs_1990_11',
        'audit_logs_1990_12',
      ])
      expect(await m.dropAuditPartitionsBefore(new Date('1991-01-01T00:00:00Z'))).toEqual([])
      await expect(m.ensureAuditPartitions({ monthsAhead: 500 })).rejects.toSatisfy((e) =>
        isCallsheetDbError(e, 'VALIDATION_FAILED'),
      )
    })

    it('the app role can read its audit rows but not write them, even through the tenant transaction', async () => {
      const [row] = await asAppRole(ctx().engine.admin, a.org.id, (tx) =>
        tx.query<{ n: number }>('select count(*)::int as n from audit_logs'),
      )
      expect(row!.n).toBeGreaterThan(0)
    })

    // Since 0015 an id is unique per tenant only: one statement touching two tenants' rows with the same
    // id (the owner's, RLS aside) pairs each old row with its own new row, and names the entity by the
    // trigger's argument (on a Citus worker TG_TABLE_NAME would be the shard's name).
    it('pairs old and new rows by (organization_id, id): the same id in two tenants, in one statement', async () => {
      const admin = ctx().engine.admin
      const id = crypto.randomUUID()
      for (const [org, name] of [
        [a.org.id, 'Twin A'],
        [b.org.id, 'Twin B'],
      ] as const) {
        await admin.query(`insert into departments (id, organization_id, name, code) values ($1, $2, $3, 'TWIN')`, [
          id,
          org,
          name,
        ])
      }
      await admin.query(`update departments set name = name || ' 2' where id = $1`, [id])
      await admin.query(`delete from departments where id = $1`, [id])
      const rows = await trail(id)
      const of = (org: string) =>
        rows
          .filter((r) => r.organization_id === org)
          .map((r) => [r.action, r.entity_type, r.old_values?.name ?? null, r.new_values?.name ?? null])
      expect(of(a.org.id)).toEqual([
        ['insert', 'departments', null, 'Twin A'],
        ['update', 'departments', 'Twin A', 'Twin A 2'],
        ['purge', 'departments', 'Twin A 2', null],
      ])
      expect(of(b.org.id)).toEqual([
        ['insert', 'departments', null, 'Twin B'],
        ['update', 'departments', 'Twin B', 'Twin B 2'],
        ['purge', 'departments', 'Twin B 2', null],
      ])
    })
  },
  {},
  { citus: true },
)

const server = inject('postgresServer')
describe.runIf(server)('audit partition pruning [postgres]', () => {
  it('a time-range listing reads only the months it covers (EXPLAIN)', async () => {
    const { openEngine } = await import('./harness/engines')
    const { createDatabase } = await import('../src')
    const engine = await openEngine('postgres')
    const logged: { sql: string; params: unknown[] }[] = []
    const db = createDatabase({
      primary: engine.url!,
      admin: engine.ownerUrl!, // the partitions are the owner's work
      logger: { debug: (_m, f) => logged.push({ sql: String(f?.sql), params: (f?.params as unknown[]) ?? [] }) },
    })
    try {
      await db.maintenance.ensureAuditPartitions({ from: new Date('2030-01-01T00:00:00Z'), monthsAhead: 5 })
      const org = await db.organizations.create({ name: 'Pruned', slug: 'pruned' })
      logged.length = 0
      await db
        .tenant(org.id)
        .auditLogs.findMany({ from: new Date('2030-03-01T00:00:00Z'), to: new Date('2030-04-01T00:00:00Z') })
      const query = logged.find((q) => q.sql.includes('audit_logs'))!
      const plan = JSON.stringify(
        await asAppRole(engine.admin, org.id, (tx) => tx.query(`explain (format json) ${query.sql}`, query.params)),
      )
      expect(plan).toContain('audit_logs_2030_03')
      // The primary key (organization_id, created_at, id) serves the page, newest first, without a sort
      // (audit_logs_organization_created_idx, dropped by 0015, did before). Seq scans off: the partition is empty.
      const indexed = JSON.stringify(
        await asAppRole(engine.admin, org.id, async (tx) => {
          await tx.exec('set local enable_seqscan = off')
          return tx.query(`explain (format json) ${query.sql}`, query.params)
        }),
      )
      expect(indexed).toContain('audit_logs_2030_03_pkey')
      expect(indexed).not.toContain('"Sort"')
      for (const other of [
        'audit_logs_2030_01',
        'audit_logs_2030_02',
        'audit_logs_2030_04',
        'audit_logs_2030_05',
        'audit_logs_default',
      ]) {
        expect(plan).not.toContain(other)
      }
    } finally {
      await db.close()
      await engine.close()
    }
  })
})
