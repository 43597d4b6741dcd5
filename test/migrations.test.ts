import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import { migrate, type MigrationTarget } from '../src/migrations/migrate'
import { isCallsheetDbError, type MigrationsNotAppliedError } from '../src/errors'
import { createPglite } from '../src/engine/pglite/create-pglite'
import { readJournal } from '../src/migrations/journal'
import { migrationsFolder } from '../src/migrations/migrations-folder'
import {
  MIGRATIONS_RELATION,
  MIGRATIONS_SCHEMA,
  missingMigrations,
  planAdoption,
} from '../src/migrations/migrations-table'
import { describeEachEngine, type TestEngine } from './harness/engines'
import { createScratchDatabase } from '../tools/postgres-server'
import { inject } from 'vitest'
import postgres from 'postgres'
import { withDatabase } from '../tools/postgres-server'
import { pgliteRunner, postgresRunner, type SqlRunner } from './harness/sql-runner'
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
      (await engine().admin.query<{ n: number }>('select count(*)::int as n from callsheet_migrations.applied'))[0]?.n
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
      // Not a superuser: similarity_op stays not LEAKPROOF, and migrate says so (fuzzy search would scan the tenant).
      const first = await migrate(url)
      expect(first.warnings).toHaveLength(1)
      expect(first.warnings[0]).toMatch(/similarity_op\(text, text\) is not LEAKPROOF.*ALTER FUNCTION .*LEAKPROOF/)
      const adminOfScratch = postgres(withDatabase(server.adminUrl, scratch.name), { max: 1, onnotice: () => {} })
      try {
        await adminOfScratch.unsafe('alter function similarity_op(text, text) leakproof')
      } finally {
        await adminOfScratch.end({ timeout: 5 })
      }
      expect((await migrate(url)).warnings).toEqual([])
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

// Issue 18, part 1: our migrations are recorded apart from the app's, and a database migrated before
// that (our rows in drizzle's default table, maybe among the app's) is adopted without guessing.
interface Fresh {
  readonly target: MigrationTarget
  readonly db: SqlRunner
  /** What versions before issue 18 did: drizzle's migrator with its default table, on `folder`. */
  legacyMigrate(folder: string): Promise<void>
  close(): Promise<void>
}

const freshEngines: [string, () => Promise<Fresh>][] = [
  [
    'pglite',
    async () => {
      const pg = await createPglite()
      return {
        target: pg,
        db: pgliteRunner(pg),
        legacyMigrate: (folder) => migratePglite(drizzlePglite(pg), { migrationsFolder: folder }),
        close: () => pg.close(),
      }
    },
  ],
]
if (server)
  freshEngines.push([
    'postgres',
    async () => {
      const scratch = await createScratchDatabase(server.adminUrl, 'cs_migtable')
      const sql = postgres(scratch.url, { max: 1, onnotice: () => {} })
      return {
        target: scratch.url,
        db: postgresRunner(sql),
        legacyMigrate: (folder) => migratePostgres(drizzlePostgres(sql), { migrationsFolder: folder }),
        close: async () => {
          await sql.end({ timeout: 5 })
          await scratch.drop()
        },
      }
    },
  ])

/** A copy of the shipped migrations folder with only the first `count` journal entries (an older release). */
function olderRelease(count: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-release-'))
  cpSync(migrationsFolder(), dir, { recursive: true })
  const journalPath = join(dir, 'meta', '_journal.json')
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: unknown[] }
  writeFileSync(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, count) }))
  return dir
}

const shipped = readJournal()
const last = shipped[shipped.length - 1]!
const APP_ROW_HASH = 'a'.repeat(64)
const FAR_FUTURE = '4102444800000' // 2100-01-01: an app migration generated long after ours

const recorded = async (db: SqlRunner, relation: string) =>
  db.query<{ hash: string; created_at: string }>(`select hash, created_at::text from ${relation} order by id`)

