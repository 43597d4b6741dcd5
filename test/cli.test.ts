import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { runCli, type CliIo } from '../src/cli/run'
import { requiredAuditPartitions } from '../src/cli/doctor'
import { readJournal } from '../src/migrations/journal'
import { formatTable } from '../src/cli/output'
import { openEngine, type TestEngine } from './harness/engines'
import { createScratchDatabase } from '../tools/postgres-server'
import postgres from 'postgres'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import { migrationsFolder } from '../src/migrations/migrations-folder'

const server = inject('postgresServer')

interface Run {
  code: number
  stdout: string
  stderr: string
  json: () => Record<string, unknown>
}

async function cli(argv: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env }
  const code = await runCli(argv, io)
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> }
}

interface DoctorJson {
  ok: boolean
  checks: { name: string; ok: boolean; detail: string }[]
}

describe('cli without a database', () => {
  it('no URL → exit 2 with a message', async () => {
    const run = await cli(['status'])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/no database URL/)
  })

  it('unknown command → usage, exit 2', async () => {
    const run = await cli(['frobnicate', '--url', 'postgres://x@localhost/db'])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/unknown command "frobnicate"/)
    expect(run.stderr).toMatch(/Usage: callsheet-db/)
  })

  it('no command, unknown option, option of another command, bad date → exit 2', async () => {
    expect((await cli([])).code).toBe(2)
    expect((await cli(['status', '--nope'])).code).toBe(2)
    expect((await cli(['status', '--months', '3'], { DATABASE_ADMIN_URL: 'postgres://x@h/d' })).code).toBe(2)
    const bad = await cli(['partitions', 'drop-before', '2024-13-01', '--json'], {
      DATABASE_ADMIN_URL: 'postgres://x@h/d',
    })
    expect(bad.code).toBe(2)
    expect(bad.json()).toEqual({ ok: false, error: expect.stringMatching(/YYYY-MM-DD/) as unknown })
    expect((await cli(['partitions', 'shrink'], { DATABASE_ADMIN_URL: 'postgres://x@h/d' })).code).toBe(2)
  })

  it('--help → usage on stdout, exit 0', async () => {
    const run = await cli(['--help'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/partitions drop-before/)
  })

  it('connection failure → exit 1 with a message that hides the password', async () => {
    const run = await cli(['status', '--url', 'postgres://someone:s3cret@127.0.0.1:1/nowhere'])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/cannot connect to postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nowhere/)
    expect(run.stderr).not.toContain('s3cret')
  })

  it('required audit partitions are the current UTC month and the next two', () => {
    expect(requiredAuditPartitions(new Date('2025-11-30T23:30:00Z'))).toEqual([
      'audit_logs_2025_11',
      'audit_logs_2025_12',
      'audit_logs_2026_01',
    ])
  })

  it('aligns table columns', () => {
    expect(
      formatTable([
        ['✓', 'a', 'x'],
        ['✗', 'long name', 'y'],
      ]),
    ).toBe('✓  a          x\n✗  long name  y')
  })
})

