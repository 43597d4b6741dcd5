import { beforeAll, expect, it } from 'vitest'
import type { ChangeEvent, DatabaseHook } from '../src/unit-of-work/hooks'
import { describeEachDatabase } from './harness/engines'
import { fillTenant, type FilledTenant } from './support/fixtures'

const calls: string[] = []
const committed: ChangeEvent[][] = []
const hookErrors: string[] = []
let rejectNext = false

const hooks: DatabaseHook[] = [
  {
    name: 'recorder',
    beforeWrite: (ctx) => {
      calls.push(`before:${ctx.entity}:${ctx.operation}:${ctx.operationId}`)
      if (rejectNext) {
        rejectNext = false
        throw new Error('rejected by policy')
      }
    },
    afterWrite: (ctx) => {
      calls.push(`after:${ctx.entity}:${ctx.operation}:${ctx.operationId}`)
    },
    afterCommit: (events) => {
      committed.push([...events])
    },
  },
  {
    name: 'enricher',
    beforeWrite: (ctx) => (ctx.entity === 'contacts' && ctx.operation === 'insert' ? { notes: 'via hook' } : undefined),
  },
  {
    name: 'flaky-notifier',
    afterCommit: () => {
      throw new Error('webhook down')
    },
  },
]

describeEachDatabase(
  'hooks',
  (ctx) => {
    let a: FilledTenant
    beforeAll(async () => {
      a = await fillTenant(ctx().db, 'hooks')
    })

    it('run beforeWrite → statement → afterWrite in order, correlated by operationId, then afterCommit once', async () => {
      calls.length = 0
      committed.length = 0
      const contact = await a.tenant.contacts.create({ productionId: a.production.id, name: 'Hooked' })
      expect(calls).toHaveLength(2)
      const [before, after] = calls
      expect(before?.startsWith('before:contacts:insert:')).toBe(true)
      expect(after?.split(':')[3]).toBe(before?.split(':')[3])
      expect(committed).toEqual([
        [expect.objectContaining({ entity: 'contacts', operation: 'insert', ids: [contact.id] })],
      ])
    })

    it('beforeWrite can enrich: returned values are merged into the row (and validated)', async () => {
      const contact = await a.tenant.contacts.create({ productionId: a.production.id, name: 'Enriched' })
      expect(contact.notes).toBe('via hook')
    })

    it('beforeWrite can reject: nothing is written, no afterWrite, no afterCommit', async () => {
      calls.length = 0
      committed.length = 0
      rejectNext = true
      await expect(a.tenant.departments.create({ name: 'Rejected', code: 'REJ' })).rejects.toThrow('rejected by policy')
      expect(calls.filter((c) => c.startsWith('after:'))).toEqual([])
      expect(committed).toEqual([])
      expect(await a.tenant.departments.count({ where: { code: 'REJ' } })).toBe(0)
    })

    it('a transaction delivers all its events to afterCommit at once; a rollback delivers none', async () => {
      committed.length = 0
      await a.tenant.transaction(async (tx) => {
        const p = await tx.productions.create({ title: 'Hooked Tx' })
        await tx.contacts.create({ productionId: p.id, name: 'One' })
        await tx.productions.softDelete(p.id)
      })
      expect(committed).toHaveLength(1)
      expect(committed[0]!.map((e) => `${e.entity}:${e.operation}`)).toEqual([
        'productions:insert',
        'contacts:insert',
        'productions:soft_delete',
        'contacts:soft_delete',
        'uploads:soft_delete',
      ])
      committed.length = 0
      await expect(
        a.tenant.transaction(async (tx) => {
          await tx.productions.create({ title: 'Rolled Back' })
          throw new Error('no')
        }),
      ).rejects.toThrow('no')
      expect(committed).toEqual([])
    })

    it('a failing afterCommit hook goes to onHookError and never undoes the commit', async () => {
      hookErrors.length = 0
      const d = await a.tenant.departments.create({ name: 'Kept', code: 'KEPT' })
      expect(hookErrors).toContain('flaky-notifier: webhook down')
      expect(await a.tenant.departments.getById(d.id)).toBeDefined()
    })

    it('hook events name the entity and the operation as the audit rows do', async () => {
      committed.length = 0
      const key = await a.tenant.apiKeys.create({ name: 'vocabulary' })
      const contact = await a.tenant.contacts.create({ productionId: a.production.id, name: 'Vocabulary' })
      await a.tenant.contacts.softDelete(contact.id)
      await a.tenant.contacts.restore(contact.id)
      await a.tenant.apiKeys.purge(key.id)
      const events = committed.flat().map((e) => `${e.entity}:${e.operation}:${e.ids.join(',')}`)
      const rows = await ctx().engine.admin.query<{ entity_type: string; action: string; entity_id: string }>(
        `select entity_type, action, entity_id from audit_logs where entity_id = any($1::uuid[]) order by created_at, id`,
        [[key.id, contact.id]],
      )
      expect(events).toEqual(rows.map((r) => `${r.entity_type}:${r.action}:${r.entity_id}`))
      expect(events[0]).toBe(`api_keys:insert:${key.id}`)
    })

    it('reads run no hooks', async () => {
      calls.length = 0
      await a.tenant.contacts.findMany()
      await a.tenant.contacts.search('Hooked')
      expect(calls).toEqual([])
    })
  },
  {
    hooks,
    onHookError: (error, hook) => hookErrors.push(`${hook.name}: ${(error as Error).message}`),
  },
)

describeEachDatabase(
  'afterWrite failure',
  (ctx) => {
    it('rolls back the statement it followed', async () => {
      const org = await ctx().db.organizations.create({ name: 'AW', slug: `aw-${Date.now().toString(36)}` })
      const tenant = ctx().db.tenant(org.id)
      await expect(tenant.departments.create({ name: 'Doomed', code: 'DOOM' })).rejects.toThrow('audit sink full')
      const [row] = await ctx().engine.admin.query<{ n: number }>(
        `select count(*)::int as n from departments where organization_id = $1`,
        [org.id],
      )
      expect(row?.n).toBe(0)
    })
  },
  {
    hooks: [
      {
        name: 'strict-sink',
        afterWrite: () => {
          throw new Error('audit sink full')
        },
      },
    ],
  },
)