describe.each(freshEngines)('the migrations table on %s', (_name, open) => {
  let fresh: Fresh
  beforeEach(async () => {
    fresh = await open()
  })
  afterEach(async () => {
    await fresh.close()
  })

  it('a fresh migrate records in callsheet_migrations.applied, owner only, and nothing in drizzle.__drizzle_migrations', async () => {
    // As a superuser (PGlite's user, the server's admin): similarity_op is LEAKPROOF, nothing to warn about.
    expect((await migrate(fresh.target)).warnings).toEqual([])
    expect((await recorded(fresh.db, MIGRATIONS_RELATION)).map((r) => r.hash)).toEqual(shipped.map((m) => m.hash))
    const [legacy] = await fresh.db.query<{ exists: boolean }>(
      `select to_regclass('drizzle.__drizzle_migrations') is not null as exists`,
    )
    expect(legacy?.exists).toBe(false)
    const [grants] = await fresh.db.query<{ usage: boolean; write: boolean }>(
      `select has_schema_privilege('callsheet_app', $1, 'USAGE') as usage,
              has_table_privilege('callsheet_app', $2, 'INSERT, UPDATE, DELETE, TRUNCATE') as write`,
      [MIGRATIONS_SCHEMA, MIGRATIONS_RELATION],
    )
    expect(grants).toEqual({ usage: false, write: false })
  })

  it('upgrade: our rows in drizzle.__drizzle_migrations among an app newer one are copied, nothing runs twice, the app rows stay', async () => {
    await fresh.legacyMigrate(migrationsFolder())
    await fresh.db.query(`insert into drizzle.__drizzle_migrations (hash, created_at) values ($1, $2)`, [
      APP_ROW_HASH,
      String(last.when + 1),
    ])
    const legacyBefore = await recorded(fresh.db, 'drizzle.__drizzle_migrations')
    await migrate(fresh.target)
    const ours = await recorded(fresh.db, MIGRATIONS_RELATION)
    expect(ours).toEqual(shipped.map((m) => ({ hash: m.hash, created_at: String(m.when) })))
    expect(await recorded(fresh.db, 'drizzle.__drizzle_migrations')).toEqual(legacyBefore)
    await migrate(fresh.target)
    expect(await recorded(fresh.db, MIGRATIONS_RELATION)).toEqual(ours)
    expect(await recorded(fresh.db, 'drizzle.__drizzle_migrations')).toEqual(legacyBefore)
  })

  it('an app row with a far-future created_at does not stop our new migration from being applied', async () => {
    // The previous release, then the app's own migration in the shared table, then this release.
    const previous = olderRelease(shipped.length - 1)
    try {
      await fresh.legacyMigrate(previous)
    } finally {
      rmSync(previous, { recursive: true, force: true })
    }
    await fresh.db.query(`insert into drizzle.__drizzle_migrations (hash, created_at) values ($1, $2)`, [
      APP_ROW_HASH,
      FAR_FUTURE,
    ])
    const [lastObject] = await fresh.db.query<{ exists: boolean }>(
      `select to_regprocedure('public.callsheet_register_tenant_table(regclass)') is not null as exists`,
    )
    expect(lastObject?.exists, 'the last migration is not applied yet').toBe(false)
    await migrate(fresh.target)
    expect((await recorded(fresh.db, MIGRATIONS_RELATION)).map((r) => r.hash)).toEqual(shipped.map((m) => m.hash))
    const [applied] = await fresh.db.query<{ exists: boolean }>(
      `select to_regprocedure('public.callsheet_register_tenant_table(regclass)') is not null as exists`,
    )
    expect(applied?.exists).toBe(true)
    const legacy = await recorded(fresh.db, 'drizzle.__drizzle_migrations')
    expect(legacy.map((r) => r.hash)).toEqual([...shipped.slice(0, -1).map((m) => m.hash), APP_ROW_HASH])
  })

  it('refuses to report success when a shipped migration is still not recorded after the run', async () => {
    await migrate(fresh.target)
    // Our table records a migration newer than the last shipped one, which is not recorded (e.g. a
    // build whose migration was later renumbered): drizzle's migrator skips the shipped one.
    await fresh.db.query(`delete from ${MIGRATIONS_RELATION} where hash = $1`, [last.hash])
    await fresh.db.query(`insert into ${MIGRATIONS_RELATION} (hash, created_at) values ($1, $2)`, [
      'b'.repeat(64),
      FAR_FUTURE,
    ])
    const error = await migrate(fresh.target).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isCallsheetDbError(error, 'MIGRATIONS_NOT_APPLIED'), String(error)).toBe(true)
    expect((error as MigrationsNotAppliedError).missing).toEqual([last.tag])
  })

  it('refuses to adopt when drizzle.__drizzle_migrations records ours with a gap', async () => {
    await fresh.legacyMigrate(migrationsFolder())
    await fresh.db.query(`delete from drizzle.__drizzle_migrations where hash = $1`, [shipped[3]!.hash])
    await expect(migrate(fresh.target)).rejects.toSatisfy(
      (e) => isCallsheetDbError(e, 'MIGRATION_FAILED') && e.message.includes(shipped[3]!.tag),
    )
    // Nothing copied, nothing applied: our table is there, empty, and drizzle's is as it was.
    expect(await recorded(fresh.db, MIGRATIONS_RELATION)).toEqual([])
    expect(await recorded(fresh.db, 'drizzle.__drizzle_migrations')).toHaveLength(shipped.length - 1)
  })
})

describe('adoption and verification, without a database', () => {
  const row = (i: number) => ({ hash: shipped[i]!.hash, createdAt: String(shipped[i]!.when) })
  const app = { hash: APP_ROW_HASH, createdAt: FAR_FUTURE }

  it('copies our rows in journal order and leaves the app rows out', () => {
    expect(planAdoption(shipped, [row(1), app, row(0), row(2)])).toEqual([row(0), row(1), row(2)])
    expect(planAdoption(shipped, [app])).toEqual([])
    expect(planAdoption(shipped, [])).toEqual([])
  })

  it('refuses a gap, and a journal timestamp recorded with another hash', () => {
    expect(() => planAdoption(shipped, [row(0), row(2)])).toThrow(shipped[1]!.tag)
    expect(() => planAdoption(shipped, [row(0), { hash: 'c'.repeat(64), createdAt: row(1).createdAt }])).toThrow(
      /different hash/,
    )
  })

  it('names the shipped migrations a recorded set lacks', () => {
    expect(missingMigrations(shipped, [row(0).hash, app.hash]).map((m) => m.tag)).toEqual(
      shipped.slice(1).map((m) => m.tag),
    )
    expect(
      missingMigrations(
        shipped,
        shipped.map((m) => m.hash),
      ),
    ).toEqual([])
  })
})
