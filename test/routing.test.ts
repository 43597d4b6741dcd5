import { describe, expect, it } from 'vitest'
import { sql } from 'drizzle-orm'
import { isCallsheetDbError, type QueryEvent, type TenantClient } from '../src'
import { toLibraryError } from '../src/errors'
import type { TenantRuntime } from '../src/unit-of-work/tenant-runtime'
import { describeEachDatabase } from './harness/engines'
import { rawRead } from './support/raw-read'

// Routing without replicas, on both engines: the API is the same everywhere; with no replica every read
// is the primary's, tokens stay undefined, and tenant.read(fn) is a READ ONLY unit that refuses writes.

describeEachDatabase('routing without replicas', (ctx) => {
  const tenantOf = async (label: string) => {
    const { db } = ctx()
    const org = await db.organizations.create({ name: label, slug: `${label}-${Date.now().toString(36)}` })
    return db.tenant(org.id, { requestId: label })
  }

  it('reads run on the primary in a READ ONLY transaction with the tenant settings; no token is issued', async () => {
    const tenant = await tenantOf('no-replicas')
    const p = await tenant.productions.create({ title: 'Solo' })
    expect(tenant.consistencyToken).toBeUndefined()
    const seen = await rawRead<{ ro: string; org: string; role: string }>(
      tenant,
      "select current_setting('transaction_read_only') as ro, current_setting('app.organization_id') as org, current_user as role",
    )
    expect(seen).toEqual({ ro: 'on', org: tenant.organizationId, role: 'callsheet_app' })
    expect((await tenant.productions.findById(p.id))?.title).toBe('Solo')
    const routing = ctx().db.stats().routing
    expect(routing.replicas).toEqual([])
    expect(routing.reads.replica).toBe(0)
    expect(routing.reads.primary).toBeGreaterThanOrEqual(2)
    expect(Object.values(routing.fallbacks).every((n) => n === 0)).toBe(true)
  })

  it('tenant.read(fn) gives one read-only unit over every repository, and keeps tenant isolation', async () => {
    const a = await tenantOf('read-a')
    const b = await tenantOf('read-b')
    const p = await a.productions.create({ title: 'Mine' })
    await a.contacts.create({ productionId: p.id, name: 'Ann Able' })
    const [production, crew, audit] = await a.read(async (r) => [
      await r.productions.getById(p.id),
      await r.contacts.count({ where: { productionId: p.id } }),
      await r.auditLogs.history('productions', p.id),
    ])
    expect(production.title).toBe('Mine')
    expect(crew).toBe(1)
    expect(audit.rows.length).toBeGreaterThan(0)
    // Another tenant's id through tenant.read: not found, never data.
    expect(await b.read((r) => r.productions.findById(p.id))).toBeUndefined()
    expect(await b.read((r) => r.contacts.count({ where: { productionId: p.id } }))).toBe(0)
  })

  it('a query issued after its unit ended (a missing await) is refused, never sent on a reused connection', async () => {
    const tenant = await tenantOf('late')
    // The late query is chained on the unit having settled, not on a timer: a timer can fire while the
    // unit is still open on a busy machine, and a query issued then is rightly part of the unit.
    let settled!: () => void
    const unitSettled = new Promise<void>((resolve) => (settled = resolve))
    let late: Promise<unknown> | undefined
    const unit = tenant.read(async (r) => {
      late = unitSettled.then(() => r.contacts.count())
      return r.contacts.count()
    })
    expect(await unit).toBe(0)
    settled()
    const error = await late!.then(
      () => 'sent',
      (e: unknown) => e,
    )
    expect(error).not.toBe('sent')
    expect(isCallsheetDbError(error, 'INVALID_STATE'), String(error)).toBe(true)
    expect((error as Error).message).toContain('after its unit of work ended')
    // The client is still good for the next unit.
    expect(await tenant.contacts.count()).toBe(0)
  })

  it("a query issued in the same turn as the unit's last result runs inside the unit or is refused, never after COMMIT", async () => {
    // Found while examining the test above: on the server, a query built a microtask before the unit
    // ended (the check passed) was run after it, and postgres.js wrote it behind the COMMIT — outside the
    // transaction, as the login role, without the tenant settings.
    const tenant = await tenantOf('same-turn')
    const runtime = (tenant as unknown as { runtime: TenantRuntime }).runtime
    const probe = sql.raw(
      "select current_user as role, current_setting('app.organization_id', true) as org, " +
        "current_setting('transaction_read_only') as ro",
    )
    const outcomes: string[] = []
    for (const kind of ['read', 'write'] as const) {
      const where = (result: unknown) => {
        const row = (Array.isArray(result) ? result[0] : (result as { rows: unknown[] }).rows[0]) as {
          role: string
          org: string
          ro: string
        }
        const inside = row.role === 'callsheet_app' && row.org === tenant.organizationId
        return inside && row.ro === (kind === 'read' ? 'on' : 'off') ? 'inside' : `OUTSIDE ${JSON.stringify(row)}`
      }
      for (let ticks = 0; ticks < 6; ticks++) {
        // Its outcome is taken at once (a write unit settles only after its COMMIT: a rejection left
        // unobserved until then is reported as unhandled).
        let late: Promise<string> | undefined
        const body = async (d: Parameters<Parameters<TenantRuntime['read']>[0]>[0]) => {
          const last = Promise.resolve(d.execute(sql`select 1`))
          late = last
            .then(async () => {
              for (let i = 0; i < ticks; i++) await undefined
              return d.execute(probe)
            })
            .then(where, (error: unknown) =>
              isCallsheetDbError(toLibraryError(error), 'INVALID_STATE') ? 'refused' : String(error),
            )
          return last
        }
        await (kind === 'read' ? runtime.read(body) : runtime.writeUnit((bound) => bound.read(body)))
        outcomes.push(`${kind} +${ticks}: ${await late!}`)
      }
    }
    for (const outcome of outcomes) expect(outcome, outcomes.join('\n')).toMatch(/: (inside|refused)$/)
    // Issued in the same microtask as the last result: still the unit's; a few microtasks later: refused.
    expect(outcomes.filter((o) => o.endsWith('refused')).length, outcomes.join('\n')).toBeGreaterThan(0)
  })

  it('a write inside tenant.read(fn) is refused before anything is sent; nothing is written', async () => {
    const tenant = await tenantOf('read-write')
    const p = await tenant.productions.create({ title: 'Guarded' })
    const attempts: [string, (r: Parameters<Parameters<TenantClient['read']>[0]>[0]) => Promise<unknown>][] = [
      ['create', (r) => r.contacts.create({ productionId: p.id, name: 'Sneaky' })],
      ['createMany', (r) => r.contacts.createMany([{ productionId: p.id, name: 'Sneaky' }])],
      ['update', (r) => r.productions.update(p.id, { title: 'Changed' })],
      ['softDelete', (r) => r.productions.softDelete(p.id)],
      ['purge', (r) => r.productions.purge(p.id)],
      ['transaction', (r) => (r as unknown as TenantClient).transaction(async () => 1)],
    ]
    for (const [label, attempt] of attempts) {
      const error = await tenant.read(attempt).catch((e: unknown) => e)
      expect(isCallsheetDbError(error, 'INVALID_STATE'), label).toBe(true)
      expect((error as Error).message, label).toContain('read-only')
    }
    expect(await tenant.contacts.count()).toBe(0)
    expect((await tenant.productions.getById(p.id)).title).toBe('Guarded')
  })

  it('consistency and token options are validated: a clear ValidationError, no client', async () => {
    const { db } = ctx()
    const org = await db.organizations.create({ name: 'opts', slug: `opts-${Date.now().toString(36)}` })
    const badTokens: unknown[] = [
      '',
      'v1.',
      '0/16B3748',
      'v2.0/16B3748',
      // The v1 format (the WAL position in clear) is no longer read.
      'v1.primary',
      'v1.16/B374D848',
      'v1.0/16B3748;drop table contacts',
      'v1.G/0',
      'v1.123456789/0',
      `v1.0/${'1'.repeat(40)}`,
      'v2.AAAAAAAAAAAAAAAAAAAAAA',
      `v2.${'A'.repeat(21)}B`,
      `v2.${'A'.repeat(23)}`,
      42,
      null,
      { lsn: '0/0' },
    ]
    for (const token of badTokens) {
      const error = (() => {
        try {
          db.tenant(org.id, {}, { consistencyToken: token as string })
        } catch (e) {
          return e
        }
      })()
      expect(isCallsheetDbError(error, 'VALIDATION_FAILED'), JSON.stringify(token)).toBe(true)
    }
    for (const consistency of ['strong', '', 'PRIMARY', 1]) {
      expect(() => db.tenant(org.id, {}, { consistency: consistency as 'primary' })).toThrow(/consistency/)
    }
    const tenant = db.tenant(org.id)
    expect(() => tenant.withConsistency('nearest' as 'primary')).toThrow(/consistency/)
    await expect(tenant.read(async () => 1, { consistency: 'stale' as 'primary' })).rejects.toThrow(/consistency/)
    expect(() => db.tenant(org.id, {}, { consistncy: 'primary' } as never)).toThrow(/unknown tenant options/)
    expect(tenant.consistency).toBe('read-your-writes')
  })
})

