import { beforeAll, expect, it } from 'vitest'
import { describeEachDatabase, type TestDatabase } from './harness/engines'
import { asAppRole, expectSqlState, sqlState, type SqlRunner } from './harness/sql-runner'
import { TEST_SECRET } from './harness/secret'
import { fillTenant, type FilledTenant } from './support/fixtures'
import { settingsStatement } from '../src/engine/settings-statement'
import { tenantProof } from '../src/engine/tenant-proof'
import { appTableChecks, type AppTableCheck } from '../src/cli/app-tables-doctor'
import { runDoctor } from '../src/cli/doctor'
import { tableStats } from '../src/cli/stats'
import { createDatabase } from '../src/client/create-database'
import { isCallsheetDbError } from '../src/errors'

// Apps' own tenant tables (issue 18): a table made by raw DDL as the owner, in the shape tenantTable()
// gives it, then registered with the one migration step an app adds. Everything after that is proven
// through raw SQL as the app role, the way SQL injected into a unit would run. PGlite and PostgreSQL;
// not Citus (an app table there must also be distributed, which registration does not do).

/** tenantTable()'s shape, as drizzle-kit emits it (the policy and ENABLE RLS included). */
function appTableDdl(name: string, options: { softDelete?: boolean; extra?: string } = {}): string {
  return `
    create table ${name} (
      id uuid not null default gen_random_uuid(),
      organization_id uuid not null,
      contact_id uuid,
      call_at timestamptz,
      note text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      ${options.softDelete === false ? '' : 'deleted_at timestamptz,'}
      ${options.extra ?? ''}
      constraint ${name}_pkey primary key (organization_id, id),
      constraint ${name}_organization_fk foreign key (organization_id) references organizations(id) on delete cascade,
      constraint ${name}_contact_fk foreign key (organization_id, contact_id) references contacts(organization_id, id)
    );
    alter table ${name} enable row level security;
    create policy tenant_isolation on ${name} as permissive for all to public
      using ("organization_id" = (select callsheet_tenant())) with check ("organization_id" = (select callsheet_tenant()));`
}

/** A unit as the app role for `orgId` with an actor and a request id, set as the library sets them. */
async function asTenant<T>(
  runner: SqlRunner,
  orgId: string,
  context: { actorId?: string; requestId?: string },
  fn: (tx: SqlRunner) => Promise<T>,
): Promise<T> {
  return runner.transaction(async (tx) => {
    const actorId = context.actorId ?? ''
    const settings = settingsStatement({
      role: 'callsheet_app',
      organizationId: orgId,
      actorId,
      apiKeyId: '',
      requestId: context.requestId ?? '',
      ip: '',
      proof: tenantProof(TEST_SECRET, orgId, Math.floor(Date.now() / 1000) + 600, actorId),
    })
    await tx.query(settings.text, settings.params)
    return fn(tx)
  })
}

async function register(admin: SqlRunner, table: string): Promise<void> {
  await admin.query(`select callsheet_register_tenant_table($1)`, [table])
}

/** The registration-relevant catalog state of a table (to compare before and after). */
async function catalogState(admin: SqlRunner, table: string): Promise<Record<string, unknown>> {
  const [row] = await admin.query(
    `select c.relrowsecurity as rls, c.relforcerowsecurity as force,
            array(select polname::text from pg_policy where polrelid = c.oid order by 1) as policies,
            array(select tgname::text || ':' || tgenabled::text from pg_trigger where tgrelid = c.oid and not tgisinternal order by 1) as triggers,
            array(select p from unnest(array['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','TRIGGER','REFERENCES']) p
                  where has_table_privilege('callsheet_app', c.oid, p)) as app_grants,
            (select count(*)::int from callsheet_migrations.tenant_tables t where t.table_name = c.relname) as registered
     from pg_class c where c.oid = $1::regclass`,
    [table],
  )
  return row ?? {}
}

const doctor = (admin: SqlRunner): Promise<AppTableCheck[]> =>
  appTableChecks(<T>(text: string, params: unknown[]) => admin.query(text, params) as Promise<T[]>, 'callsheet_app')

