import { connect, errorText, redactUrl, type CliSql } from './connection'
import { migrationProblems, migrationStatus } from './status'
import { CITUS_TENANT_PREDICATE, citusFindings, hasCitus } from '../distribution/citus-doctor'
import { TENANT_TABLE_NAMES } from '../schema/table-names'
import { appTableChecks, cliQuery } from './app-tables-doctor'
import {
  LOGIN_PRIVILEGES_SQL,
  loginPrivilegeProblems,
  loginPrivilegesParams,
  type LoginPrivileges,
} from '../engine/login-check'

/** The policy every tenant table carries (drizzle/0001_tables.sql, 0002_…). */
const TENANT_POLICY = 'tenant_isolation'
export const DEFAULT_APP_ROLE = 'callsheet_app'
/** Monthly audit partitions that must exist: the current month (UTC) and this many after it. */
const AUDIT_MONTHS_REQUIRED_AHEAD = 2

/** One doctor check. */
interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export interface DoctorOptions {
  /** The app role the library switches to. @default 'callsheet_app' */
  readonly appRole?: string
  /**
   * The login the app serves requests as. Unset: every login that is a direct member of the app role,
   * other than the tables' owner, is checked (and none at all is a failure: the app then serves as the
   * owner).
   */
  readonly runtimeLogin?: string
  /** Replica URLs: each must be reachable and in recovery. */
  readonly replicas?: readonly string[]
  /** A replica further behind than this (ms) fails its check. Unset: lag is reported only. */
  readonly maxLagMs?: number
  /** "Now", for the partition check (tests). */
  readonly now?: Date
}

export interface DoctorReport {
  readonly ok: boolean
  readonly checks: readonly Check[]
}

// The whole predicate, as pg_get_expr prints it: the tenant proven by callsheet_tenant() (migration 0012),
// nothing OR-ed to it (on Citus inline: Citus refuses subqueries in policies). Compared case- and space-insensitively.
const TENANT_PREDICATE = '(organization_id = ( select callsheet_tenant() as callsheet_tenant))'
const hasTenantPredicate = (expr: string | null, predicate: string): boolean =>
  expr !== null && expr.replace(/\s+/g, ' ').trim().toLowerCase() === predicate

/** `audit_logs_YYYY_MM` for `now`'s month (UTC) and the `ahead` months after it. */
export function requiredAuditPartitions(now: Date, ahead = AUDIT_MONTHS_REQUIRED_AHEAD): string[] {
  const names: string[] = []
  for (let i = 0; i <= ahead; i++) {
    const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + i, 1))
    names.push(`audit_logs_${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, '0')}`)
  }
  return names
}

