import { sql } from 'drizzle-orm'
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { createDatabase } from '../src/client/create-database'
import { tenantProof } from '../src/engine/tenant-proof'
import { isCallsheetDbError } from '../src/errors'
import type { TenantClient } from '../src/client/tenant-client'
import type { TenantRuntime } from '../src/unit-of-work/tenant-runtime'
import { describeEachDatabase } from './harness/engines'
import { TEST_SECRET } from './harness/secret'
import { sqlState } from './harness/sql-runner'
import { fingerprint } from './support/fingerprint'
import { fillTenant, type FilledTenant } from './support/fixtures'

// Issue 14: what SQL injected into a tenant unit (running as the app role) can do. Each attack must
// fail, and leave every table as it was. The database is opened with a pool of one connection, so
// whatever an attack leaves on its session is there for the next tenant's unit — as on a busy pool.

type Query = (text: string) => Promise<Record<string, unknown>[]>

const rowsOf = (result: unknown): Record<string, unknown>[] =>
  Array.isArray(result) ? (result as Record<string, unknown>[]) : ((result as { rows?: [] }).rows ?? [])

/** Runs `fn` inside one write unit of `tenant`, with raw SQL: what an injection in a custom query can do. */
function inUnit<T>(tenant: TenantClient, fn: (q: Query) => Promise<T>): Promise<T> {
  const runtime = (tenant as unknown as { runtime: TenantRuntime }).runtime
  return runtime.writeUnit((bound) => bound.read((db) => fn(async (text) => rowsOf(await db.execute(sql.raw(text))))))
}

/** Awaits `promise`, expecting a library error with `code`; returns it. */
async function expectCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    if (!isCallsheetDbError(error) || error.code !== code) {
      throw new Error(`expected ${code}, got ${String((error as { code?: unknown }).code)}: ${String(error)}`, {
        cause: error,
      })
    }
    return error
  }
  throw new Error(`expected ${code}, but it succeeded`)
}

const nowSeconds = () => Math.floor(Date.now() / 1000)

