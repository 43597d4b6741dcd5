import { describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { distribute, DISTRIBUTED_TABLES, REFERENCE_TABLES } from '../src/distribution/distribute'
import { runDoctor } from '../src/cli/doctor'
import { createDatabase } from '../src/client/create-database'
import { isCallsheetDbError } from '../src/errors'
import { describeEachEngine, type TestEngine } from './harness/engines'

const ORG = '0190a7e4-0000-7000-8000-00000000c175'

async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

async function ensureOrg(engine: TestEngine): Promise<void> {
  await engine.admin.query(
    `insert into organizations (id, name, slug) values ($1, 'Distribution Org', 'distribution-org') on conflict do nothing`,
    [ORG],
  )
}

function targetOf(engine: TestEngine): string {
  if (engine.ownerUrl === undefined) throw new Error('no owner URL')
  return engine.ownerUrl
}

describeEachEngine(
  'distribute()',
  (engine) => {
    it('distributes on a Citus coordinator, and refuses PGlite and plain PostgreSQL with a typed error', async () => {
      const e = engine()
      if (e.name === 'pglite') {
        const error = await distribute(e.pglite as never).catch((x: unknown) => x)
        expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
        expect((error as Error).message).toMatch(/^distribute\(\) needs a Citus coordinator: PGlite/)
        return
      }
      if (e.name === 'postgres') {
        const error = await distribute(targetOf(e)).catch((x: unknown) => x)
        expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
        expect((error as Error).message).toMatch(/needs a Citus coordinator: the citus extension is not installed/)
        return
      }
      // openEngine('citus') ran distribute() already: the schema is distributed as the report said.
      const placed = await e.admin.query<{
        table: string
        method: string
        repmodel: string
        column: string | null
        colocation: number
      }>(
        `select logicalrelid::regclass::text as table, partmethod::text as method, repmodel::text as repmodel,
                case when partmethod = 'h' then column_to_column_name(logicalrelid, partkey) end as column,
                colocationid as colocation
           from pg_dist_partition`,
      )
      for (const table of DISTRIBUTED_TABLES) {
        expect(placed.find((p) => p.table === table)).toMatchObject({ method: 'h', column: 'organization_id' })
      }
      expect(new Set(DISTRIBUTED_TABLES.map((t) => placed.find((p) => p.table === t)?.colocation)).size).toBe(1)
      for (const table of REFERENCE_TABLES) {
        const name = table.replace(/^public\./, '')
        expect(placed.find((p) => p.table === name)).toMatchObject({ method: 'n', repmodel: 't' })
      }
    })

    it('is idempotent: a second run changes nothing and reports every step as already done', async () => {
      const e = engine()
      if (e.name !== 'citus') return
      const lines: string[] = []
      const report = await distribute(targetOf(e), { log: (line) => lines.push(line) })
      expect(report.changed).toBe(false)
      expect(report.manual).toEqual([])
      expect(report.steps.map((s) => s.step)).toEqual([
        'cluster',
        'app-role-login',
        'policies',
        'proof-on-workers',
        'reference-tables',
        'distributed-tables',
        'leakproof-similarity',
        'audit-partitions',
      ])
      expect(report.steps.every((s) => s.status === 'already')).toBe(true)
      expect(lines).toHaveLength(8)
      // Also through a postgres.js client, and through db.distribute() on the admin connection.
      await withSql(targetOf(e), async (sql) => expect((await distribute(sql)).changed).toBe(false))
      const db = createDatabase({ primary: e.url as string, admin: targetOf(e) })
      try {
        expect((await db.distribute()).changed).toBe(false)
      } finally {
        await db.close()
      }
    })

    it('refuses a worker node: the schema is distributed from the coordinator', async () => {
      const e = engine()
      if (e.name !== 'citus') return
      const worker = e.workerUrls?.[0]
      if (worker === undefined) throw new Error('no worker URL')
      const error = await distribute(worker).catch((x: unknown) => x)
      expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
      expect((error as Error).message).toMatch(/needs a Citus coordinator: this node is a worker/)
    })

    it('lets callsheet_app and the runtime login log in on every worker (roles propagate)', async () => {
      const e = engine()
      if (e.name !== 'citus') return
      const rows = await e.admin.query<{ result: string; success: boolean }>(
        `select result, success from run_command_on_workers(
           $$select string_agg(rolname || ':' || rolcanlogin, ',' order by rolname) from pg_roles
             where rolname in ('callsheet_app', 'callsheet_runtime')$$)`,
      )
      expect(rows.length).toBeGreaterThan(0)
      for (const row of rows)
        expect(row).toEqual({ success: true, result: 'callsheet_app:true,callsheet_runtime:true' })
    })

    it('doctor passes on the distributed schema, with every Citus finding', async () => {
      const e = engine()
      if (e.name !== 'citus') return
      const report = await withSql(targetOf(e), (sql) => runDoctor(sql, { runtimeLogin: 'callsheet_runtime' }))
      const citus = report.checks.filter((c) => c.name.startsWith('citus '))
      expect(citus.map((c) => c.name)).toEqual([
        'citus cluster',
        'citus tenant tables',
        'citus reference tables',
        'citus app role login',
        'citus settings propagation',
        'citus shape',
      ])
      expect(report.checks.filter((c) => !c.ok)).toEqual([])
    })

    it('row triggers fire on the shards without citus.enable_unsafe_triggers on any node', async () => {
      const e = engine()
      if (e.name !== 'citus') return
      const [setting] = await e.admin.query<{ v: string }>(
        `select current_setting('citus.enable_unsafe_triggers') as v`,
      )
      expect(setting?.v).toBe('off')
      await ensureOrg(e)
      const [user] = await e.admin.query<{ id: string }>(
        `insert into users (organization_id, email, name, updated_at) values ($1, 'trigger@example.com', 'T', now() - interval '1 day')
         returning id`,
        [ORG],
      )
      await e.admin.query(`update users set name = 'T2' where organization_id = $1 and id = $2`, [ORG, user?.id])
      const [row] = await e.admin.query<{ fresh: boolean }>(
        `select updated_at > now() - interval '1 minute' as fresh from users where organization_id = $1 and id = $2`,
        [ORG, user?.id],
      )
      expect(row?.fresh).toBe(true)
    })

    it('audit partition upkeep works on the distributed audit_logs: new partitions are distributed and colocated', async () => {
      const e = engine()
      if (e.name !== 'citus') return
      const db = createDatabase({ primary: e.url as string, admin: targetOf(e) })
      try {
        await ensureOrg(e)
        // A row for a month without a partition lands in DEFAULT and is moved when its month is created.
        await e.admin.query(
          `insert into audit_logs (organization_id, action, entity_type, entity_id, created_at)
           values ($1, 'insert', 'users', $1, '2031-05-15')`,
          [ORG],
        )
        expect(await db.maintenance.ensureAuditPartitions({ monthsAhead: 0, from: new Date('2031-05-01') })).toEqual([
          'audit_logs_2031_05',
        ])
        const [moved] = await e.admin.query<{ part: number; dflt: number; colocated: boolean }>(
          `select (select count(*) from audit_logs_2031_05)::int as part, (select count(*) from audit_logs_default)::int as dflt,
                  (select colocationid from pg_dist_partition where logicalrelid = 'audit_logs_2031_05'::regclass)
                    = (select colocationid from pg_dist_partition where logicalrelid = 'users'::regclass) as colocated`,
        )
        expect(moved).toEqual({ part: 1, dflt: 0, colocated: true })
        const dropped = await db.maintenance.dropAuditPartitionsBefore(new Date('2031-06-01'))
        expect(dropped).toContain('audit_logs_2031_05')
      } finally {
        await db.close()
      }
    })
  },
  { citus: true },
)

describeEachEngine(
  'read-your-writes on replicas',
  (engine) => {
    it('is refused with a typed error on Citus (never a silent wait), and still served elsewhere', async () => {
      const e = engine()
      if (e.name === 'pglite' || e.url === undefined) return
      // The primary doubles as its own "replica": the gate passes at once on plain PostgreSQL.
      await ensureOrg(e)
      const db = createDatabase({ primary: e.url, admin: targetOf(e), replicas: [e.url] })
      try {
        const read = () => db.tenant(ORG, {}).users.findMany()
        if (e.name === 'postgres') {
          await expect(read()).resolves.toBeDefined()
          return
        }
        for (let i = 0; i < 2; i++) {
          const error = await read().catch((x: unknown) => x)
          expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
          expect((error as Error).message).toMatch(
            /read-your-writes reads on replicas are not available on a Citus database/,
          )
        }
        await expect(db.tenant(ORG, {}, { consistency: 'primary' }).users.findMany()).resolves.toBeDefined()
        expect(db.stats().routing.reads.replica).toBe(0)
      } finally {
        await db.close()
      }
    })
  },
  { citus: true },
)

describe('distribute() target', () => {
  it('needs a target: no URL and no DATABASE_ADMIN_URL is a typed error', async () => {
    const saved = process.env.DATABASE_ADMIN_URL
    delete process.env.DATABASE_ADMIN_URL
    try {
      const error = await distribute().catch((x: unknown) => x)
      expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
    } finally {
      if (saved !== undefined) process.env.DATABASE_ADMIN_URL = saved
    }
  })
})
