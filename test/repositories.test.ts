import { beforeAll, expect, it } from 'vitest'
import { isCallsheetDbError } from '../src/errors'
import { describeEachDatabase } from './harness/engines'
import { asAppRole } from './harness/sql-runner'
import { fillTenant, type FilledTenant } from './support/fixtures'

const queries: string[] = []
const logger = { debug: (_message: string, fields?: Record<string, unknown>) => queries.push(String(fields?.sql)) }

describeEachDatabase(
  'repositories',
  (ctx) => {
    let a: FilledTenant

    beforeAll(async () => {
      a = await fillTenant(ctx().db, 'repo')
    })

    it('create → findById → update → softDelete → restore → purge round-trips on every soft-deletable repository', async () => {
      const t = a.tenant
      const cases = [
        { repo: t.users, input: { email: 'lifecycle@repo.example', name: 'Life Cycle' }, patch: { name: 'Renamed' } },
        { repo: t.departments, input: { name: 'Grip', code: 'GRIP' }, patch: { name: 'Grip & Electric' } },
        { repo: t.productions, input: { title: 'Short Film' }, patch: { status: 'wrapped' as const } },
        {
          repo: t.contacts,
          input: { productionId: a.production.id, name: 'Dana Day' },
          patch: { phone: '+44 20 7946 0000' },
        },
        {
          repo: t.uploads,
          input: {
            productionId: a.production.id,
            fileName: 'day-02.pdf',
            mimeType: 'application/pdf',
            sizeBytes: 10,
            checksumSha256: 'b'.repeat(64),
            storageKey: 'k/day-02.pdf',
          },
          patch: { fileName: 'day-02-v2.pdf' },
        },
      ]
      for (const { repo, input, patch } of cases) {
        // The union of repositories is not callable with a union of inputs; each pair matches at runtime.
        const r = repo as unknown as {
          create(i: unknown): Promise<{ id: string; updatedAt: Date; deletedAt: Date | null }>
          findById(id: string, o?: object): Promise<{ id: string; deletedAt: Date | null } | undefined>
          update(id: string, p: unknown): Promise<Record<string, unknown>>
          softDelete(id: string): Promise<{ deletedAt: Date | null }>
          restore(id: string): Promise<{ deletedAt: Date | null }>
          purge(id: string): Promise<void>
        }
        const created = await r.create(input)
        expect(created.id).toMatch(/^[0-9a-f-]{36}$/)
        expect((await r.findById(created.id))?.id).toBe(created.id)
        const updated = await r.update(created.id, patch)
        expect(updated).toMatchObject(patch)
        const deleted = await r.softDelete(created.id)
        expect(deleted.deletedAt).toBeInstanceOf(Date)
        expect(await r.findById(created.id)).toBeUndefined()
        expect((await r.findById(created.id, { deleted: 'include' }))?.id).toBe(created.id)
        expect((await r.findById(created.id, { deleted: 'only' }))?.id).toBe(created.id)
        await expect(r.update(created.id, patch)).rejects.toSatisfy((e) => isCallsheetDbError(e, 'NOT_FOUND'))
        await expect(r.softDelete(created.id)).rejects.toSatisfy((e) => isCallsheetDbError(e, 'NOT_FOUND'))
        expect((await r.restore(created.id)).deletedAt).toBeNull()
        await expect(r.restore(created.id)).rejects.toSatisfy((e) => isCallsheetDbError(e, 'NOT_FOUND'))
        await r.purge(created.id)
        expect(await r.findById(created.id, { deleted: 'include' })).toBeUndefined()
        await expect(r.purge(created.id)).rejects.toSatisfy((e) => isCallsheetDbError(e, 'NOT_FOUND'))
      }
    })

    it('soft-deleting a production takes its live contacts and uploads along; restore brings back exactly those', async () => {
      const t = a.tenant
      const p = await t.productions.create({ title: 'Cascade' })
      const [c1, c2, c3] = await t.contacts.createMany([
        { productionId: p.id, name: 'Deleted Before' },
        { productionId: p.id, name: 'Taken Along One' },
        { productionId: p.id, name: 'Taken Along Two' },
      ])
      const u = await t.uploads.create({
        productionId: p.id,
        fileName: 'c.pdf',
        mimeType: 'application/pdf',
        sizeBytes: 1,
        checksumSha256: 'c'.repeat(64),
        storageKey: 'c',
      })
      await t.contacts.softDelete(c1!.id)
      await t.productions.softDelete(p.id)
      expect(await t.contacts.count({ where: { productionId: p.id } })).toBe(0)
      expect(await t.uploads.findById(u.id)).toBeUndefined()
      expect(await t.contacts.count({ where: { productionId: p.id }, deleted: 'only' })).toBe(3)

      await t.productions.restore(p.id)
      const live = await t.contacts.findMany({ where: { productionId: p.id }, orderBy: 'name' })
      expect(live.rows.map((c) => c.id).sort()).toEqual([c2!.id, c3!.id].sort())
      expect((await t.uploads.getById(u.id)).deletedAt).toBeNull()
      expect((await t.contacts.findById(c1!.id, { deleted: 'only' }))?.deletedWith).toBeNull()
    })

    it('a child restored on its own, then deleted on its own, stays deleted when its production is restored', async () => {
      const t = a.tenant
      const p = await t.productions.create({ title: 'Cascade twice' })
      const [own, along] = await t.contacts.createMany([
        { productionId: p.id, name: 'Restored Then Deleted Alone' },
        { productionId: p.id, name: 'Taken Along' },
      ])
      await t.productions.softDelete(p.id)
      // Brought back on its own while the production is deleted: no longer part of that cascade…
      expect((await t.contacts.restore(own!.id)).deletedWith).toBeNull()
      // …so deleting it again is its own deletion, which restoring the production must leave alone.
      expect((await t.contacts.softDelete(own!.id)).deletedWith).toBeNull()
      await t.productions.restore(p.id)
      const live = await t.contacts.findMany({ where: { productionId: p.id } })
      expect(live.rows.map((c) => c.id)).toEqual([along!.id])
      expect((await t.contacts.findById(own!.id, { deleted: 'only' }))?.deletedAt).not.toBeNull()
      // The production's restore wrote one audit row per child it brought back, and none for the other.
      const history = await t.auditLogs.history('contacts', own!.id)
      expect(history.rows.map((r) => r.action)).toEqual(['soft_delete', 'restore', 'soft_delete', 'insert'])
    })

    it('the database refuses a live row that still carries a cascade tag, even from raw SQL as the app role', async () => {
      const t = a.tenant
      const p = await t.productions.create({ title: 'Cascade raw' })
      const c = await t.contacts.create({ productionId: p.id, name: 'Raw Restore' })
      await t.productions.softDelete(p.id)
      const error = await asAppRole(ctx().engine.admin, a.org.id, (tx) =>
        tx.query('update contacts set deleted_at = null where id = $1', [c.id]),
      ).catch((e: unknown) => e)
      expect(String((error as Error).message)).toMatch(/contacts_deleted_with_only_deleted/)
      expect((await t.contacts.findById(c.id, { deleted: 'only' }))?.deletedWith).toBe(p.id)
    })

    it('restoring a row whose live-unique value was taken meanwhile is a clear conflict', async () => {
      const t = a.tenant
      const first = await t.users.create({ email: 'twin@repo.example', name: 'First' })
      await t.users.softDelete(first.id)
      await t.users.create({ email: 'TWIN@repo.example', name: 'Second' })
      const error = await t.users.restore(first.id).catch((e: unknown) => e)
      expect(isCallsheetDbError(error, 'CONFLICT')).toBe(true)
      expect(String((error as Error).message)).toMatch(/cannot restore users/)
      expect(await t.users.findById(first.id)).toBeUndefined()
    })

    it('maps constraint violations to typed errors with the constraint and table', async () => {
      const error = await a.tenant.departments.create({ name: 'Camera B', code: 'CAM' }).catch((e: unknown) => e)
      expect(isCallsheetDbError(error, 'UNIQUE_VIOLATION')).toBe(true)
      expect(error).toMatchObject({ constraint: 'departments_code_live_key', table: 'departments' })
    })

    it('findMany filters on allow-listed columns and pages through every row exactly once with keyset cursors', async () => {
      const t = a.tenant
      const p = await t.productions.create({ title: 'Paging' })
      const names = Array.from({ length: 23 }, (_, i) => `Person ${String(i).padStart(2, '0')}`)
      await t.contacts.createMany(
        names.map((name, i) => ({ productionId: p.id, name, role: i % 2 ? 'Grip' : 'Gaffer' })),
      )
      for (const direction of ['asc', 'desc'] as const) {
        const seen: string[] = []
        let cursor: string | undefined
        let pages = 0
        do {
          const page = await t.contacts.findMany({
            where: { productionId: p.id },
            orderBy: 'name',
            direction,
            limit: 5,
            ...(cursor ? { cursor } : {}),
          })
          seen.push(...page.rows.map((r) => r.name))
          cursor = page.nextCursor ?? undefined
          pages++
        } while (cursor)
        expect(pages).toBe(5)
        expect(seen).toEqual(direction === 'asc' ? names : [...names].reverse())
      }
      expect(await t.contacts.count({ where: { productionId: p.id, role: 'Grip' } })).toBe(11)
      expect(await t.contacts.count({ where: { productionId: p.id, role: ['Grip', 'Gaffer'] } })).toBe(23)
      expect(await t.contacts.count({ where: { productionId: p.id, departmentId: null } })).toBe(23)
      const byDate = await t.contacts.findMany({ where: { productionId: p.id }, orderBy: 'createdAt', limit: 10 })
      const next = await t.contacts.findMany({
        where: { productionId: p.id },
        orderBy: 'createdAt',
        limit: 10,
        cursor: byDate.nextCursor!,
      })
      expect(new Set([...byDate.rows, ...next.rows].map((r) => r.id)).size).toBe(20)
    })

    it('search ranks by trigram similarity, stays inside the tenant and skips deleted contacts', async () => {
      const t = a.tenant
      const p = await t.productions.create({ title: 'Search' })
      const rows = await t.contacts.createMany(
        ['Jon Smith', 'John Smyth', 'Joanna Smithers', 'Maria Lopez', 'Jonathan Smithson'].map((name) => ({
          productionId: p.id,
          name,
        })),
      )
      await t.contacts.softDelete(rows[4]!.id)
      const hits = await t.contacts.search('jon smth', { productionId: p.id })
      expect(hits[0]?.name).toBe('Jon Smith')
      expect(hits.map((h) => h.name)).not.toContain('Maria Lopez')
      expect(hits.map((h) => h.name)).not.toContain('Jonathan Smithson')
      for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score)
      const loose = await t.contacts.search('jon smth', { productionId: p.id, threshold: 0.05 })
      expect(loose.length).toBeGreaterThanOrEqual(hits.length)
      expect(await t.contacts.search('jon smth', { productionId: p.id, limit: 1 })).toHaveLength(1)
    })

    it('search returns the top `limit` by score, then id, of the names at or over the threshold', async () => {
      const t = a.tenant
      const p = await t.productions.create({ title: 'Search Limit' })
      const names = ['Ada Quill', 'Ada Quil', 'Ada Quail', 'Adam Quill', 'Ida Quill', 'Ada Quill', 'Zebediah Ordway']
      await t.contacts.createMany(names.map((name) => ({ productionId: p.id, name })))
      const all = await t.contacts.search('ada quill', { productionId: p.id, threshold: 0, limit: 100 })
      expect(all).toHaveLength(names.length)
      // Best first; equal scores in id order.
      for (let i = 1; i < all.length; i++) {
        const [before, after] = [all[i - 1]!, all[i]!]
        expect(before.score > after.score || (before.score === after.score && before.id < after.id)).toBe(true)
      }
      for (const limit of [1, 2, 3, 5]) {
        const top = await t.contacts.search('ada quill', { productionId: p.id, threshold: 0, limit })
        expect(top.map((h) => h.score)).toEqual(all.slice(0, limit).map((h) => h.score))
      }
      // The threshold filters the nearest names: none under it, none over it left out.
      const strict = await t.contacts.search('ada quill', { productionId: p.id, threshold: 0.5, limit: 100 })
      expect(strict.map((h) => h.id)).toEqual(all.filter((h) => h.score >= 0.5).map((h) => h.id))
      expect(strict.map((h) => h.name)).not.toContain('Zebediah Ordway')
      expect(await t.contacts.search('ada quill', { productionId: p.id, threshold: 1, limit: 100 })).toHaveLength(2)
    })

    it('search at the default threshold (a prepared read) stays inside the tenant, alone and in a transaction', async () => {
      const t = a.tenant
      const b = await fillTenant(ctx().db, 'repo-search-other')
      const p = await t.productions.create({ title: 'Search Isolation' })
      const [mine] = await t.contacts.createMany([{ productionId: p.id, name: 'Quentin Vandermolen' }])
      const theirs = await b.tenant.productions.create({ title: 'Search Isolation' })
      await b.tenant.contacts.create({ productionId: theirs.id, name: 'Quentin Vandermolen' })
      const own = await t.contacts.search('quentin vandermolen')
      expect(own.map((h) => h.id)).toEqual([mine!.id])
      expect(own[0]!.score).toBe(1)
      // Another tenant's production id finds nothing; the other tenant sees only its own contact.
      expect(await t.contacts.search('quentin vandermolen', { productionId: theirs.id })).toEqual([])
      const other = await b.tenant.contacts.search('quentin vandermolen')
      expect(other.map((h) => h.organizationId)).toEqual([b.org.id])
      expect(other.map((h) => h.id)).not.toContain(mine!.id)
      // Inside a unit the same read runs there, under that unit's tenant.
      const inside = await t.transaction((tx) => tx.contacts.search('quentin vandermolen', { productionId: p.id }))
      expect(inside.map((h) => h.id)).toEqual([mine!.id])
    })

    it('findWithContacts and findManyWithContactCounts are one query each', async () => {
      const t = a.tenant
      const p = await t.productions.create({ title: 'One Query' })
      await t.contacts.createMany([
        { productionId: p.id, name: 'Zed' },
        { productionId: p.id, name: 'Amy' },
      ])
      queries.length = 0
      const full = await t.productions.findWithContacts(p.id)
      expect(queries, queries.join('\n---\n')).toHaveLength(1)
      expect(full?.contacts.map((c) => c.name)).toEqual(['Amy', 'Zed'])
      queries.length = 0
      const page = await t.productions.findManyWithContactCounts({ limit: 100 })
      expect(queries, queries.join('\n---\n')).toHaveLength(1)
      expect(page.rows.find((r) => r.id === p.id)?.contactCount).toBe(2)
      expect(page.rows.find((r) => r.id === a.production.id)?.contactCount).toBeGreaterThanOrEqual(1)
    })

    it('uploads move pending → processing → completed, or to failed; illegal transitions are refused', async () => {
      const t = a.tenant
      const make = () =>
        t.uploads.create({
          productionId: a.production.id,
          fileName: 'x.pdf',
          mimeType: 'application/pdf',
          sizeBytes: 1,
          checksumSha256: 'd'.repeat(64),
          storageKey: 'x',
        })
      const u = await make()
      await expect(t.uploads.completeExtraction(u.id, { contacts: [], confidence: 0.5 })).rejects.toSatisfy((e) =>
        isCallsheetDbError(e, 'INVALID_STATE'),
      )
      expect((await t.uploads.markProcessing(u.id)).status).toBe('processing')
      await expect(t.uploads.markProcessing(u.id)).rejects.toSatisfy((e) => isCallsheetDbError(e, 'INVALID_STATE'))
      const done = await t.uploads.completeExtraction(u.id, { contacts: [{ name: 'Jon Smith' }], confidence: 0.914 })
      expect(done).toMatchObject({ status: 'completed', extractionConfidence: 0.91, error: null })
      expect(done.processedAt).toBeInstanceOf(Date)
      expect(done.extractionResult?.contacts[0]?.name).toBe('Jon Smith')
      await expect(t.uploads.failExtraction(u.id, 'late')).rejects.toSatisfy((e) =>
        isCallsheetDbError(e, 'INVALID_STATE'),
      )
      const v = await make()
      expect(await t.uploads.failExtraction(v.id, 'unreadable PDF')).toMatchObject({
        status: 'failed',
        error: 'unreadable PDF',
      })
      await expect(t.uploads.markProcessing(v.id)).rejects.toSatisfy((e) => isCallsheetDbError(e, 'INVALID_STATE'))
    })

    it('API keys: plaintext returned once with a recognisable prefix, only its SHA-256 stored; verify, expiry, revoke', async () => {
      const t = a.tenant
      const key = await t.apiKeys.create({ name: 'ci', scopes: ['contacts:read'] })
      // csk_<organization id, 32 hex>_<secret, 64 hex>; the shown prefix is csk_ + the secret's start
      expect(key.plaintext).toBe(`csk_${a.org.id.replaceAll('-', '')}_${key.plaintext.slice(-64)}`)
      expect(key.plaintext).toMatch(/^csk_[0-9a-f]{32}_[0-9a-f]{64}$/)
      expect(key.prefix).toBe(`csk_${key.plaintext.slice(-64, -56)}`)
      const stored = await ctx().engine.admin.query<Record<string, unknown>>('select * from api_keys where id = $1', [
        key.id,
      ])
      expect(JSON.stringify(stored)).not.toContain(key.plaintext.slice(4))
      const { createHash } = await import('node:crypto')
      expect(stored[0]?.key_hash).toBe(createHash('sha256').update(key.plaintext).digest('hex'))
      expect(await t.apiKeys.findById(key.id)).not.toHaveProperty('plaintext')

      const verified = await ctx().db.apiKeys.verify(key.plaintext)
      expect(verified).toEqual({ apiKeyId: key.id, organizationId: a.org.id, name: 'ci', scopes: ['contacts:read'] })
      expect((await t.apiKeys.getById(key.id)).lastUsedAt).toBeInstanceOf(Date)
      expect(
        await ctx().db.apiKeys.verify(key.plaintext.slice(0, -1) + (key.plaintext.endsWith('0') ? '1' : '0')),
      ).toBeNull()
      expect(await ctx().db.apiKeys.verify('not a key')).toBeNull()

      const expired = await t.apiKeys.create({ name: 'old', expiresAt: new Date(Date.now() - 1000) })
      expect(await ctx().db.apiKeys.verify(expired.plaintext)).toBeNull()

      const revoked = await t.apiKeys.revoke(key.id)
      expect(revoked.revokedAt).toBeInstanceOf(Date)
      expect((await t.apiKeys.revoke(key.id)).revokedAt?.getTime()).toBe(revoked.revokedAt?.getTime())
      expect(await ctx().db.apiKeys.verify(key.plaintext)).toBeNull()
      expect('createMany' in t.apiKeys).toBe(false) // keys are issued one at a time (api.test-d.ts pins the type)
    })

    it('organizations: create, get, update, soft delete, restore and list with cursors', async () => {
      const orgs = ctx().db.organizations
      const stamp = Date.now().toString(36)
      const made = []
      for (let i = 0; i < 3; i++) made.push(await orgs.create({ name: `Listed ${i}`, slug: `listed-${stamp}-${i}` }))
      const got = await orgs.getById(made[0]!.id)
      expect(got.slug).toBe(`listed-${stamp}-0`)
      expect((await orgs.update(made[0]!.id, { settings: { locale: 'en-GB' } })).settings).toEqual({ locale: 'en-GB' })
      await orgs.softDelete(made[1]!.id)
      expect(await orgs.findById(made[1]!.id)).toBeUndefined()
      await expect(orgs.create({ name: 'Dup', slug: `listed-${stamp}-0` })).rejects.toSatisfy((e) =>
        isCallsheetDbError(e, 'UNIQUE_VIOLATION'),
      )
      const ids: string[] = []
      let cursor: string | undefined
      do {
        const page = await orgs.findMany({ limit: 2, ...(cursor ? { cursor } : {}) })
        ids.push(...page.rows.map((o) => o.id))
        cursor = page.nextCursor ?? undefined
      } while (cursor)
      expect(ids).toContain(made[0]!.id)
      expect(ids).not.toContain(made[1]!.id)
      expect(new Set(ids).size).toBe(ids.length)
      await orgs.restore(made[1]!.id)
      expect((await orgs.getById(made[1]!.id)).deletedAt).toBeNull()
    })

    it('transaction(fn) spans repositories: all commits, or a throw leaves nothing', async () => {
      const t = a.tenant
      const made = await t.transaction(async (tx) => {
        const p = await tx.productions.create({ title: 'Atomic' })
        const c = await tx.contacts.create({ productionId: p.id, name: 'Inside' })
        return { p, c }
      })
      expect(await t.contacts.getById(made.c.id)).toBeDefined()
      let createdId: string | undefined
      const failure = new Error('changed my mind')
      await expect(
        t.transaction(async (tx) => {
          const p = await tx.productions.create({ title: 'Never' })
          createdId = p.id
          await tx.contacts.create({ productionId: p.id, name: 'Never Either' })
          throw failure
        }),
      ).rejects.toBe(failure)
      expect(await t.productions.findById(createdId!, { deleted: 'include' })).toBeUndefined()
      expect(await t.contacts.count({ where: { role: 'never' } })).toBe(0)
    })

    it('withContext returns a copy and leaves the original unchanged', () => {
      const copy = a.tenant.withContext({ requestId: 'req-2', ip: '203.0.113.7' })
      expect(copy).not.toBe(a.tenant)
      expect(copy.context).toMatchObject({ requestId: 'req-2', ip: '203.0.113.7' })
      expect(a.tenant.context.ip).toBeUndefined()
      expect(copy.organizationId).toBe(a.tenant.organizationId)
    })
  },
  { logger },
  { citus: true },
)