/** Runs every check against the primary `sql` (and the replicas, each on a connection of its own). */
export async function runDoctor(sql: CliSql, options: DoctorOptions = {}): Promise<DoctorReport> {
  const appRole = options.appRole ?? DEFAULT_APP_ROLE
  const checks: Check[] = []
  const add = (name: string, problems: string[], okDetail: string) =>
    checks.push({ name, ok: problems.length === 0, detail: problems.length === 0 ? okDetail : problems.join('; ') })

  // Migrations.
  const status = await migrationStatus(sql)
  add('migrations', migrationProblems(status), `${status.applied} of ${status.migrations.length} applied, 0 pending`)

  const predicate = (await hasCitus(sql)) ? CITUS_TENANT_PREDICATE : TENANT_PREDICATE
  // Tables: RLS enabled and forced, and the tenant policy.
  const tables = await sql<{ table: string; rls: boolean; force: boolean; owner: string }[]>`
    select c.relname as table, c.relrowsecurity as rls, c.relforcerowsecurity as force,
           pg_get_userbyid(c.relowner) as owner
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname = any(${[...TENANT_TABLE_NAMES]})`
  const policies = await sql<
    {
      table: string
      name: string
      cmd: string
      permissive: boolean
      roles: string[]
      qual: string | null
      check: string | null
    }[]
  >`
    select c.relname as table, p.polname as name, p.polcmd::text as cmd, p.polpermissive as permissive,
           array(select case when r = 0 then 'public' else pg_get_userbyid(r) end from unnest(p.polroles) r)::text[] as roles,
           pg_get_expr(p.polqual, p.polrelid) as qual, pg_get_expr(p.polwithcheck, p.polrelid) as check
    from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public'`
  for (const table of TENANT_TABLE_NAMES) {
    const info = tables.find((t) => t.table === table)
    if (!info) {
      add(`rls ${table}`, [`table public.${table} is missing`], '')
      continue
    }
    const rlsProblems: string[] = []
    if (!info.rls) rlsProblems.push(`row-level security is not enabled on ${table}`)
    if (!info.force) rlsProblems.push(`row-level security is not forced on ${table}`)
    add(`rls ${table}`, rlsProblems, 'enabled and forced')

    const policy = policies.find((p) => p.table === table && p.name === TENANT_POLICY)
    const policyProblems: string[] = []
    if (!policy) policyProblems.push(`policy ${TENANT_POLICY} on ${table} is missing`)
    else if (!(
      policy.cmd === '*' &&
      policy.permissive &&
      policy.roles.some((r) => r === 'public' || r === appRole) &&
      hasTenantPredicate(policy.qual, predicate) &&
      hasTenantPredicate(policy.check, predicate)
    ))
      policyProblems.push(
        `policy ${TENANT_POLICY} on ${table} does not cover all commands with the tenant predicate in USING and WITH CHECK`,
      )
    add(`policy ${table}`, policyProblems, `${TENANT_POLICY} (all commands, tenant predicate)`)
  }

  // The app role.
  const [role] = await sql<{ super: boolean; bypass: boolean }[]>`
    select rolsuper as super, rolbypassrls as bypass from pg_roles where rolname = ${appRole}`
  const roleProblems: string[] = []
  if (!role) roleProblems.push(`role ${appRole} does not exist`)
  else {
    if (role.super) roleProblems.push(`${appRole} is a superuser`)
    if (role.bypass) roleProblems.push(`${appRole} has BYPASSRLS`)
  }
  add(`role ${appRole}`, roleProblems, 'exists, not superuser, no BYPASSRLS')
  const ownershipProblems: string[] = []
  if (role) {
    const owned = tables.filter((t) => t.owner === appRole).map((t) => t.table)
    if (owned.length > 0) ownershipProblems.push(`${appRole} owns ${owned.join(', ')}`)
    const member = await sql<{ table: string; owner: string }[]>`
      select c.relname as table, pg_get_userbyid(c.relowner) as owner
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname = any(${[...TENANT_TABLE_NAMES]})
        and pg_get_userbyid(c.relowner) <> ${appRole} and pg_has_role(${appRole}, c.relowner, 'USAGE')`
    if (member.length > 0)
      ownershipProblems.push(
        `${appRole} is a member of ${[...new Set(member.map((m) => m.owner))].join(', ')}, which owns ${member.map((m) => m.table).join(', ')}`,
      )
  }
  add(
    'table ownership',
    role ? ownershipProblems : [`cannot check: role ${appRole} does not exist`],
    `${appRole} owns no tenant table`,
  )

  // The runtime login(s): only a member of the app role, never privileged.
  checks.push(...(await checkRuntimeLogins(sql, appRole, options.runtimeLogin)))
  // Issue 14: what SQL injected into a tenant unit could otherwise use.
  const [temp] = await sql<{ database: string; app: boolean; everyone: boolean }[]>`
    select current_database() as database,
           case when exists (select 1 from pg_roles where rolname = ${appRole})
                then has_database_privilege(${appRole}, current_database(), 'TEMPORARY') else false end as app,
           exists (select 1 from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                   where d.datname = current_database() and a.grantee = 0 and a.privilege_type = 'TEMPORARY') as everyone`
  const tempHolders = [...(temp?.everyone ? ['PUBLIC'] : []), ...(temp?.app && !temp.everyone ? [appRole] : [])]
  add(
    'temporary tables',
    tempHolders.length > 0
      ? [
          `${tempHolders.join(' and ')} may create temporary tables, which can shadow the library's tables ` +
            `(run as the database owner: REVOKE TEMPORARY ON DATABASE "${temp?.database ?? ''}" FROM PUBLIC, ${appRole})`,
        ]
      : [],
    `${appRole} and PUBLIC have no TEMPORARY`,
  )
  const definers = await sql<{ name: string; config: string[] | null }[]>`
    select p.proname as name, p.proconfig as config from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and p.prosecdef`
  const unpinned = definers.filter((f) => !searchPathPinned(f.config))
  add(
    'security definer functions',
    unpinned.map((f) => `${f.name} is SECURITY DEFINER without a search_path ending with pg_temp`),
    'every SECURITY DEFINER function pins search_path (pg_temp last)',
  )
  const keys = await sql<{ n: number }[]>`select count(*)::int as n from callsheet_private.tenant_keys`.catch(
    () => undefined,
  )
  add(
    'tenant keys',
    keys === undefined
      ? ['callsheet_private.tenant_keys cannot be read (not migrated, or not run as the owner)']
      : (keys[0]?.n ?? 0) === 0
        ? ['no tenant key installed: tenant units will fail (run migrate(url, { secret }) with the deployment secret)']
        : [],
    `${keys?.[0]?.n ?? 0} key(s) installed`,
  )

  // Audit partitions.
  const required = requiredAuditPartitions(options.now ?? new Date())
  const hasAudit = tables.some((t) => t.table === 'audit_logs')
  const partitions = hasAudit
    ? await sql<{ name: string; bound: string }[]>`
        select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound from pg_inherits i
        join pg_class c on c.oid = i.inhrelid where i.inhparent = 'public.audit_logs'::regclass`
    : []
  const missing = required.filter((name) => !partitions.some((p) => p.name === name))
  add(
    'audit partitions',
    hasAudit
      ? missing.length > 0
        ? [`missing ${missing.join(', ')} (run: callsheet-db partitions ensure)`]
        : []
      : ['table audit_logs is missing'],
    `${required.join(', ')} present`,
  )
  const defaultPartition = partitions.find((p) => p.bound === 'DEFAULT')
  if (!defaultPartition) add('audit default partition', ['audit_logs has no DEFAULT partition'], '')
  else {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from (select 1 from ${sql('public')}.${sql(defaultPartition.name)} limit 1001) x`
    const n = row?.n ?? 0
    add(
      'audit default partition',
      n > 0
        ? [
            `${defaultPartition.name} holds ${n > 1000 ? 'more than 1000' : n} row(s): their months have no partition (run: callsheet-db partitions ensure --from <month>)`,
          ]
        : [],
      `${defaultPartition.name} is empty`,
    )
  }

  // Invalid indexes (a failed CREATE INDEX CONCURRENTLY leaves one behind).
  const invalid = await sql<{ table: string; index: string }[]>`
    select c.relname as table, ic.relname as index from pg_index i
    join pg_class c on c.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid
    join pg_namespace n on n.oid = c.relnamespace
    where not i.indisvalid and n.nspname not in ('pg_catalog', 'information_schema')
    order by 1, 2`
  add(
    'indexes',
    invalid.map((i) => `index ${i.index} on ${i.table} is invalid`),
    'no invalid index',
  )

  if (predicate === CITUS_TENANT_PREDICATE) checks.push(...(await citusFindings(sql)))
  checks.push(...(await appTableChecks(cliQuery(sql), appRole))) // apps' own tenant tables (migration 0018)

  // Replicas.
  for (const url of options.replicas ?? []) checks.push(await checkReplica(sql, url, options.maxLagMs))

  return { ok: checks.every((c) => c.ok), checks }
}

async function checkReplica(primary: CliSql, url: string, maxLagMs: number | undefined): Promise<Check> {
  const name = `replica ${redactUrl(url)}`
  let replica: CliSql
  try {
    replica = await connect(url, { connectTimeoutSeconds: 5 })
  } catch (error) {
    return { name, ok: false, detail: errorText(error) }
  }
  try {
    const [state] = await replica<{ recovery: boolean; lsn: string | null; lag_ms: number | null }[]>`
      select pg_is_in_recovery() as recovery, pg_last_wal_replay_lsn()::text as lsn,
             case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
                  else (extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000)::float8 end as lag_ms`
    if (!state?.recovery) return { name, ok: false, detail: 'reachable but not in recovery: it is not a replica' }
    let lagBytes: number | undefined
    if (state.lsn !== null) {
      const [diff] = await primary<{ bytes: string | null }[]>`
        select pg_wal_lsn_diff(pg_current_wal_lsn(), ${state.lsn}::pg_lsn)::text as bytes`
      if (diff?.bytes != null) lagBytes = Math.max(0, Number(diff.bytes))
    }
    const lagMs = state.lag_ms === null ? undefined : Math.max(0, Math.round(state.lag_ms))
    const detail = `in recovery, replay lag ${lagMs === undefined ? 'unknown' : `${lagMs} ms`}${lagBytes === undefined ? '' : ` / ${lagBytes} bytes`}`
    if (maxLagMs !== undefined && (lagMs === undefined || lagMs > maxLagMs))
      return { name, ok: false, detail: `${detail} (over --max-lag ${maxLagMs} ms)` }
    return { name, ok: true, detail }
  } catch (error) {
    return { name, ok: false, detail: errorText(error) }
  } finally {
    await replica.end({ timeout: 5 }).catch(() => undefined)
  }
}

async function checkRuntimeLogins(sql: CliSql, appRole: string, named: string | undefined): Promise<Check[]> {
  let logins: string[]
  if (named !== undefined) logins = [named]
  else {
    const members = await sql<{ login: string }[]>`
      select r.rolname::text as login from pg_auth_members m
      join pg_roles r on r.oid = m.member join pg_roles a on a.oid = m.roleid
      where a.rolname = ${appRole} and r.rolcanlogin
        and r.oid not in (select c.relowner from pg_class c join pg_namespace n on n.oid = c.relnamespace
                          where n.nspname = 'public' and c.relname = any(${[...TENANT_TABLE_NAMES]}))
      order by 1`
    logins = members.map((m) => m.login)
    if (logins.length === 0)
      return [
        {
          name: 'runtime login',
          ok: false,
          detail: `no login other than the tables' owner is a member of ${appRole}: the app would serve requests as the owner (create one: callsheet-db runtime-login <name>)`,
        },
      ]
  }
  const checks: Check[] = []
  for (const login of logins) {
    const name = `runtime login ${login}`
    const [role] = await sql<{ login: boolean; member: boolean; inherit: boolean }[]>`
      select rolcanlogin as login, pg_has_role(oid, ${appRole}, 'MEMBER') as member, rolinherit as inherit
      from pg_roles where rolname = ${login}`
    if (!role) {
      checks.push({ name, ok: false, detail: `role ${login} does not exist` })
      continue
    }
    const [privileges] = (await sql.unsafe(LOGIN_PRIVILEGES_SQL, loginPrivilegesParams(login))) as unknown as [
      LoginPrivileges,
    ]
    const problems = loginPrivilegeProblems(privileges)
    if (!role.login) problems.push(`${login} cannot log in`)
    if (!role.member) problems.push(`${login} is not a member of ${appRole}`)
    checks.push({
      name,
      ok: problems.length === 0,
      detail:
        problems.length > 0
          ? `${problems.join('; ')} (SQL injected into a tenant unit could RESET ROLE to it)`
          : `member of ${appRole}, not superuser, no BYPASSRLS or CREATEROLE, not the owner${role.inherit ? '; INHERIT (NOINHERIT leaves RESET ROLE nothing)' : ', NOINHERIT'}`,
    })
  }
  return checks
}

/**
 * Whether a function's `proconfig` pins `search_path` with `pg_temp` named last: PostgreSQL searches
 * `pg_temp` first for relations unless the path names it, so only then can no temp table shadow one.
 */
export function searchPathPinned(config: readonly string[] | null): boolean {
  const path = (config ?? []).find((c) => c.startsWith('search_path='))
  const entries =
    path
      ?.slice('search_path='.length)
      .split(',')
      .map((e) => e.trim().replace(/^"|"$/g, '')) ?? []
  return entries.length > 0 && entries.indexOf('pg_temp') === entries.length - 1
}