describe('WAL positions', () => {
  it('parse and format exactly, including 64-bit positions, and compare as WAL positions', async () => {
    const { formatLsn, parseLsn } = await import('../src/routing/consistency')
    for (const text of ['0/0', '0/1', '16/B374D848', 'FFFFFFFF/FFFFFFFF']) {
      expect(formatLsn(parseLsn(text)!)).toBe(text)
    }
    expect(parseLsn('1/0')! > parseLsn('0/FFFFFFFF')!).toBe(true)
    expect(parseLsn('0/10')! > parseLsn('0/9')!).toBe(true)
  })
})

const events: QueryEvent[] = []
describeEachDatabase(
  'onQuery: every query of a unit with its duration',
  (ctx) => {
    it('reports reads and writes with sql, params, duration, rows and target; errors too; a throwing listener is ignored', async () => {
      const { db } = ctx()
      const org = await db.organizations.create({ name: 'timed', slug: `timed-${Date.now().toString(36)}` })
      const tenant = db.tenant(org.id)
      const p = await tenant.productions.create({ title: 'Timed' })
      events.length = 0
      expect((await tenant.productions.findById(p.id))?.id).toBe(p.id)
      expect(events, JSON.stringify(events)).toHaveLength(1)
      const [read] = events
      expect(read?.sql).toMatch(/^select .* from "productions"/)
      expect(read?.params).toContain(p.id)
      expect(read?.durationMs).toBeGreaterThanOrEqual(0)
      expect(read?.durationMs).toBeLessThan(120_000) // milliseconds (a sanity bound, not a speed check)
      expect(read?.rowCount).toBe(1)
      expect(read?.target).toBe('primary')
      expect(read?.error).toBeUndefined()

      events.length = 0
      await tenant.departments.create({ name: 'Camera', code: 'CAM' })
      const duplicate = await tenant.departments.create({ name: 'Camera 2', code: 'CAM' }).catch((e: unknown) => e)
      expect(isCallsheetDbError(duplicate, 'UNIQUE_VIOLATION')).toBe(true)
      expect(events.map((e) => (e.error === undefined ? 'ok' : 'error'))).toEqual(['ok', 'error'])
      expect(events[1]?.sql).toMatch(/^insert into "departments"/)
    })
  },
  {
    onQuery: (event) => {
      events.push(event)
      throw new Error('a listener that throws must not break the query')
    },
  },
)
