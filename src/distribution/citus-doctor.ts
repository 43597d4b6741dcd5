import type postgres from 'postgres'
import { isCallsheetDbError } from '../errors'
import { APP_ROLE } from '../schema/columns'
import { checkCluster } from './cluster-checks'

export { hasCitus } from './cluster-checks'

/** The tenant predicate of a policy on a Citus coordinator, as pg_get_expr prints it (lower-cased). */
export const CITUS_TENANT_PREDICATE = '(organization_id = callsheet_tenant())'
import { DISTRIBUTED_TABLES, REFERENCE_TABLES } from './distribute'

/** One doctor finding about the Citus distribution (same shape as the doctor's checks). */
export interface CitusFinding {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

const LIBRARY_TABLES = [...REFERENCE_TABLES, ...DISTRIBUTED_TABLES.map((t) => `public.${t}`)]
const DISTRIBUTE_HINT = 'run callsheet-db distribute (or distribute(url)) on the coordinator'

/**
 * The doctor's checks on a Citus coordinator: the cluster, how every library table is placed, the app
 * role's login, the settings propagation to workers, triggers and policies Citus cannot run.
 */
export async function citusFindings(sql: postgres.Sql): Promise<CitusFinding[]> {
  const findings: CitusFinding[] = []
  const add = (name: string, problems: string[], okDetail: string): void => {
    findings.push({ name, ok: problems.length === 0, detail: problems.length === 0 ? okDetail : problems.join('; ') })
  }
  try {
    const facts = await checkCluster(sql)
    add('citus cluster', [], `Citus ${facts.citusVersion} coordinator, ${facts.workers} active worker(s)`)
  } catch (error) {
    if (!isCallsheetDbError(error, 'INVALID_CONFIGURATION')) throw error
    add('citus cluster', [error.message], '')
    return findings
  }

  const placed = await sql<
    {
      table: string
      method: string | null
      repmodel: string | null
      column: string | null
      colocation: number | null
    }[]
  >`
    select t.name as table, p.partmethod::text as method, p.repmodel::text as repmodel,
           case when p.partmethod = 'h' then column_to_column_name(p.logicalrelid, p.partkey) end as column,
           p.colocationid as colocation
      from unnest(${LIBRARY_TABLES}::text[]) as t(name)
      left join pg_dist_partition p on p.logicalrelid = to_regclass(t.name)`
  const byName = new Map(placed.map((p) => [p.table, p]))
  const tableProblems: string[] = []
  for (const table of DISTRIBUTED_TABLES) {
    const p = byName.get(`public.${table}`)
    if (p?.method !== 'h') tableProblems.push(`${table} is not distributed`)
    else if (p.column !== 'organization_id')
      tableProblems.push(`${table} is distributed by ${p.column}, not organization_id`)
  }
  const groups = new Set(DISTRIBUTED_TABLES.map((t) => byName.get(`public.${t}`)?.colocation))
  if (tableProblems.length === 0 && groups.size !== 1)
    tableProblems.push(`the tenant tables are in ${groups.size} colocation groups, not one`)
  if (tableProblems.length > 0) tableProblems.push(DISTRIBUTE_HINT)
  add('citus tenant tables', tableProblems, `${DISTRIBUTED_TABLES.length} distributed by organization_id, colocated`)
  const notReference = REFERENCE_TABLES.filter((t) => {
    const p = byName.get(t)
    return !(p?.method === 'n' && p.repmodel === 't')
  })
  add(
    'citus reference tables',
    notReference.length === 0 ? [] : [`not reference tables: ${notReference.join(', ')}; ${DISTRIBUTE_HINT}`],
    `${REFERENCE_TABLES.join(', ')} are reference tables`,
  )

  const [role] = await sql<{ login: boolean }[]>`select rolcanlogin as login from pg_roles where rolname = ${APP_ROLE}`
  add(
    'citus app role login',
    role?.login === true
      ? []
      : [`${APP_ROLE} cannot log in: Citus opens worker connections as it (${DISTRIBUTE_HINT})`],
    `${APP_ROLE} can log in (allow it only from the coordinator in the workers' pg_hba.conf)`,
  )

  // Tenant settings reach the workers only when citus.propagate_set_commands is 'local' where they are set:
  // as a server/database/role default, or set by the library's settings function itself.
  const [propagate] = await sql<{ setting: string; inFunction: boolean }[]>`
    select current_setting('citus.propagate_set_commands') as setting,
           exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                   where n.nspname = 'public' and p.proname like 'callsheet%'
                     and p.prosrc ilike '%propagate_set_commands%') as "inFunction"`
  add(
    'citus settings propagation',
    propagate?.setting === 'local' || propagate?.inFunction === true
      ? []
      : [
          "citus.propagate_set_commands is 'none' and no library function sets it: tenant settings do not reach the " +
            'workers, so every tenant read there returns nothing (upgrade and migrate)',
        ],
    propagate?.inFunction === true
      ? "the library's settings function sets citus.propagate_set_commands = 'local'"
      : "citus.propagate_set_commands = 'local' by default",
  )

  // Row triggers fire on the shards without citus.enable_unsafe_triggers (it is only checked when a table
  // with triggers is distributed, which distribute() does with it on); statement triggers with
  // transition tables fail there ("executor could not find named tuplestore").
  const transition = await sql<{ trigger: string; table: string }[]>`
    select t.tgname as trigger, t.tgrelid::regclass::text as table from pg_trigger t
     where not t.tgisinternal and t.tgparentid = 0 and (t.tgoldtable is not null or t.tgnewtable is not null)
       and (t.tgrelid = any (select logicalrelid from pg_dist_partition)
            or t.tgrelid = any (select to_regclass(n) from unnest(${[...LIBRARY_TABLES]}::text[]) as n))
     order by 2, 1`
  add(
    'citus triggers',
    transition.length === 0
      ? []
      : [
          `triggers with transition tables, which Citus cannot run on shards: ${transition.map((t) => `${t.table}.${t.trigger}`).join(', ')}`,
        ],
    'no trigger on a distributed table uses transition tables (row triggers run on the shards)',
  )

  const subqueries = await sql<{ table: string; name: string }[]>`
    select tablename as table, policyname as name from pg_policies
     where schemaname = 'public' and (qual ~* '\\mselect\\M' or with_check ~* '\\mselect\\M')
     order by 1, 2`
  add(
    'citus policies',
    subqueries.length === 0
      ? []
      : [
          `policies with a subquery, which Citus refuses: ${subqueries.map((p) => `${p.table}.${p.name}`).join(', ')}; ${DISTRIBUTE_HINT}`,
        ],
    'no policy has a subquery',
  )
  return findings
}