describeEachDatabase(
  'attacks from SQL injected into a tenant unit',
  (ctx) => {
    let a: FilledTenant
    let b: FilledTenant
    const admin = () => ctx().engine.admin
    // The strongest way injected SQL changes a setting on this engine: set_config() on one server; on Citus a
    // SET LOCAL, which the unit's propagation (citus.propagate_set_commands = 'local') sends to the shards
    // too (set_config changes only the coordinator: see 'on Citus, set_config reaches only the coordinator').
    const forge = (name: string, value: string) =>
      ctx().engine.name === 'citus'
        ? `set local ${name} = '${value}'`
        : `select set_config('${name}', '${value}', true)`
    const setTemp = (grant: boolean) =>
      admin().exec(
        `do $$ begin execute format('${grant ? 'grant' : 'revoke'} temporary on database %I ${grant ? 'to' : 'from'} callsheet_app', current_database()); end $$`,
      )

    beforeAll(async () => {
      a = await fillTenant(ctx().db, 'attack-a')
      b = await fillTenant(ctx().db, 'attack-b')
    })

    afterEach(async () => {
      // Whatever an attack left on the session: TEMP, the session's search_path, its temp tables.
      await setTemp(false)
      await inUnit(a.tenant, async (q) => {
        await q('reset search_path')
        for (const table of ['audit_logs', 'contacts', 'callsheet_audit_moving'])
          await q(`drop table if exists pg_temp.${table}`)
      }).catch(() => undefined)
    })

    describe('temp tables', () => {
      it('cannot create one: TEMPORARY is revoked from PUBLIC and the app role', async () => {
        const before = await fingerprint(admin())
        const error = await expectCode(
          inUnit(a.tenant, (q) => q('create temp table audit_logs (like public.audit_logs)')),
          'PERMISSION_DENIED',
        )
        expect(sqlState(error)).toBe('42501')
        expect(await fingerprint(admin())).toEqual(before)
      })

      it('with TEMP granted back, a temp audit_logs neither swallows nor sees the audit of later units', async () => {
        await setTemp(true)
        await inUnit(a.tenant, async (q) => {
          await q('create temp table audit_logs (like public.audit_logs including defaults)')
          // The attacker also tries to put the temp schema first for the rest of the session.
          await q('set search_path = pg_temp, public')
        })
        // The next units on this connection, A's own and B's.
        const dept = await b.tenant.departments.create({ name: 'Grip', code: `GR${nowSeconds() % 1000}` })
        const own = await a.tenant.departments.create({ name: 'Grip', code: `GR${nowSeconds() % 1000}` })
        for (const [org, id] of [
          [b.org.id, dept.id],
          [a.org.id, own.id],
        ] as const) {
          const rows = await admin().query<{ n: number }>(
            'select count(*)::int as n from public.audit_logs where organization_id = $1 and entity_id = $2',
            [org, id],
          )
          expect(rows[0]?.n).toBe(1)
        }
        const captured = await inUnit(a.tenant, (q) => q('select count(*)::int as n from pg_temp.audit_logs'))
        expect(captured[0]?.n).toBe(0)
      })

      it("with TEMP granted back, a temp contacts left on the connection does not capture another tenant's inserts", async () => {
        await setTemp(true)
        await inUnit(a.tenant, async (q) => {
          await q('create temp table contacts (like public.contacts including defaults)')
          await q('set search_path = pg_temp, public')
        })
        const contact = await b.tenant.contacts.create({ productionId: b.production.id, name: 'Not Captured' })
        const found = await b.tenant.contacts.findById(contact.id)
        expect(found?.name).toBe('Not Captured')
        const [real] = await admin().query<{ n: number }>(
          'select count(*)::int as n from public.contacts where id = $1 and organization_id = $2',
          [contact.id, b.org.id],
        )
        expect(real?.n).toBe(1)
        const captured = await inUnit(a.tenant, (q) => q('select count(*)::int as n from pg_temp.contacts'))
        expect(captured[0]?.n).toBe(0)
      })

      it('a forged temp audit row never reaches the audit log through the partition job', async () => {
        // The job must share the attacker's session for the attack to mean anything: on a server that is
        // the owner's login serving tenant units too (the dangerous set-up, with one connection); the
        // recommended one runs the job on the separate admin connection, which no tenant unit touches.
        const shared =
          ctx().engine.name !== 'pglite'
            ? createDatabase({
                primary: ctx().engine.ownerUrl!,
                dangerouslyAllowPrivilegedLogin: true,
                pool: { max: 1 },
              })
            : ctx().db
        try {
          await setTemp(true)
          const forgedId = '00000000-0000-4000-8000-00000000f0f0'
          const attacker = shared.tenant(a.org.id)
          await inUnit(attacker, async (q) => {
            await q('create temp table callsheet_audit_moving (like public.audit_logs)')
            await q(
              `insert into callsheet_audit_moving (id, organization_id, action, entity_type, entity_id, created_at)
               values (gen_random_uuid(), '${b.org.id}', 'purge', 'contacts', '${forgedId}', '2091-05-10')`,
            )
          })
          // A row of a month with no partition yet sits in DEFAULT; the owner's job (same session) moves it.
          const month = '2091-05-10T00:00:00Z'
          await admin().query(
            `insert into public.audit_logs (organization_id, action, entity_type, entity_id, created_at) values ($1, 'insert', 'contacts', $2, $3)`,
            [a.org.id, a.contact.id, month],
          )
          if (ctx().engine.name === 'pglite') {
            // One session for everything: the job refuses the shadowing temp table.
            await expect(
              shared.maintenance.ensureAuditPartitions({ from: new Date(month), monthsAhead: 0 }),
            ).rejects.toThrow(/callsheet_audit_moving/)
            const forged = await admin().query('select 1 from public.audit_logs where entity_id = $1', [forgedId])
            expect(forged).toEqual([])
            // Once the session is clean, the job moves the real row and only it.
            await inUnit(attacker, (q) => q('drop table pg_temp.callsheet_audit_moving'))
          }
          // On a server, statements outside units (the job) never share a connection with units (the pool's
          // slots, postgres/pool.ts): the attacker's temp table is not in the job's session at all.
          expect(await shared.maintenance.ensureAuditPartitions({ from: new Date(month), monthsAhead: 0 })).toEqual([
            'audit_logs_2091_05',
          ])
          const forged = await admin().query('select 1 from public.audit_logs where entity_id = $1', [forgedId])
          expect(forged).toEqual([])
          const moved = await admin().query<{ entity_id: string }>('select entity_id from public.audit_logs_2091_05')
          expect(moved.map((r) => r.entity_id)).toEqual([a.contact.id])
          await admin().exec('drop table public.audit_logs_2091_05')
        } finally {
          if (shared !== ctx().db) await shared.close()
        }
      })
    })

    describe('switching tenant', () => {
      it("set_config('app.organization_id', B) inside A's unit: zero rows, writes refused, nothing written", async () => {
        const before = await fingerprint(admin())
        const seen = await inUnit(a.tenant, async (q) => {
          await q(forge('app.organization_id', b.org.id))
          return {
            contacts: await q('select count(*)::int as n from contacts'),
            organizations: await q('select count(*)::int as n from organizations'),
            audit: await q('select count(*)::int as n from audit_logs'),
            updated: await q(
              `update contacts set name = 'Hijacked' where organization_id = '${b.org.id}' returning id`,
            ),
            deleted: await q(`delete from departments where organization_id = '${b.org.id}' returning id`),
          }
        })
        expect(seen.contacts[0]?.n).toBe(0)
        expect(seen.organizations[0]?.n).toBe(0)
        expect(seen.audit[0]?.n).toBe(0)
        expect(seen.updated).toEqual([])
        expect(seen.deleted).toEqual([])
        await expectCode(
          inUnit(a.tenant, async (q) => {
            await q(forge('app.organization_id', b.org.id))
            await q(`insert into departments (organization_id, name, code) values ('${b.org.id}', 'Forged', 'FRG')`)
          }),
          'PERMISSION_DENIED',
        )
        expect(await fingerprint(admin())).toEqual(before)
      })

      it.each([
        ['a forged proof (another secret)', (org: string) => tenantProof('x'.repeat(40), org, nowSeconds() + 300)],
        ['an expired proof', (org: string) => tenantProof(TEST_SECRET, org, nowSeconds() - 5)],
        ['a proof valid for a day', (org: string) => tenantProof(TEST_SECRET, org, nowSeconds() + 86_400)],
        ["the unit's own proof (A's)", (_org: string, own: string) => own],
        [
          'a tampered proof',
          // The last hex digit changed (to another digit: replacing it with a fixed one left it valid 1 time in 16).
          (org: string) =>
            tenantProof(TEST_SECRET, org, nowSeconds() + 300).replace(/.$/, (d) => (d === '0' ? '1' : '0')),
        ],
      ])('set_config of B with %s: zero rows, writes refused', async (_label, makeProof) => {
        const before = await fingerprint(admin())
        const seen = await inUnit(a.tenant, async (q) => {
          const [own] = await q(`select current_setting('app.tenant_proof') as proof`)
          const proof = makeProof(b.org.id, String(own?.proof))
          await q(forge('app.organization_id', b.org.id))
          await q(forge('app.tenant_proof', proof))
          return q('select count(*)::int as n from contacts')
        })
        expect(seen[0]?.n).toBe(0)
        await expectCode(
          inUnit(a.tenant, async (q) => {
            await q(forge('app.organization_id', b.org.id))
            await q(forge('app.tenant_proof', tenantProof('y'.repeat(40), b.org.id, nowSeconds() + 300)))
            await q(`insert into departments (organization_id, name, code) values ('${b.org.id}', 'Forged', 'FRG')`)
          }),
          'PERMISSION_DENIED',
        )
        expect(await fingerprint(admin())).toEqual(before)
      })

      it("calling the unit's entry function for B with A's proof fails the unit", async () => {
        const before = await fingerprint(admin())
        await expectCode(
          inUnit(a.tenant, async (q) => {
            await q(
              `select callsheet_enter_tenant('${b.org.id}', current_setting('app.tenant_proof'), '', '', '', '', null)`,
            )
          }),
          'TENANT_PROOF_REJECTED',
        )
        expect(await fingerprint(admin())).toEqual(before)
      })

      // Migration 0016: the entry function SET LOCALs every setting, then checks. Called again mid-unit with a
      // proof it does not hold, it must fail like set_config does, and a savepoint must give back exactly the
      // unit's own tenant, never B's.
      it.each([
        ['a forged proof (another secret)', (org: string) => tenantProof('x'.repeat(40), org, nowSeconds() + 300)],
        ['a stale proof', (org: string) => tenantProof(TEST_SECRET, org, nowSeconds() - 5)],
        ["the unit's own proof (A's)", (_org: string, own: string) => own],
      ])('calling the entry function again for B with %s gains no row and writes nothing', async (_l, makeProof) => {
        const before = await fingerprint(admin())
        const enterB = (own: string) =>
          `select callsheet_enter_tenant('${b.org.id}', '${makeProof(b.org.id, own)}', '', '', 'forged', '10.6.6.6', '0')`
        await expectCode(
          inUnit(a.tenant, async (q) => {
            const [own] = await q(`select current_setting('app.tenant_proof') as proof`)
            await q(enterB(String(own?.proof)))
          }),
          'TENANT_PROOF_REJECTED',
        )
        const seen = await inUnit(a.tenant, async (q) => {
          const [own] = await q(`select current_setting('app.tenant_proof') as proof`)
          await q('savepoint s')
          const failed = await q(enterB(String(own?.proof))).then(
            () => 'entered',
            (error: unknown) => sqlState(error),
          )
          await q('rollback to savepoint s')
          return {
            failed,
            org: await q(`select current_setting('app.organization_id') as org`),
            ofB: await q(`select count(*)::int as n from contacts where organization_id = '${b.org.id}'`),
            updatedOfB: await q(
              `update contacts set name = 'Hijacked' where organization_id = '${b.org.id}' returning id`,
            ),
          }
        })
        expect(seen.failed).toBe('CS001')
        expect(seen.org[0]?.org).toBe(a.org.id)
        expect(seen.ofB[0]?.n).toBe(0)
        expect(seen.updatedOfB).toEqual([])
        expect(await fingerprint(admin())).toEqual(before)
      })

      it('cannot read the key material or forge with it', async () => {
        await expectCode(
          inUnit(a.tenant, (q) => q('select * from callsheet_private.tenant_keys')),
          'PERMISSION_DENIED',
        )
      })
    })

    describe('a deleted organization', () => {
      it('is refused: its keys do not verify and its clients fail before reading or writing; restoring brings both back', async () => {
        const c = await fillTenant(ctx().db, 'attack-deleted')
        expect(await ctx().db.apiKeys.verify(c.apiKey.plaintext)).not.toBeNull()
        await ctx().db.organizations.softDelete(c.org.id)
        const before = await fingerprint(admin())
        expect(await ctx().db.apiKeys.verify(c.apiKey.plaintext)).toBeNull()
        await expectCode(c.tenant.departments.count(), 'TENANT_UNAVAILABLE')
        await expectCode(c.tenant.departments.create({ name: 'Late', code: 'LATE' }), 'TENANT_UNAVAILABLE')
        await expectCode(
          c.tenant.transaction(async (t) => t.contacts.count()),
          'TENANT_UNAVAILABLE',
        )
        expect(await fingerprint(admin())).toEqual(before)
        await ctx().db.organizations.restore(c.org.id)
        expect(await ctx().db.apiKeys.verify(c.apiKey.plaintext)).toMatchObject({ organizationId: c.org.id })
        expect(await c.tenant.departments.count()).toBe(1)
      })

      it('an organization that does not exist is refused the same way', async () => {
        const ghost = ctx().db.tenant('0190a4c2-0000-7000-8000-000000000001')
        await expectCode(ghost.departments.count(), 'TENANT_UNAVAILABLE')
      })
    })

    describe('the audit actor', () => {
      it.each([
        ["B's user as A's actor", () => ({ actorId: b.user.id })],
        ["B's API key as A's key", () => ({ apiKeyId: b.apiKey.id })],
        ['an unknown actor', () => ({ actorId: '0190a4c2-0000-7000-8000-00000000beef' })],
      ])('refuses %s, and writes nothing', async (_label, context) => {
        const before = await fingerprint(admin())
        const t = a.tenant.withContext(context())
        await expectCode(t.departments.create({ name: 'Foreign', code: 'FRN' }), 'INVALID_ACTOR')
        await expectCode(t.departments.count(), 'INVALID_ACTOR')
        expect(await fingerprint(admin())).toEqual(before)
      })

      it("refuses A's own revoked key and deleted user", async () => {
        const key = await a.tenant.apiKeys.create({ name: 'soon revoked', scopes: [] })
        await a.tenant.apiKeys.revoke(key.id)
        const user = await a.tenant.users.create({
          email: `gone-${nowSeconds()}@a.example`,
          name: 'Gone',
          role: 'member',
        })
        await a.tenant.users.softDelete(user.id)
        const before = await fingerprint(admin())
        await expectCode(
          a.tenant.withContext({ apiKeyId: key.id }).departments.create({ name: 'Revoked', code: 'RVK' }),
          'INVALID_ACTOR',
        )
        await expectCode(
          a.tenant.withContext({ actorId: user.id }).departments.create({ name: 'Deleted', code: 'DEL' }),
          'INVALID_ACTOR',
        )
        expect(await fingerprint(admin())).toEqual(before)
      })

      it("changing the actor inside A's unit (to B's user, or to none) loses the tenant: nothing read, nothing written", async () => {
        const before = await fingerprint(admin())
        const t = a.tenant.withContext({ actorId: a.user.id, apiKeyId: a.apiKey.id })
        for (const forged of [
          forge('app.actor_id', b.user.id),
          forge('app.api_key_id', b.apiKey.id),
          forge('app.actor_id', ''),
        ]) {
          const seen = await inUnit(t, async (q) => {
            await q(forged)
            return q('select count(*)::int as n from contacts')
          })
          expect(seen[0]?.n, forged).toBe(0)
          await expectCode(
            inUnit(t, async (q) => {
              await q(forged)
              await q(`insert into departments (organization_id, name, code) values ('${a.org.id}', 'Forged', 'FRG')`)
            }),
            'PERMISSION_DENIED',
          )
          // An update matches no row once the tenant is lost: no audit row in anyone's name.
          await inUnit(t, async (q) => {
            await q(forged)
            await q(`update contacts set name = 'Renamed' where organization_id = '${a.org.id}'`)
          })
        }
        expect(await fingerprint(admin())).toEqual(before)
      })

      it("set_config of B's tenant and actor: never B's rows; on Citus it reaches only the coordinator, so the shards keep the unit's proven tenant and actor", async () => {
        const t = a.tenant.withContext({ actorId: a.user.id })
        const code = `SC${nowSeconds() % 100_000}`
        const forged = `select set_config('app.organization_id', '${b.org.id}', true), set_config('app.actor_id', '${b.user.id}', true)`
        const [foreign] = await inUnit(t, async (q) => {
          await q(forged)
          return q(
            `select count(*) filter (where organization_id <> '${a.org.id}')::int as n, count(*)::int as total from contacts`,
          )
        })
        expect(foreign?.n).toBe(0)
        const inserted = await inUnit(t, async (q) => {
          await q(forged)
          await q(
            `insert into departments (organization_id, name, code) values ('${a.org.id}', 'Set config', '${code}')`,
          )
        }).then(
          () => undefined,
          (error: unknown) => error,
        )
        if (inserted !== undefined) {
          // One server: set_config took the tenant away for the rest of the unit; the insert is refused by RLS.
          expect(ctx().engine.name).not.toBe('citus')
          expect(inserted).toMatchObject({ code: 'PERMISSION_DENIED' })
          return
        }
        // Citus: the shards still hold the unit's SET LOCAL tenant and actor, proven; the row is A's own and
        // its audit row names the unit's actor, not the forged one.
        expect(ctx().engine.name).toBe('citus')
        const [audit] = await admin().query<{ user_id: string }>(
          `select l.user_id from audit_logs l join departments d on d.organization_id = l.organization_id and d.id = l.entity_id
            where l.organization_id = $1 and d.code = $2 and l.action = 'insert'`,
          [a.org.id, code],
        )
        expect(audit?.user_id).toBe(a.user.id)
      })

      it("calling the entry function again with another actor (A's other user, B's user) is refused; audit rows name only the unit's actor", async () => {
        const other = await a.tenant.users.create({
          email: `other-${nowSeconds()}@a.example`,
          name: 'Other',
          role: 'member',
        })
        const t = a.tenant.withContext({ actorId: a.user.id })
        for (const actor of [other.id, b.user.id]) {
          const before = await fingerprint(admin())
          const enter = `select callsheet_enter_tenant('${a.org.id}', current_setting('app.tenant_proof'), '${actor}', '', '', '', null)`
          await expectCode(
            inUnit(t, async (q) => {
              await q(enter)
              await q(`insert into departments (organization_id, name, code) values ('${a.org.id}', 'Forged', 'FRG')`)
            }),
            'TENANT_PROOF_REJECTED',
          )
          expect(await fingerprint(admin())).toEqual(before)
          // Under a savepoint the failed call is undone, settings included: the write is the unit's own actor's.
          const [dept] = await inUnit(t, async (q) => {
            await q('savepoint s')
            await q(enter).catch(() => undefined)
            await q('rollback to savepoint s')
            return q(
              `insert into departments (organization_id, name, code) values ('${a.org.id}', 'Own', 'OWN${actor.slice(-4)}') returning id`,
            )
          })
          const audit = await admin().query<{ user_id: string | null }>(
            'select user_id from public.audit_logs where entity_id = $1',
            [dept?.id],
          )
          expect(audit).toEqual([{ user_id: a.user.id }])
        }
      })

      it('a request id that is SQL (quotes, backslashes, semicolons) is recorded verbatim: every SET LOCAL value is quoted', async () => {
        const requestId = "x'; reset role; set local app.organization_id = 'y\\'; --"
        const dept = await a.tenant
          .withContext({ requestId })
          .departments.create({ name: 'Quoted', code: `Q${nowSeconds() % 1000}` })
        const rows = await admin().query<{ request_id: string }>(
          'select request_id from public.audit_logs where entity_id = $1',
          [dept.id],
        )
        expect(rows).toEqual([{ request_id: requestId }])
      })

      it("accepts A's own live user and key, and records them", async () => {
        const t = a.tenant.withContext({ actorId: a.user.id, apiKeyId: a.apiKey.id })
        const dept = await t.departments.create({ name: 'Own', code: `OWN${nowSeconds() % 1000}` })
        const [row] = await admin().query<{ user_id: string; api_key_id: string }>(
          'select user_id, api_key_id from public.audit_logs where entity_id = $1',
          [dept.id],
        )
        expect(row).toEqual({ user_id: a.user.id, api_key_id: a.apiKey.id })
      })
    })
  },
  { pool: { max: 1 } },
  { citus: true },
)

