import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createDatabase, isCallsheetDbError, migrate, type Database, type TenantClient } from '../src'
import { createRuntimeLogin } from '../src/migrations/migrate'
import type { TenantRuntime } from '../src/unit-of-work/tenant-runtime'
import { runDoctor } from '../src/cli/doctor'
import { runCli, type CliIo } from '../src/cli/run'
import { describeEachDatabase, openEngine, type TestEngine } from './harness/engines'
import { RUNTIME_LOGIN, withLogin } from '../tools/postgres-server'

// Issue 14, item 2: two roles. The owner migrates; the login that serves requests is only a NOINHERIT
// member of callsheet_app, so SQL injected into a unit gains nothing by RESET ROLE. Most of this needs
// real logins, so it is server-only; what PGlite can express (the organizations policy as the app role)
// runs on both engines.

const server = inject('postgresServer')

/** Raw SQL in one of the tenant's write units (as the app role, with its settings), rows returned. */
async function inUnit<T>(tenant: TenantClient, text: string): Promise<T[]> {
  const runtime = (tenant as unknown as { runtime: TenantRuntime }).runtime
  const result = await runtime.writeUnit((bound) => bound.read((db) => db.execute(sql.raw(text))))
  return (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as T[]
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

describeEachDatabase('organizations as the app role, scoped to themselves', (ctx) => {
  let a: string
  let b: string
  beforeAll(async () => {
    const { db } = ctx()
    const suffix = randomBytes(3).toString('hex')
    a = (await db.organizations.create({ name: 'Org A', slug: `org-a-${suffix}` })).id
    b = (await db.organizations.create({ name: 'Org B', slug: `org-b-${suffix}` })).id
  })

  it('create, findById, update, softDelete and restore work; list works on the admin connection', async () => {
    const { db } = ctx()
    const org = await db.organizations.create({ name: 'Round trip', slug: `round-${randomBytes(3).toString('hex')}` })
    expect((await db.organizations.findById(org.id))?.name).toBe('Round trip')
    expect((await db.organizations.update(org.id, { name: 'Renamed' })).name).toBe('Renamed')
    expect((await db.organizations.softDelete(org.id)).deletedAt).not.toBeNull()
    expect(await db.organizations.findById(org.id)).toBeUndefined()
    expect((await db.organizations.findById(org.id, { deleted: 'only' }))?.id).toBe(org.id)
    expect((await db.organizations.restore(org.id)).deletedAt).toBeNull()
    const listed = await db.organizations.findMany({ limit: 1000 })
    expect(listed.rows.map((r) => r.id)).toEqual(expect.arrayContaining([a, b, org.id]))
  })

  it("a tenant's unit sees only its own organization and cannot touch another", async () => {
    const { db } = ctx()
    const tenantA = db.tenant(a)
    expect(await inUnit<{ id: string }>(tenantA, 'select id from organizations')).toEqual([{ id: a }])
    expect(await inUnit(tenantA, `update organizations set name = 'Owned' where id = '${b}' returning id`)).toEqual([])
    // Another organization cannot be created from A's unit (WITH CHECK: id = the unit's tenant).
    const insert = await errorOf(
      inUnit(tenantA, `insert into organizations (id, name, slug) values (gen_random_uuid(), 'Evil', 'evil-org')`),
    )
    expect(isCallsheetDbError(insert, 'PERMISSION_DENIED')).toBe(true)
    // No DELETE at all, not even of its own row.
    const del = await errorOf(inUnit(tenantA, `delete from organizations where id = '${a}'`))
    expect(isCallsheetDbError(del, 'PERMISSION_DENIED')).toBe(true)
    // UPDATE is granted on name, slug, settings and deleted_at only.
    const created = await errorOf(inUnit(tenantA, `update organizations set created_at = now() where id = '${a}'`))
    expect(isCallsheetDbError(created, 'PERMISSION_DENIED')).toBe(true)
    expect((await db.organizations.getById(b)).name).toBe('Org B')
  })

  it("findById/update/softDelete of another organization's id find nothing of A's", async () => {
    const { db } = ctx()
    // Each runs in a unit scoped to the id asked for: B's row, B's scope. A's row stays A's.
    await db.organizations.update(b, { name: 'Org B2' })
    expect((await db.organizations.getById(a)).name).toBe('Org A')
    expect((await db.organizations.getById(b)).name).toBe('Org B2')
  })
})

describe.runIf(server)('two roles [postgres] (server-only: PGlite has one superuser user)', () => {
  let engine: TestEngine
  const opened: Database[] = []
  const open = (config: Omit<Parameters<typeof createDatabase>[0], 'primary'> & { primary?: string } = {}) => {
    const db = createDatabase({ primary: engine.url!, pool: { max: 2 }, ...config })
    opened.push(db)
    return db
  }
  const suffix = randomBytes(3).toString('hex')
  const extraRoles: string[] = []
  const owner = () => engine.admin

  beforeAll(async () => {
    engine = await openEngine('postgres')
  })
  afterAll(async () => {
    await Promise.all(opened.map((db) => db.close()))
    for (const role of extraRoles) {
      await owner()
        .exec(`drop owned by ${role}; drop role if exists ${role}`)
        .catch(() => undefined)
    }
    await engine?.close()
  })

  it('the suites connect as the runtime login: NOINHERIT, only a member of callsheet_app', async () => {
    const db = open()
    const [row] = (await db.$primary.execute(
      sql`select session_user::text as login, r.rolinherit as inherit, r.rolsuper as super, r.rolbypassrls as bypass,
                 r.rolcreaterole as createrole, r.rolcreatedb as createdb,
                 array(select a.rolname::text from pg_auth_members m join pg_roles a on a.oid = m.roleid
                       where m.member = r.oid) as member_of
          from pg_roles r where r.rolname = session_user`,
    )) as unknown as Record<string, unknown>[]
    expect(row).toEqual({
      login: RUNTIME_LOGIN,
      inherit: false,
      super: false,
      bypass: false,
      createrole: false,
      createdb: false,
      member_of: ['callsheet_app'],
    })
  })

  it('refuses a superuser login before its first unit (PRIVILEGED_LOGIN), nothing written', async () => {
    const db = open({ primary: engine.ownerUrl! })
    const slug = `refused-${suffix}`
    const error = await errorOf(db.organizations.create({ name: 'Refused', slug }))
    expect(isCallsheetDbError(error, 'PRIVILEGED_LOGIN')).toBe(true)
    expect((error as Error).message).toMatch(/is a superuser/)
    expect((error as Error).message).toMatch(/dangerouslyAllowPrivilegedLogin/)
    expect(await owner().query(`select 1 from organizations where slug = '${slug}'`)).toEqual([])
    // Every unit is refused, the tenant's and verify's too, and the refusal is not cached as a pass.
    const tenantError = await errorOf(db.tenant(randomUUIDv4()).productions.count())
    expect(isCallsheetDbError(tenantError, 'PRIVILEGED_LOGIN')).toBe(true)
    const verifyError = await errorOf(db.apiKeys.verify(`csk_${'0'.repeat(32)}_${'0'.repeat(64)}`))
    expect(isCallsheetDbError(verifyError, 'PRIVILEGED_LOGIN')).toBe(true)
  })

  it('refuses BYPASSRLS, CREATEROLE and membership in the owner role', async () => {
    const cases = [
      { role: `cs_bypass_${suffix}`, attrs: 'LOGIN BYPASSRLS', grant: '', reason: /has BYPASSRLS/ },
      { role: `cs_createrole_${suffix}`, attrs: 'LOGIN CREATEROLE', grant: '', reason: /has CREATEROLE/ },
      {
        role: `cs_ownerish_${suffix}`,
        attrs: 'LOGIN NOINHERIT',
        // The owner here is the migrating superuser: a member of it can SET ROLE to it.
        grant: 'postgres',
        reason: /superuser \(through postgres\).*owns the library's tables/,
      },
    ]
    for (const c of cases) {
      extraRoles.push(c.role)
      // Not made members of callsheet_app: the check needs no membership, and doctor runs of other test
      // files on this cluster must not see a privileged member.
      await owner().exec(`create role ${c.role} ${c.attrs}`)
      if (c.grant !== '') await owner().exec(`grant ${c.grant} to ${c.role}`)
      const db = open({ primary: withLogin(engine.url!, c.role, 'unused') })
      const error = await errorOf(
        db.organizations.create({ name: 'Refused', slug: `refused-${c.role.replaceAll('_', '-')}` }),
      )
      expect(isCallsheetDbError(error, 'PRIVILEGED_LOGIN'), `${c.role}: ${String(error)}`).toBe(true)
      expect((error as Error).message, c.role).toMatch(c.reason)
    }
  })

  it('dangerouslyAllowPrivilegedLogin: true serves as the superuser, admin work then runs on it', async () => {
    const db = open({ primary: engine.ownerUrl!, dangerouslyAllowPrivilegedLogin: true })
    const org = await db.organizations.create({ name: 'Dangerous', slug: `dangerous-${suffix}` })
    expect(await db.tenant(org.id).productions.count()).toBe(0)
    expect((await db.organizations.findMany({ limit: 1000 })).rows.map((r) => r.id)).toContain(org.id)
  })

  it('without admin, organizations.findMany and maintenance are refused with INVALID_CONFIGURATION; with it they work', async () => {
    const without = open()
    for (const attempt of [
      without.organizations.findMany(),
      without.maintenance.ensureAuditPartitions(),
      without.maintenance.dropAuditPartitionsBefore(new Date('2000-01-01T00:00:00Z')),
    ]) {
      const error = await errorOf(attempt)
      expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
      expect((error as Error).message).toMatch(/set admin/)
    }
    const withAdmin = open({ admin: engine.ownerUrl! })
    const listed = await withAdmin.organizations.create({ name: 'Listed', slug: `listed-${suffix}` })
    expect((await withAdmin.organizations.findMany({ limit: 1000 })).rows.length).toBeGreaterThan(0)
    expect(await withAdmin.maintenance.ensureAuditPartitions({ monthsAhead: 1 })).toEqual([])
    // The admin connection is the owner's own business: it is not checked, and stays out of units.
    expect(await withAdmin.tenant(listed.id).productions.count()).toBe(0)
  })

  it('RESET ROLE inside a unit gains nothing: no table is readable, TRUNCATE is refused, nothing changes', async () => {
    const db = open()
    const org = await db.organizations.create({ name: 'Reset', slug: `reset-${suffix}` })
    const tenant = db.tenant(org.id)
    await tenant.productions.create({ title: 'Reset picture' })
    const before = await owner().query<{ n: number }>('select count(*)::int as n from audit_logs')
    const attacks = [
      'reset role; select count(*) from contacts',
      'reset role; select count(*) from productions',
      'reset role; select count(*) from organizations',
      'reset role; truncate audit_logs',
      'reset role; delete from audit_logs',
      'reset role; alter table contacts disable row level security',
      'reset role; set role postgres',
    ]
    for (const attack of attacks) {
      const error = await errorOf(inUnit(tenant, attack))
      expect(
        isCallsheetDbError(error, 'PERMISSION_DENIED') || isCallsheetDbError(error, 'DATABASE_ERROR'),
        attack,
      ).toBe(true)
      expect((error as Error).message, attack).toMatch(/permission denied|must be owner/)
    }
    expect(await owner().query<{ n: number }>('select count(*)::int as n from audit_logs')).toEqual(before)
    expect(await tenant.productions.count()).toBe(1)
  })

  it('migrate({ runtimeLogin }) creates a working login, idempotently; createRuntimeLogin tightens a loose one', async () => {
    const name = `cs_rt_${suffix}`
    extraRoles.push(name)
    await migrate(engine.ownerUrl!, { runtimeLogin: { name, password: 'first-password' } })
    await migrate(engine.ownerUrl!, { runtimeLogin: { name, password: 'second-password' } })
    const db = open({ primary: withLogin(engine.url!, name, 'second-password') })
    const org = await db.organizations.create({ name: 'Runtime', slug: `runtime-${suffix}` })
    const tenant = db.tenant(org.id, { requestId: 'runtime' })
    const production = await tenant.productions.create({ title: 'Runtime picture' })
    await tenant.contacts.create({ productionId: production.id, name: 'Rita Runtime', email: 'rita@example.com' })
    const key = await tenant.apiKeys.create({ name: 'runtime key' })
    expect((await db.apiKeys.verify(key.plaintext))?.organizationId).toBe(org.id)
    expect(await tenant.contacts.count()).toBe(1)
    // Someone loosened it by hand: createRuntimeLogin puts it back.
    // (Not BYPASSRLS or CREATEROLE: doctor runs of other test files on this cluster would see them.)
    await owner().exec(`alter role ${name} inherit createdb`)
    await createRuntimeLogin(engine.ownerUrl!, { name })
    const [role] = await owner().query<Record<string, boolean>>(
      `select rolinherit, rolcreatedb, rolbypassrls, rolsuper, rolcanlogin from pg_roles where rolname = '${name}'`,
    )
    expect(role).toEqual({
      rolinherit: false,
      rolcreatedb: false,
      rolbypassrls: false,
      rolsuper: false,
      rolcanlogin: true,
    })
    const bad = await errorOf(createRuntimeLogin(engine.ownerUrl!, { name: 'Not A Role' }))
    expect(isCallsheetDbError(bad, 'INVALID_CONFIGURATION')).toBe(true)
  })

  it('doctor fails on a superuser or owner runtime login and passes on the runtime login', async () => {
    const sqlClient = postgres(engine.ownerUrl!, { max: 1, onnotice: () => {}, prepare: false })
    try {
      const good = await runDoctor(sqlClient, { runtimeLogin: RUNTIME_LOGIN })
      expect(good.checks.find((c) => c.name === `runtime login ${RUNTIME_LOGIN}`)?.ok).toBe(true)
      const superuser = await runDoctor(sqlClient, { runtimeLogin: 'postgres' })
      const check = superuser.checks.find((c) => c.name === 'runtime login postgres')
      expect(check?.ok).toBe(false)
      expect(check?.detail).toMatch(/postgres is a superuser.*owns the library's tables/)
      expect(superuser.ok).toBe(false)
    } finally {
      await sqlClient.end({ timeout: 5 })
    }
  })

  it('CLI: runtime-login creates the login (password from the environment); doctor --runtime-login checks it', async () => {
    const name = `cs_cli_${suffix}`
    extraRoles.push(name)
    let stdout = ''
    let stderr = ''
    const io: CliIo = {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      env: { CALLSHEET_RUNTIME_PASSWORD: 'cli-password' },
    }
    expect(await runCli(['runtime-login', name, '--url', engine.ownerUrl!], io), stderr).toBe(0)
    expect(stdout).toMatch(new RegExp(`Runtime login ${name} is a NOINHERIT member of callsheet_app`))
    const db = open({ primary: withLogin(engine.url!, name, 'cli-password') })
    await db.organizations.create({ name: 'CLI', slug: `cli-${suffix}` })
    stdout = ''
    expect(await runCli(['doctor', '--json', '--url', engine.ownerUrl!, '--runtime-login', name], io), stdout).toBe(0)
    stdout = ''
    expect(await runCli(['doctor', '--json', '--url', engine.ownerUrl!, '--runtime-login', 'postgres'], io)).toBe(1)
    expect(stdout).toMatch(/postgres is a superuser/)
  })
})

function randomUUIDv4(): string {
  return globalThis.crypto.randomUUID()
}
