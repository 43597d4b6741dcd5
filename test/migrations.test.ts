import { expect, it } from 'vitest'
import { migrate } from '../src/migrations/migrate'
import { isCallsheetDbError } from '../src/errors'
import { describeEachEngine, type TestEngine } from './harness/engines'
import { createScratchDatabase } from '../tools/postgres-server'
import { inject } from 'vitest'
import postgres from 'postgres'
import { withDatabase } from '../tools/postgres-server'
import { postgresRunner } from './harness/sql-runner'
import { catalogViolations } from './support/catalog'
import { testProof } from './harness/secret'
import { createDatabase } from '../src/client/create-database'

async function migrateAgain(engine: TestEngine): Promise<void> {
  if (engine.pglite) await migrate(engine.pglite)
  else if (engine.ownerUrl) await migrate(engine.ownerUrl)
}

describeEachEngine('migrate()', (engine) => {
  it('is a no-op the second time', async () => {
    const count = async () =>
      (await engine().admin.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations'))[0]?.n
    const before = await count()
    expect(before).toBeGreaterThanOrEqual(3)
    await migrateAgain(engine())
    await migrateAgain(engine())
    expect(await count()).toBe(before)
  })

  it('creates missing month partitions idempotently, across a year boundary', async () => {
    const db = engine().admin
    const first = await db.query<{ p: string }>(`select callsheet_ensure_audit_partitions(2, '2031-11-20') as p`)
    expect(first.map((r) => r.p)).toEqual(['audit_logs_2031_11', 'audit_logs_2031_12', 'audit_logs_2032_01'])
    const second = await db.query<{ p: string }>(`select callsheet_ensure_audit_partitions(2, '2031-11-20') as p`)
    expect(second).toEqual([])
  })

  it('moves rows that landed in the DEFAULT partition into their month when it is created', async () => {
    const db = engine().admin
    const [org] = await db.query<{ id: string }>(
      `insert into organizations (name, slug) values ('Default Test', 'default-test') returning id`,
    )
    await db.query(
      `insert into audit_logs (organization_id, action, entity_type, entity_id, created_at)
       values ($1, 'insert', 'contacts', gen_random_uuid(), '2035-03-15T12:00:00Z'), ($1, 'update', 'contacts', gen_random_uuid(), '2035-03-31T23:59:59Z')`,
      [org?.id],
    )
    const inDefault = async () =>
      (
        await db.query<{ n: number }>(
          `select count(*)::int as n from audit_logs_default where created_at >= '2035-03-01' and created_at < '2035-04-01'`,
        )
      )[0]?.n
    expect(await inDefault()).toBe(2)
    await db.query(`select callsheet_ensure_audit_partitions(0, '2035-03-01')`)
    expect(await inDefault()).toBe(0)
    const moved = await db.query<{ n: number }>(`select count(*)::int as n from audit_logs_2035_03`)
    expect(moved[0]?.n).toBe(2)
  })

  it('refuses a nonsensical partition horizon', async () => {
    await expect(migrate(engine().pglite ?? engine().ownerUrl, { auditPartitionMonthsAhead: -1 })).rejects.toSatisfy(
      (e) => isCallsheetDbError(e, 'INVALID_CONFIGURATION'),
    )
  })
})

it('migrate() without a target or DATABASE_ADMIN_URL is a configuration error', async () => {
  const saved = process.env.DATABASE_ADMIN_URL
  delete process.env.DATABASE_ADMIN_URL
  try {
    await expect(migrate()).rejects.toSatisfy((e) => isCallsheetDbError(e, 'INVALID_CONFIGURATION'))
  } finally {
    if (saved !== undefined) process.env.DATABASE_ADMIN_URL = saved
  }
})

it('migrate() against an unreachable server is a MigrationError', async () => {
  await expect(migrate('postgres://nobody@127.0.0.1:1/none?connect_timeout=2')).rejects.toSatisfy((e) =>
    isCallsheetDbError(e, 'MIGRATION_FAILED'),
  )
})

const server = inject('postgresServer')
if (server) {
  it('two databases in one cluster both migrate, concurrently [postgres]', async () => {
    const a = await createScratchDatabase(server.adminUrl, 'cs_mig')
    const b = await createScratchDatabase(server.adminUrl, 'cs_mig')
    try {
      await Promise.all([migrate(a.url), migrate(b.url), migrate(a.url)])
      await Promise.all([migrate(a.url), migrate(b.url)])
    } finally {
      await a.drop()
      await b.drop()
    }
  })
}

if (server) {
  it('migrates as a non-superuser database owner, and FORCE binds that owner too [postgres]', async () => {
    const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} })
    const owner = `cs_owner_${Math.random().toString(16).slice(2, 10)}`
    const scratch = await createScratchDatabase(server.adminUrl, 'cs_owned')
    try {
      // CREATEROLE lets the owner grant itself membership in the app role (PostgreSQL 15 rules).
      await admin.unsafe(`create role ${owner} login nosuperuser nobypassrls createrole`)
      await admin.unsafe(`alter database ${scratch.name} owner to ${owner}`)
      const url = withDatabase(server.adminUrl.replace('//postgres@', `//${owner}@`), scratch.name)
      await migrate(url)
      await migrate(url)
      const sql = postgres(url, { max: 1, onnotice: () => {} })
      try {
        const db = postgresRunner(sql)
        expect(await catalogViolations(db)).toEqual([])
        const [org] = await db.query<{ id: string }>(
          `insert into organizations (name, slug) values ('Owned', 'owned') returning id`,
        )
        // Without a tenant setting even the owner cannot write or read tenant rows.
        await expect(
          db.query(`insert into departments (organization_id, name, code) values ($1, 'Camera', 'CAM')`, [org?.id]),
        ).rejects.toMatchObject({ code: '42501' })
        await db.transaction(async (tx) => {
          await tx.query(
            `select set_config('app.organization_id', $1, true), set_config('app.tenant_proof', $2, true)`,
            [org?.id, testProof(org?.id ?? '')],
          )
          await tx.query(`insert into departments (organization_id, name, code) values ($1, 'Camera', 'CAM')`, [
            org?.id,
          ])
        })
        const [visible] = await db.query<{ n: number }>('select count(*)::int as n from departments')
        expect(visible?.n).toBe(0)
        // The library on that owner: the SECURITY DEFINER functions (tenant check, audit, key
        // verification) run as a non-superuser under FORCE row level security too.
        // Deliberately as the owner (refused by default): this proves the SECURITY DEFINER functions hold
        // under FORCE row level security for a non-superuser owner.
        const lib = createDatabase({ primary: url, dangerouslyAllowPrivilegedLogin: true })
        try {
          const tenant = lib.tenant(org?.id ?? '')
          const user = await tenant.users.create({ email: 'o@owned.example', name: 'Owner', role: 'owner' })
          const key = await tenant.apiKeys.create({ name: 'k', scopes: [], createdBy: user.id })
          expect(await lib.apiKeys.verify(key.plaintext)).toMatchObject({ apiKeyId: key.id, organizationId: org?.id })
          const dept = await tenant
            .withContext({ actorId: user.id, apiKeyId: key.id })
            .departments.create({ name: 'Grip', code: 'GRP' })
          expect((await tenant.auditLogs.history('departments', dept.id)).rows).toHaveLength(1)
          await expect(tenant.withContext({ actorId: org?.id ?? '' }).departments.count()).rejects.toMatchObject({
            code: 'INVALID_ACTOR',
          })
          await lib.organizations.softDelete(org?.id ?? '')
          expect(await lib.apiKeys.verify(key.plaintext)).toBeNull()
          await expect(tenant.departments.count()).rejects.toMatchObject({ code: 'TENANT_UNAVAILABLE' })
        } finally {
          await lib.close()
        }
      } finally {
        await sql.end({ timeout: 5 })
      }
    } finally {
      await scratch.drop()
      await admin.unsafe(`drop role if exists ${owner}`)
      await admin.end({ timeout: 5 })
    }
  })
}