// The PGlite login is a superuser that installs its own key; a server is told the secret by migrate().
describe.runIf(inject('postgresServer') !== null && process.env.CALLSHEET_ENGINES !== 'pglite')(
  'the deployment secret on a server',
  () => {
    let url: string
    let ownerUrl: string
    let organizationId: string
    beforeAll(async () => {
      const { openEngine } = await import('./harness/engines')
      const engine = await openEngine('postgres')
      url = engine.url ?? ''
      ownerUrl = engine.ownerUrl ?? ''
      const db = createDatabase({ primary: url })
      organizationId = (await db.organizations.create({ name: 'Secretive', slug: `secretive-${nowSeconds()}` })).id
      await db.tenant(organizationId).departments.create({ name: 'Camera', code: 'CAM' })
      await db.close()
      return async () => {
        await engine.close()
      }
    })

    it('a tenant unit without a secret fails with TENANT_PROOF_REJECTED, saying how to fix it', async () => {
      const saved = process.env.CALLSHEET_SECRET
      delete process.env.CALLSHEET_SECRET
      const db = createDatabase({ primary: url })
      try {
        const error = await expectCode(db.tenant(organizationId).departments.count(), 'TENANT_PROOF_REJECTED')
        expect(String(error)).toMatch(/CALLSHEET_SECRET/)
      } finally {
        process.env.CALLSHEET_SECRET = saved
        await db.close()
      }
    })

    it('a tenant unit with another secret than the installed one fails with TENANT_PROOF_REJECTED', async () => {
      const db = createDatabase({ primary: url, secret: 'z'.repeat(48) })
      try {
        const error = await expectCode(db.tenant(organizationId).departments.count(), 'TENANT_PROOF_REJECTED')
        expect(String(error)).toMatch(/migrate\(\)/)
      } finally {
        await db.close()
      }
    })

    it('migrate({ secret }) installs a new secret and keeps the previous one valid (rotation)', async () => {
      const { migrate } = await import('../src/migrations/migrate')
      const next = 'n'.repeat(40)
      await migrate(ownerUrl, { secret: next })
      for (const secret of [next, TEST_SECRET]) {
        const db = createDatabase({ primary: url, secret })
        try {
          expect(await db.tenant(organizationId).departments.count()).toBe(1)
        } finally {
          await db.close()
        }
      }
      // A third secret retires the oldest.
      await migrate(ownerUrl, { secret: 'm'.repeat(40) })
      const old = createDatabase({ primary: url, secret: TEST_SECRET })
      try {
        await expectCode(old.tenant(organizationId).departments.count(), 'TENANT_PROOF_REJECTED')
      } finally {
        await old.close()
      }
    })
  },
)