describe.runIf(server)('cli [postgres]', () => {
  let engine: TestEngine
  let url: string
  beforeAll(async () => {
    engine = await openEngine('postgres')
    url = engine.ownerUrl!
  })
  afterAll(async () => {
    await engine?.close()
  })

  it('doctor: a healthy database passes every check (JSON), exit 0', async () => {
    const run = await cli(['doctor', '--json'], { DATABASE_ADMIN_URL: url })
    const report = run.json() as unknown as DoctorJson
    expect(report.checks.filter((c) => !c.ok)).toEqual([])
    expect(run.code).toBe(0)
    expect(report.ok).toBe(true)
    const names = report.checks.map((c) => c.name)
    for (const table of ['users', 'departments', 'productions', 'contacts', 'uploads', 'api_keys', 'audit_logs']) {
      expect(names).toContain(`rls ${table}`)
      expect(names).toContain(`policy ${table}`)
    }
    expect(names).toEqual(
      expect.arrayContaining([
        'migrations',
        'role callsheet_app',
        'table ownership',
        'audit partitions',
        'audit default partition',
        'indexes',
      ]),
    )
  })

  it('doctor: human output marks each check ✓', async () => {
    const run = await cli(['doctor', '--url', url])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^✓ +rls contacts +enabled and forced$/m)
    expect(run.stdout).toMatch(/All \d+ checks passed\./)
    expect(run.stdout).not.toContain('✗')
  })

  it('doctor: a dropped policy is named (table and policy), exit 1', async () => {
    await engine.admin.exec('drop policy tenant_isolation on contacts')
    try {
      const run = await cli(['doctor', '--json', '--url', url])
      expect(run.code).toBe(1)
      const report = run.json() as unknown as DoctorJson
      expect(report.ok).toBe(false)
      const failed = report.checks.filter((c) => !c.ok)
      expect(failed).toEqual([
        { name: 'policy contacts', ok: false, detail: 'policy tenant_isolation on contacts is missing' },
      ])
      const human = await cli(['doctor', '--url', url])
      expect(human.code).toBe(1)
      expect(human.stdout).toMatch(/^✗ +policy contacts +policy tenant_isolation on contacts is missing$/m)
    } finally {
      await engine.admin.exec(
        `create policy tenant_isolation on contacts as permissive for all to public
           using (organization_id = (select callsheet_tenant()))
           with check (organization_id = (select callsheet_tenant()))`,
      )
    }
    expect((await cli(['doctor', '--url', url])).code).toBe(0)
  })

  it('doctor: RLS no longer forced on uploads is named, exit 1', async () => {
    await engine.admin.exec('alter table uploads no force row level security')
    try {
      const run = await cli(['doctor', '--json', '--url', url])
      expect(run.code).toBe(1)
      const failed = (run.json() as unknown as DoctorJson).checks.filter((c) => !c.ok)
      expect(failed).toEqual([
        { name: 'rls uploads', ok: false, detail: 'row-level security is not forced on uploads' },
      ])
    } finally {
      await engine.admin.exec('alter table uploads force row level security')
    }
  })

  it('doctor: TEMPORARY granted back, an unpinned SECURITY DEFINER function and no tenant key are named, with the fix', async () => {
    const grant = (verb: string) =>
      engine.admin.exec(
        `do $$ begin execute format('${verb} temporary on database %I ${verb === 'grant' ? 'to' : 'from'} public', current_database()); end $$`,
      )
    await grant('grant')
    await engine.admin.exec('alter function callsheet_audit() set search_path = pg_catalog, public')
    const keys = await engine.admin.query<Record<string, unknown>>('select * from callsheet_private.tenant_keys')
    await engine.admin.exec('delete from callsheet_private.tenant_keys')
    try {
      const run = await cli(['doctor', '--json', '--url', url])
      expect(run.code).toBe(1)
      const failed = (run.json() as unknown as DoctorJson).checks.filter((c) => !c.ok)
      expect(failed.map((c) => c.name)).toEqual(['temporary tables', 'security definer functions', 'tenant keys'])
      expect(failed[0]?.detail).toMatch(/REVOKE TEMPORARY ON DATABASE "[^"]+" FROM PUBLIC, callsheet_app/)
      expect(failed[1]?.detail).toContain('callsheet_audit')
      expect(failed[2]?.detail).toContain('migrate(url, { secret })')
    } finally {
      await grant('revoke')
      await engine.admin.exec('alter function callsheet_audit() set search_path = pg_catalog, pg_temp')
      for (const key of keys)
        await engine.admin.query(
          'insert into callsheet_private.tenant_keys (id, inner_pad, outer_pad, installed_at) values ($1, $2, $3, $4)',
          [key.id, key.inner_pad, key.outer_pad, key.installed_at],
        )
    }
    expect((await cli(['doctor', '--url', url])).code).toBe(0)
  })

  it('doctor: a missing app role and an invalid index are named', async () => {
    await engine.admin.exec(
      `update pg_index set indisvalid = false where indexrelid = 'contacts_name_trgm_idx'::regclass`,
    )
    try {
      const run = await cli(['doctor', '--json', '--url', url, '--app-role', 'no_such_role_cli'])
      expect(run.code).toBe(1)
      const failed = (run.json() as unknown as DoctorJson).checks.filter((c) => !c.ok)
      expect(failed.map((c) => c.name)).toEqual([
        'role no_such_role_cli',
        'table ownership',
        'runtime login',
        'indexes',
      ])
      expect(failed[0]?.detail).toBe('role no_such_role_cli does not exist')
      expect(failed[2]?.detail).toMatch(/no login other than the tables' owner is a member of no_such_role_cli/)
      expect(failed[3]?.detail).toBe('index contacts_name_trgm_idx on contacts is invalid')
    } finally {
      await engine.admin.exec(
        `update pg_index set indisvalid = true where indexrelid = 'contacts_name_trgm_idx'::regclass`,
      )
    }
  })

  it('doctor: rows in the DEFAULT audit partition are reported', async () => {
    const [org] = await engine.admin.query<{ id: string }>(
      `insert into organizations (name, slug) values ('Default', 'default-${Date.now().toString(36)}') returning id`,
    )
    await engine.admin.query(
      `insert into audit_logs_default (organization_id, action, entity_type, entity_id, created_at)
       values ($1, 'insert', 'contacts', gen_random_uuid(), '1999-01-01')`,
      [org!.id],
    )
    try {
      const run = await cli(['doctor', '--json', '--url', url])
      expect(run.code).toBe(1)
      const failed = (run.json() as unknown as DoctorJson).checks.filter((c) => !c.ok)
      expect(failed).toHaveLength(1)
      expect(failed[0]).toMatchObject({ name: 'audit default partition' })
      expect(failed[0]?.detail).toMatch(/^audit_logs_default holds 1 row\(s\)/)
    } finally {
      await engine.admin.exec(`delete from audit_logs_default where created_at = '1999-01-01'`)
    }
  })

  it('doctor: a missing month partition is named', async () => {
    const [current] = requiredAuditPartitions(new Date())
    await engine.admin.exec(`alter table audit_logs detach partition ${current}`)
    try {
      const run = await cli(['doctor', '--json', '--url', url])
      expect(run.code).toBe(1)
      const failed = (run.json() as unknown as DoctorJson).checks.filter((c) => !c.ok)
      expect(failed).toEqual([
        {
          name: 'audit partitions',
          ok: false,
          detail: `missing ${current} (run: callsheet-db partitions ensure)`,
        },
      ])
    } finally {
      await engine.admin.exec(
        `alter table audit_logs attach partition ${current} for values from ('${isoMonth(0)}T00:00:00Z') to ('${isoMonth(1)}T00:00:00Z')`,
      )
    }
  })

  it('doctor --replica: a streaming replica is in recovery with its lag; the primary as replica fails', async () => {
    const args = ['doctor', '--json', '--url', url, '--replica', url]
    if (server?.replicaUrl) args.push('--replica', server.replicaUrl)
    const run = await cli(args)
    expect(run.code).toBe(1)
    const replicas = (run.json() as unknown as DoctorJson).checks.filter((c) => c.name.startsWith('replica '))
    expect(replicas[0]).toMatchObject({ ok: false, detail: expect.stringMatching(/not in recovery/) as unknown })
    if (server?.replicaUrl)
      expect(replicas[1]).toMatchObject({
        ok: true,
        detail: expect.stringMatching(/^in recovery, replay lag \d+ ms/) as unknown,
      })
    const down = await cli(['doctor', '--json', '--url', url, '--replica', 'postgres://x:pw@127.0.0.1:1/none'])
    const check = (down.json() as unknown as DoctorJson).checks.find((c) => c.name.startsWith('replica '))
    expect(check).toMatchObject({ name: 'replica postgres://x:***@127.0.0.1:1/none', ok: false })
  })

  it('status: 0 pending on a migrated database', async () => {
    const run = await cli(['status', '--json', '--url', url])
    expect(run.code).toBe(0)
    const status = run.json()
    expect(status).toMatchObject({ ok: true, pending: 0, applied: readJournal().length, upToDate: true })
    const human = await cli(['status', '--url', url])
    expect(human.stdout).toMatch(/^ {2}applied +0000_extensions_and_role /m)
    expect(human.stdout).toMatch(/\d+ applied, 0 pending\./)
  })

  it('status on an empty database shows every migration pending; migrate applies them; status then shows 0', async () => {
    const scratch = await createScratchDatabase(server!.adminUrl, 'cs_cli')
    try {
      const total = readJournal().length
      const before = await cli(['status', '--json', '--url', scratch.url])
      expect(before.code).toBe(1)
      expect(before.json()).toMatchObject({ ok: false, applied: 0, pending: total })
      const migrated = await cli(['migrate', '--json', '--url', scratch.url])
      expect(migrated.code).toBe(0)
      const result = migrated.json() as { applied: string[] }
      expect(result.applied).toHaveLength(total)
      expect(result.applied[0]).toBe('0000_extensions_and_role')
      const after = await cli(['status', '--json', '--url', scratch.url])
      expect(after.code).toBe(0)
      expect(after.json()).toMatchObject({ pending: 0, applied: total })
      const again = await cli(['migrate', '--url', scratch.url])
      expect(again.code).toBe(0)
      expect(again.stdout).toMatch(/Nothing to apply/)
      expect((await cli(['doctor', '--url', scratch.url])).code).toBe(0)
    } finally {
      await scratch.drop()
    }
  })

  it('status/doctor on a database migrated before issue 18 (rows in drizzle.__drizzle_migrations); migrate adopts them', async () => {
    const scratch = await createScratchDatabase(server!.adminUrl, 'cs_cli')
    const sql = postgres(scratch.url, { max: 1, onnotice: () => {} })
    try {
      const total = readJournal().length
      await migratePostgres(drizzlePostgres(sql), { migrationsFolder: migrationsFolder() })
      const before = await cli(['status', '--json', '--url', scratch.url])
      expect(before.code).toBe(1)
      expect(before.json()).toMatchObject({ ok: false, applied: total, pending: 0, legacy: total })
      expect((await cli(['status', '--url', scratch.url])).stdout).toMatch(
        /recorded only in drizzle\.__drizzle_migrations/,
      )
      const doctor = await cli(['doctor', '--json', '--url', scratch.url])
      const check = (doctor.json() as unknown as DoctorJson).checks.find((c) => c.name === 'migrations')
      expect(check).toMatchObject({ ok: false, detail: expect.stringMatching(/run migrate/) as unknown })
      const migrated = await cli(['migrate', '--json', '--url', scratch.url])
      expect(migrated.code).toBe(0)
      expect(migrated.json()).toMatchObject({ ok: true, applied: [] })
      expect((await cli(['status', '--json', '--url', scratch.url])).json()).toMatchObject({ ok: true, legacy: 0 })
    } finally {
      await sql.end({ timeout: 5 })
      await scratch.drop()
    }
  })

  it('migrate --lock-timeout: a lock another session holds fails it fast with MIGRATION_LOCK_TIMEOUT, exit 1; a bad value is a usage error', async () => {
    const bad = await cli(['migrate', '--lock-timeout', '1.5', '--url', url])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--lock-timeout must be an integer from 0 to 86400000/)
    // migrate reads its own table first; a session holding it exclusively makes that read wait.
    const holder = postgres(url, { max: 1, onnotice: () => {} })
    try {
      await holder.begin(async (tx) => {
        await tx`lock table callsheet_migrations.applied in access exclusive mode`
        const run = await cli(['migrate', '--json', '--lock-timeout', '150', '--url', url])
        expect(run.code).toBe(1)
        expect(run.json()).toEqual({ ok: false, error: expect.stringContaining('lockTimeoutMs (150 ms)') as unknown })
        expect(run.stderr).toMatch(/nothing was applied/)
      })
      const after = await cli(['migrate', '--json', '--lock-timeout', '150', '--url', url])
      expect(after.code).toBe(0)
      expect(after.json()).toMatchObject({ ok: true, applied: [] })
    } finally {
      await holder.end({ timeout: 5 })
    }
  })

  it('status: a migration edited after it ran is reported as changed', async () => {
    const [first] = await engine.admin.query<{ id: number; hash: string }>(
      'select id, hash from callsheet_migrations.applied order by id limit 1',
    )
    await engine.admin.query('update callsheet_migrations.applied set hash = $1 where id = $2', [
      '0'.repeat(64),
      first!.id,
    ])
    try {
      const run = await cli(['status', '--json', '--url', url])
      expect(run.code).toBe(1)
      const migrations = (run.json() as { migrations: { tag: string; state: string }[] }).migrations
      expect(migrations[0]).toMatchObject({ tag: '0000_extensions_and_role', state: 'changed' })
    } finally {
      await engine.admin.query('update callsheet_migrations.applied set hash = $1 where id = $2', [
        first!.hash,
        first!.id,
      ])
    }
  })

  it('partitions ensure creates months ahead; drop-before drops old ones', async () => {
    const ensured = await cli(['partitions', 'ensure', '--months', '6', '--json', '--url', url])
    expect(ensured.code).toBe(0)
    // migrate() made the current month and 3 ahead; 6 ahead adds 3 more.
    expect((ensured.json() as { created: string[] }).created).toEqual(requiredAuditPartitions(new Date(), 6).slice(4))
    const again = await cli(['partitions', 'ensure', '--months', '6', '--url', url])
    expect(again.stdout).toMatch(/already exist/)

    const old = await cli(['partitions', 'ensure', '--from', '2020-01-15', '--months', '1', '--json', '--url', url])
    expect((old.json() as { created: string[] }).created).toEqual(['audit_logs_2020_01', 'audit_logs_2020_02'])
    const dropped = await cli(['partitions', 'drop-before', '2020-02-01', '--json', '--url', url])
    expect(dropped.code).toBe(0)
    expect((dropped.json() as { dropped: string[] }).dropped).toEqual(['audit_logs_2020_01'])
    const human = await cli(['partitions', 'drop-before', '2020-03-01', '--url', url])
    expect(human.stdout).toMatch(/Dropped 1 partition\(s\):\n {2}audit_logs_2020_02/)
  })

  it('stats: JSON with pool, routing and every tenant table', async () => {
    await engine.admin.exec(
      `insert into organizations (name, slug) values ('Stats', 'stats-${Date.now().toString(36)}'); analyze organizations`,
    )
    const run = await cli(['stats', '--json', '--url', url])
    expect(run.code).toBe(0)
    const stats = run.json() as {
      pool: { max: number }
      routing: { reads: unknown }
      tables: { table: string; totalBytes: number; rowEstimate: number | null }[]
      database: { name: string }
    }
    expect(stats.pool.max).toBe(1)
    expect(stats.routing.reads).toEqual({ primary: 0, replica: 0 })
    expect(stats.tables.map((t) => t.table)).toEqual([
      'organizations',
      'api_keys',
      'audit_logs',
      'contacts',
      'departments',
      'productions',
      'uploads',
      'users',
    ])
    for (const t of stats.tables) expect(t.totalBytes, JSON.stringify(stats.tables)).toBeGreaterThan(0)
    expect(stats.tables[0]?.rowEstimate).toBeGreaterThanOrEqual(1)
    const human = await cli(['stats', '--url', url])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^ {2}audit_logs +\d/m)
  })
})

function isoMonth(offset: number): string {
  const now = new Date()
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1)).toISOString().slice(0, 10)
}
