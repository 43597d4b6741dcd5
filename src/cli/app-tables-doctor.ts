import type postgres from 'postgres'
import type { CliSql } from './connection'
import { APP_TABLE_REGISTRY, REGISTRY_READABLE_SQL } from '../schema/app-tables'
import { LIBRARY_TABLE_NAMES } from '../schema/table-names'

/** One doctor check (the shape of doctor.ts's). */
export interface AppTableCheck {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

/** Runs one statement with positional parameters: a CLI connection, or PGlite in tests. */
export type DoctorQuery = <T>(text: string, params: unknown[]) => Promise<T[]>

/** The CLI's connection as a {@link DoctorQuery}. */
export function cliQuery(sql: CliSql): DoctorQuery {
  return async <T>(text: string, params: unknown[]) =>
    (await sql.unsafe(text, params as postgres.ParameterOrJSON<never>[])) as unknown as T[]
}

/** The triggers callsheet_register_tenant_table makes, by the suffix of their name (`<table>_<suffix>`). */
const TRIGGERS = ['set_updated_at', 'audit_insert', 'audit_update', 'audit_delete'] as const
const REQUIRED_GRANTS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const
// TRUNCATE ignores row-level security; TRIGGER and REFERENCES are no business of the app role.
const FORBIDDEN_GRANTS = ['TRUNCATE', 'TRIGGER', 'REFERENCES'] as const

// Every registered table's facts, each compared with the library's own: the policy with contacts' (both
// printed by pg_get_expr the same way, whatever the text they were created with), each trigger with
// contacts' trigger of the same suffix (timing, events, level, function, transition tables).
// $1: the app role, $2: the trigger suffixes, $3: required grants, $4: forbidden grants.
const FACTS_SQL = `
  with reg as (
    select t.table_schema as schema, t.table_name as name, to_regclass(format('%I.%I', t.table_schema, t.table_name)) as rel
    from ${APP_TABLE_REGISTRY} t
  ),
  ours as (
    select pg_get_expr(p.polqual, p.polrelid) as qual, pg_get_expr(p.polwithcheck, p.polrelid) as withcheck
    from pg_policy p where p.polrelid = to_regclass('public.contacts') and p.polname = 'tenant_isolation'
  ),
  role as (select exists (select 1 from pg_roles where rolname = $1) as present)
  select reg.schema, reg.name, reg.rel is not null as exists,
         coalesce(c.relrowsecurity, false) as rls, coalesce(c.relforcerowsecurity, false) as force,
         exists (select 1 from pg_policy p where p.polrelid = reg.rel and p.polname = 'tenant_isolation') as has_policy,
         exists (select 1 from pg_policy p, ours
                 where p.polrelid = reg.rel and p.polname = 'tenant_isolation' and p.polpermissive and p.polcmd = '*'
                   and p.polroles = array[0::oid] and pg_get_expr(p.polqual, p.polrelid) = ours.qual
                   and pg_get_expr(p.polwithcheck, p.polrelid) = ours.withcheck) as policy_ok,
         array(select p.polname::text from pg_policy p
               where p.polrelid = reg.rel and p.polname <> 'tenant_isolation' order by 1) as other_policies,
         array(select k.suffix from unnest($2::text[]) as k(suffix)
               where not exists (
                 select 1 from pg_trigger t, pg_trigger m
                 where t.tgrelid = reg.rel and t.tgname = reg.name || '_' || k.suffix
                   and m.tgrelid = to_regclass('public.contacts') and m.tgname = 'contacts_' || k.suffix
                   and t.tgenabled in ('O', 'A') and t.tgtype = m.tgtype and t.tgfoid = m.tgfoid
                   and t.tgoldtable is not distinct from m.tgoldtable and t.tgnewtable is not distinct from m.tgnewtable
                   and t.tgnargs = 1 and t.tgargs = convert_to(reg.name, 'UTF8') || decode('00', 'hex'))
               order by 1) as bad_triggers,
         case when reg.rel is null or not role.present then array[]::text[]
              else array(select g from unnest($3::text[]) g where not has_table_privilege($1, reg.rel, g)) end as missing_grants,
         case when reg.rel is null or not role.present then array[]::text[]
              else array(select g from unnest($4::text[]) g where has_table_privilege($1, reg.rel, g)) end as extra_grants,
         case when reg.rel is null or not role.present then false
              else pg_has_role($1, c.relowner, 'USAGE') end as app_owns,
         exists (select 1 from pg_constraint k
                 join pg_attribute o on o.attrelid = k.conrelid and o.attname = 'organization_id'
                 join pg_attribute i on i.attrelid = k.conrelid and i.attname = 'id'
                 where k.conrelid = reg.rel and k.contype = 'p' and k.conkey[1] = o.attnum and i.attnum = any (k.conkey)) as pk_ok
  from reg cross join role left join pg_class c on c.oid = reg.rel
  order by 1, 2`

// Tables in public with an organization_id that are neither the library's nor registered. $1: the library's.
// The library's audit partitions count as its own, attached or detached (retention detaches before it drops).
const UNREGISTERED_SQL = `
  select c.relname::text as name
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
    and c.relname <> all ($1::text[]) and c.relname !~ '^audit_logs_(default|[0-9]{4}_[0-9]{2})$'
    and exists (select 1 from pg_attribute a
                where a.attrelid = c.oid and a.attname = 'organization_id' and a.attnum > 0 and not a.attisdropped)
    and not exists (select 1 from ${APP_TABLE_REGISTRY} t where t.table_schema = 'public' and t.table_name = c.relname)
  order by 1`

interface Facts {
  schema: string
  name: string
  exists: boolean
  rls: boolean
  force: boolean
  has_policy: boolean
  policy_ok: boolean
  other_policies: string[]
  bad_triggers: string[]
  missing_grants: string[]
  extra_grants: string[]
  app_owns: boolean
  pk_ok: boolean
}

const quote = (text: string): string => `'${text.replace(/'/g, "''")}'`
const ident = (name: string): string => (/^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`)

/** What is wrong with one registered table (empty: nothing). */
function tableProblems(f: Facts, appRole: string): string[] {
  const problems: string[] = []
  if (!f.rls) problems.push('row-level security is not enabled')
  if (!f.force) problems.push('row-level security is not forced')
  if (!f.has_policy) problems.push('policy tenant_isolation is missing')
  else if (!f.policy_ok)
    problems.push(
      'policy tenant_isolation is not the library’s (permissive, all commands, to PUBLIC, tenant predicate): ' +
        'drop it first, registration refuses to keep it',
    )
  if (f.other_policies.length > 0)
    problems.push(
      `other policies ${f.other_policies.join(', ')} (a second permissive policy widens what a tenant sees): ` +
        'drop them first, registration refuses a table with another policy',
    )
  for (const suffix of f.bad_triggers)
    problems.push(`trigger ${f.name}_${suffix} is missing, disabled or not the library’s`)
  if (f.missing_grants.length > 0) problems.push(`${appRole} lacks ${f.missing_grants.join(', ')}`)
  if (f.extra_grants.length > 0)
    problems.push(`${appRole} holds ${f.extra_grants.join(', ')} (TRUNCATE ignores row-level security)`)
  if (f.app_owns) problems.push(`${appRole} owns it or is a member of its owner (it could turn row-level security off)`)
  if (!f.pk_ok) problems.push('its primary key is not led by organization_id with id')
  return problems
}

/**
 * The doctor's checks of apps' tenant tables: each registered table keeps every guarantee
 * `callsheet_register_tenant_table` gave it, no registered table is gone, and no table in `public` holds
 * tenant rows (an `organization_id`) without having been registered.
 */
export async function appTableChecks(query: DoctorQuery, appRole: string): Promise<AppTableCheck[]> {
  const [state] = await query<{ readable: boolean }>(REGISTRY_READABLE_SQL, [])
  if (state?.readable !== true)
    return [
      {
        name: 'app tables',
        ok: false,
        detail: `${APP_TABLE_REGISTRY} cannot be read (not migrated, or not run as the owner): app tables not checked`,
      },
    ]
  const facts = await query<Facts>(FACTS_SQL, [appRole, TRIGGERS, REQUIRED_GRANTS, FORBIDDEN_GRANTS])
  const checks: AppTableCheck[] = []
  for (const f of facts) {
    const relation = `${ident(f.schema)}.${ident(f.name)}`
    const name = `app table ${f.schema === 'public' ? f.name : relation}`
    if (!f.exists) {
      checks.push({
        name,
        ok: false,
        detail:
          `registered, but ${relation} no longer exists (if it was dropped on purpose: DELETE FROM ${APP_TABLE_REGISTRY} ` +
          `WHERE table_schema = ${quote(f.schema)} AND table_name = ${quote(f.name)})`,
      })
      continue
    }
    const problems = tableProblems(f, appRole)
    checks.push({
      name,
      ok: problems.length === 0,
      detail:
        problems.length === 0
          ? 'forced RLS, tenant_isolation only, triggers, grants, key (organization_id, id)'
          : `${problems.join('; ')} (fix: SELECT callsheet_register_tenant_table(${quote(relation)}) as the table's owner)`,
    })
  }
  const unregistered = await query<{ name: string }>(UNREGISTERED_SQL, [LIBRARY_TABLE_NAMES])
  checks.push({
    name: 'unregistered tenant tables',
    ok: unregistered.length === 0,
    detail:
      unregistered.length === 0
        ? `every table in public with organization_id is the library's or registered (${facts.length} app table(s))`
        : `tenant data without the guarantees: ${unregistered.map((u) => u.name).join(', ')} ha${unregistered.length === 1 ? 's' : 've'} ` +
          `organization_id but ${unregistered.length === 1 ? 'is' : 'are'} not registered ` +
          `(fix: ${unregistered.map((u) => `SELECT callsheet_register_tenant_table(${quote(`public.${ident(u.name)}`)})`).join('; ')})`,
  })
  return checks
}