describeEachDatabase('app tenant tables registered with callsheet_register_tenant_table', (ctx: () => TestDatabase) => {
  let a: FilledTenant
  let b: FilledTenant
  const admin = () => ctx().engine.admin

  beforeAll(async () => {
    a = await fillTenant(ctx().db, 'app-a')
    b = await fillTenant(ctx().db, 'app-b')
    await admin().exec(appTableDdl('call_times'))
    await register(admin(), 'call_times')
  })

  it('registration forces RLS, keeps the one policy, installs the triggers and grants, records the table; twice is once', async () => {
    const first = await catalogState(admin(), 'call_times')
    expect(first).toEqual({
      rls: true,
      force: true,
      policies: ['tenant_isolation'],
      triggers: [
        'call_times_audit_delete:O',
        'call_times_audit_insert:O',
        'call_times_audit_update:O',
        'call_times_set_updated_at:O',
      ],
      app_grants: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
      registered: 1,
    })
    await register(admin(), 'call_times')
    await register(admin(), 'public.call_times')
    expect(await catalogState(admin(), 'call_times')).toEqual(first)
  })

  it('without a policy of its own, registration creates the library’s; TRUNCATE granted before is taken back', async () => {
    await admin()
      .exec(`create table crew_notes (id uuid not null default gen_random_uuid(), organization_id uuid not null,
      body text, created_at timestamptz not null default now(), updated_at timestamptz not null default now(),
      primary key (organization_id, id));
      grant all on crew_notes to callsheet_app`)
    await register(admin(), 'crew_notes')
    const [policy] = await admin().query<{ same: boolean }>(
      `select pg_get_expr(p.polqual, p.polrelid) = (select pg_get_expr(q.polqual, q.polrelid) from pg_policy q
                where q.polrelid = 'contacts'::regclass and q.polname = 'tenant_isolation')
              and pg_get_expr(p.polwithcheck, p.polrelid) = (select pg_get_expr(q.polwithcheck, q.polrelid) from pg_policy q
                where q.polrelid = 'contacts'::regclass and q.polname = 'tenant_isolation')
              and p.polpermissive and p.polcmd = '*' and p.polroles = array[0::oid] as same
       from pg_policy p where p.polrelid = 'crew_notes'::regclass`,
    )
    expect(policy?.same).toBe(true)
    expect((await catalogState(admin(), 'crew_notes')).app_grants).toEqual(['SELECT', 'INSERT', 'UPDATE', 'DELETE'])
  })

  it('a tenant sees its own rows only; no tenant sees none', async () => {
    const ids: Record<string, string> = {}
    for (const t of [a, b])
      await asTenant(admin(), t.org.id, {}, async (tx) => {
        const [row] = await tx.query<{ id: string }>(
          `insert into call_times (organization_id, contact_id, call_at) values ($1, $2, '2026-01-05 07:00Z') returning id`,
          [t.org.id, t.contact.id],
        )
        ids[t.org.id] = row!.id
      })
    await asTenant(admin(), a.org.id, {}, async (tx) => {
      const rows = await tx.query<{ id: string }>(`select id from call_times`)
      expect(rows.map((r) => r.id)).toEqual([ids[a.org.id]])
      expect(await tx.query(`select 1 from call_times where id = $1`, [ids[b.org.id]])).toEqual([])
    })
    await asAppRole(admin(), null, async (tx) => {
      expect(await tx.query(`select 1 from call_times`)).toEqual([])
    })
  })

  it('cross-tenant writes are refused and leave no row and no audit row', async () => {
    const stray = '00000000-0000-4000-8000-00000000abcd'
    await expectSqlState(
      asTenant(admin(), a.org.id, {}, (tx) =>
        tx.query(`insert into call_times (id, organization_id) values ($1, $2)`, [stray, b.org.id]),
      ),
      '42501',
    )
    // A's row pointing at B's contact: the composite foreign key refuses it.
    await expectSqlState(
      asTenant(admin(), a.org.id, {}, (tx) =>
        tx.query(`insert into call_times (id, organization_id, contact_id) values ($1, $2, $3)`, [
          stray,
          a.org.id,
          b.contact.id,
        ]),
      ),
      '23503',
    )
    const [bRow] = await admin().query<{ id: string; note: string | null }>(
      `select id, note from call_times where organization_id = $1`,
      [b.org.id],
    )
    const updated = await asTenant(admin(), a.org.id, {}, (tx) =>
      tx.query(`update call_times set note = 'mine now' where id = $1 returning id`, [bRow!.id]),
    )
    expect(updated).toEqual([])
    const deleted = await asTenant(admin(), a.org.id, {}, (tx) =>
      tx.query(`delete from call_times where id = $1 returning id`, [bRow!.id]),
    )
    expect(deleted).toEqual([])
    // Moving A's own row to B: refused (the trigger keeps organization_id; the policy would too).
    const error = await asTenant(admin(), a.org.id, {}, (tx) =>
      tx.query(`update call_times set organization_id = $1`, [b.org.id]),
    ).catch((e: unknown) => e)
    expect(['23514', '42501']).toContain(sqlState(error))
    expect(await admin().query(`select 1 from call_times where id = $1`, [stray])).toEqual([])
    expect(await admin().query(`select 1 from audit_logs where entity_id = $1`, [stray])).toEqual([])
    const [after] = await admin().query<{ note: string | null; org: string }>(
      `select note, organization_id as org from call_times where id = $1`,
      [bRow!.id],
    )
    expect(after).toEqual({ note: bRow!.note, org: b.org.id })
    const [moved] = await admin().query<{ n: number }>(
      `select count(*)::int as n from call_times where organization_id = $1`,
      [a.org.id],
    )
    expect(moved?.n).toBe(1)
  })

  it('updated_at is set by the database; id and organization_id are immutable', async () => {
    const [row] = await asTenant(admin(), a.org.id, {}, (tx) =>
      tx.query<{ id: string }>(`insert into call_times (organization_id) values ($1) returning id`, [a.org.id]),
    )
    const [after] = await asTenant(admin(), a.org.id, {}, (tx) =>
      tx.query<{ updated_at: Date }>(
        `update call_times set note = 'early', updated_at = '2000-01-01Z' where id = $1 returning updated_at`,
        [row!.id],
      ),
    )
    expect(new Date(after!.updated_at).getUTCFullYear()).toBeGreaterThan(2000)
    await expectSqlState(
      asTenant(admin(), a.org.id, {}, (tx) =>
        tx.query(`update call_times set id = gen_random_uuid() where id = $1`, [row!.id]),
      ),
      '23514',
    )
  })

  it('insert, update, soft delete, restore and purge are audited with the context, readable through tenant.auditLogs, and by that tenant only', async () => {
    const context = { actorId: a.user.id, requestId: 'req-app-table-1' }
    const id = await asTenant(admin(), a.org.id, context, async (tx) => {
      const [row] = await tx.query<{ id: string }>(
        `insert into call_times (organization_id, contact_id, call_at) values ($1, $2, '2026-01-06 06:30Z') returning id`,
        [a.org.id, a.contact.id],
      )
      return row!.id
    })
    for (const statement of [
      `update call_times set call_at = '2026-01-06 07:00Z' where id = $1`,
      `update call_times set deleted_at = now() where id = $1`,
      `update call_times set deleted_at = null where id = $1`,
      `delete from call_times where id = $1`,
    ])
      await asTenant(admin(), a.org.id, context, (tx) => tx.query(statement, [id]))
    const page = await ctx().db.tenant(a.org.id).auditLogs.history('call_times', id)
    expect(page.rows.map((r) => r.action)).toEqual(['purge', 'restore', 'soft_delete', 'update', 'insert'])
    for (const row of page.rows)
      expect(row).toMatchObject({
        entityType: 'call_times',
        entityId: id,
        organizationId: a.org.id,
        userId: a.user.id,
        requestId: 'req-app-table-1',
      })
    expect(page.rows[3]?.newValues).toEqual({ call_at: expect.stringMatching(/^2026-01-06T07:00:00/) as unknown })
    const since = new Date(Date.now() - 3_600_000)
    const found = await ctx().db.tenant(a.org.id).auditLogs.findMany({ from: since, entityType: 'call_times' })
    expect(found.rows.filter((r) => r.entityId === id)).toHaveLength(5)
    // Another tenant asks for the same row's trail: nothing.
    expect((await ctx().db.tenant(b.org.id).auditLogs.history('call_times', id)).rows).toEqual([])
    const bFound = await ctx().db.tenant(b.org.id).auditLogs.findMany({ from: since, entityType: 'call_times' })
    expect(bFound.rows.every((r) => r.organizationId === b.org.id)).toBe(true)
    expect(bFound.rows.some((r) => r.entityId === id)).toBe(false)
  })

  it('a table without deleted_at: every update is audited as an update', async () => {
    const id = await asTenant(admin(), a.org.id, { requestId: 'req-notes' }, async (tx) => {
      const [row] = await tx.query<{ id: string }>(
        `insert into crew_notes (organization_id, body) values ($1, 'one') returning id`,
        [a.org.id],
      )
      await tx.query(`update crew_notes set body = 'two' where id = $1`, [row!.id])
      return row!.id
    })
    const page = await ctx().db.tenant(a.org.id).auditLogs.history('crew_notes', id)
    expect(page.rows.map((r) => [r.action, r.requestId])).toEqual([
      ['update', 'req-notes'],
      ['insert', 'req-notes'],
    ])
  })

  it('audit queries refuse what cannot be a table name', async () => {
    const tenant = ctx().db.tenant(a.org.id)
    for (const bad of ['Call_Times', 'call-times', '', 'x'.repeat(64), "contacts' or 1=1"]) {
      const error = await tenant.auditLogs.history(bad, a.contact.id).catch((e: unknown) => e)
      expect(isCallsheetDbError(error, 'VALIDATION_FAILED'), bad).toBe(true)
      const listed = await tenant.auditLogs.findMany({ from: new Date(0), entityType: bad }).catch((e: unknown) => e)
      expect(isCallsheetDbError(listed, 'VALIDATION_FAILED'), bad).toBe(true)
    }
  })

  it('refuses what is not a tenant table, each with its own SQLSTATE, and changes nothing', async () => {
    const cases: [string, string, string][] = [
      ['a view', `create view ct_view as select * from call_times`, '42809'],
      [
        'another schema',
        `create schema app_other; ${appTableDdl('app_other.shifts').replace(/constraint app_other\.shifts_/g, 'constraint shifts_')}`,
        '0A000',
      ],
      ['a library table', '', '42939'],
      ['a long name', appTableDdl('t'.repeat(49)), '42622'],
      [
        'no updated_at',
        `create table no_updated (id uuid not null, organization_id uuid not null, created_at timestamptz, primary key (organization_id, id))`,
        '42703',
      ],
      [
        'id as text',
        `create table text_ids (id text not null, organization_id uuid not null, created_at timestamptz, updated_at timestamptz, primary key (organization_id, id))`,
        '42804',
      ],
      [
        'a nullable id',
        `create table null_ids (id uuid, organization_id uuid not null, created_at timestamptz, updated_at timestamptz)`,
        '42804',
      ],
      [
        'no primary key',
        `create table no_pk (id uuid not null, organization_id uuid not null, created_at timestamptz, updated_at timestamptz)`,
        '42P16',
      ],
      [
        'a key led by id',
        `create table id_first (id uuid not null, organization_id uuid not null, created_at timestamptz, updated_at timestamptz, primary key (id, organization_id))`,
        '42P16',
      ],
      [
        'a second permissive policy',
        `${appTableDdl('wide')} create policy everyone on wide for select using (true)`,
        '42710',
      ],
      [
        'a tenant_isolation of its own',
        `${appTableDdl('own_policy').replace(/for all to public/, 'for all to callsheet_app')}`,
        '42710',
      ],
      [
        'a looser tenant_isolation',
        `${appTableDdl('loose').replace(/using \("organization_id" = \(select callsheet_tenant\(\)\)\)/, 'using (true)')}`,
        '42710',
      ],
      ['owned by the app role', `${appTableDdl('app_owned')} alter table app_owned owner to callsheet_app`, '42501'],
    ]
    const targets: Record<string, string> = {
      'a view': 'ct_view',
      'another schema': 'app_other.shifts',
      'a library table': 'contacts',
      'a long name': 't'.repeat(49),
      'no updated_at': 'no_updated',
      'id as text': 'text_ids',
      'a nullable id': 'null_ids',
      'no primary key': 'no_pk',
      'a key led by id': 'id_first',
      'a second permissive policy': 'wide',
      'a tenant_isolation of its own': 'own_policy',
      'a looser tenant_isolation': 'loose',
      'owned by the app role': 'app_owned',
    }
    for (const [what, ddl, state] of cases) {
      if (ddl !== '') await admin().exec(ddl)
      const target = targets[what]!
      const before = await catalogState(admin(), target)
      const error = await register(admin(), target).catch((e: unknown) => e)
      expect(sqlState(error), `${what}: ${String(error)}`).toBe(state)
      expect(await catalogState(admin(), target), what).toEqual(before)
    }
    // The app role may not call it at all.
    await expectSqlState(
      asAppRole(admin(), a.org.id, (tx) => tx.query(`select callsheet_register_tenant_table('call_times')`)),
      '42501',
    )
  })

  it('a partitioned table registers by its parent; its partitions do not', async () => {
    await admin()
      .exec(`create table shift_logs (id uuid not null default gen_random_uuid(), organization_id uuid not null,
        created_at timestamptz not null default now(), updated_at timestamptz not null default now(), deleted_at timestamptz,
        primary key (organization_id, id)) partition by hash (organization_id);
      create table shift_logs_0 partition of shift_logs for values with (modulus 2, remainder 0);
      create table shift_logs_1 partition of shift_logs for values with (modulus 2, remainder 1)`)
    await expectSqlState(register(admin(), 'shift_logs_0'), '42809')
    await register(admin(), 'shift_logs')
    const id = await asTenant(admin(), a.org.id, { requestId: 'req-shift' }, async (tx) => {
      const [row] = await tx.query<{ id: string }>(
        `insert into shift_logs (organization_id) values ($1) returning id`,
        [a.org.id],
      )
      await tx.query(`update shift_logs set deleted_at = now() where id = $1`, [row!.id])
      return row!.id
    })
    const page = await ctx().db.tenant(a.org.id).auditLogs.history('shift_logs', id)
    expect(page.rows.map((r) => r.action)).toEqual(['soft_delete', 'insert'])
    await asTenant(admin(), b.org.id, {}, async (tx) => {
      expect(await tx.query(`select 1 from shift_logs`)).toEqual([])
    })
  })

  it('doctor: healthy app tables pass; each broken guarantee is named with the fix; re-registering fixes it', async () => {
    // The refusal cases above left tables with organization_id that are not registered: register or drop them.
    await admin().exec(`drop view ct_view; drop schema app_other cascade; drop table ${'t'.repeat(49)}, no_updated,
      text_ids, null_ids, no_pk, id_first, wide, own_policy, loose, app_owned`)
    const healthy = await doctor(admin())
    expect(healthy.filter((c) => !c.ok)).toEqual([])
    expect(healthy.map((c) => c.name)).toEqual([
      'app table call_times',
      'app table crew_notes',
      'app table shift_logs',
      'unregistered tenant tables',
    ])
    const breakages: [string, RegExp][] = [
      ['alter table call_times no force row level security', /row-level security is not forced/],
      ['alter table call_times disable row level security', /row-level security is not enabled/],
      ['drop trigger call_times_audit_update on call_times', /trigger call_times_audit_update is missing/],
      [
        'alter table call_times disable trigger call_times_set_updated_at',
        /trigger call_times_set_updated_at is missing, disabled/,
      ],
      [`create policy everyone on call_times for select using (true)`, /other policies everyone .*drop them first/],
      ['drop policy tenant_isolation on call_times', /policy tenant_isolation is missing/],
      [
        `alter policy tenant_isolation on call_times using (true)`,
        /policy tenant_isolation is not the library.*drop it/,
      ],
      ['revoke insert on call_times from callsheet_app', /callsheet_app lacks INSERT/],
      ['grant truncate on call_times to callsheet_app', /callsheet_app holds TRUNCATE/],
    ]
    for (const [breakage, problem] of breakages) {
      await admin().exec(breakage)
      const checks = await doctor(admin())
      const check = checks.find((c) => c.name === 'app table call_times')
      expect(check?.ok, breakage).toBe(false)
      expect(check?.detail, breakage).toMatch(problem)
      expect(check?.detail).toContain(`fix: SELECT callsheet_register_tenant_table('public.call_times')`)
      expect(
        checks.filter((c) => !c.ok).map((c) => c.name),
        breakage,
      ).toEqual(['app table call_times'])
      // Registration refuses a policy that is not the library's: the doctor says to drop it first.
      if (breakage.startsWith('create policy')) await admin().exec('drop policy everyone on call_times')
      if (breakage.startsWith('alter policy')) await admin().exec('drop policy tenant_isolation on call_times')
      await register(admin(), 'call_times')
      expect(
        (await doctor(admin())).filter((c) => !c.ok),
        `after re-registering: ${breakage}`,
      ).toEqual([])
    }
    // Tenant data without the guarantees, and a registered table that is gone.
    await admin().exec(`create table stray_rows (id uuid primary key, organization_id uuid)`)
    let checks = await doctor(admin())
    expect(checks.find((c) => c.name === 'unregistered tenant tables')).toMatchObject({
      ok: false,
      detail: expect.stringMatching(
        /tenant data without the guarantees: stray_rows .*SELECT callsheet_register_tenant_table\('public\.stray_rows'\)/,
      ) as unknown,
    })
    await admin().exec(`drop table stray_rows; drop table crew_notes`)
    checks = await doctor(admin())
    expect(checks.filter((c) => !c.ok)).toEqual([
      {
        name: 'app table crew_notes',
        ok: false,
        detail: expect.stringMatching(
          /registered, but public\.crew_notes no longer exists .*DELETE FROM callsheet_migrations\.tenant_tables/,
        ) as unknown,
      },
    ])
    await admin().exec(`delete from callsheet_migrations.tenant_tables where table_name = 'crew_notes'`)
    expect((await doctor(admin())).filter((c) => !c.ok)).toEqual([])
  })

  it('doctor, stats and monitoring include the app tables; a login that cannot read the registry falls back to the policy', async () => {
    const sizes = await ctx().db.monitoring.tableSizes()
    expect(sizes.map((s) => s.table)).toEqual(expect.arrayContaining(['call_times', 'shift_logs']))
    expect(sizes.find((s) => s.table === 'shift_logs')?.partitions).toBe(2)
    expect((await ctx().db.monitoring.indexUsage()).map((i) => i.index)).toContain('call_times_pkey')
    const sql = ctx().engine.sql
    if (sql === undefined) return // the CLI's doctor and stats speak postgres.js: PostgreSQL only
    const report = await runDoctor(sql)
    expect(report.checks.filter((c) => c.name.startsWith('app table') || c.name.startsWith('unregistered'))).toEqual([
      expect.objectContaining({ name: 'app table call_times', ok: true }),
      expect.objectContaining({ name: 'app table shift_logs', ok: true }),
      expect.objectContaining({ name: 'unregistered tenant tables', ok: true }),
    ])
    const stats = await tableStats(sql)
    expect(stats.map((s) => s.table).slice(-2)).toEqual(['call_times', 'shift_logs'])
    // The runtime login, without an admin connection: no access to the registry.
    const runtime = createDatabase({ primary: ctx().engine.url!, pool: { max: 1 } })
    try {
      const names = (await runtime.monitoring.tableSizes()).map((s) => s.table)
      expect(names).toEqual(expect.arrayContaining(['call_times', 'shift_logs']))
    } finally {
      await runtime.close()
    }
  })
})
