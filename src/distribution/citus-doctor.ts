import type postgres from 'postgres'
import { isCallsheetDbError } from '../errors'
import { APP_ROLE } from '../schema/columns'
import { checkCluster } from './cluster-checks'
import { distributionViolations } from './citus-shape'
import { describeViolation } from './distribution-rules'

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

  // The catalog check of the Citus shape (keys, FKs, policies, triggers and their transition tables):
  // what distribute() checks before it moves a table, checked again on the distributed schema, so that a
  // later migration that breaks a rule is caught here. Row triggers need no citus.enable_unsafe_triggers at
  // run time (it is checked only when a table with triggers is distributed).
  const violations = await distributionViolations((text, params) => sql.unsafe(text, params as never[]) as never)
  add(
    'citus shape',
    violations.map((v) => describeViolation(v)),
    'no table, key, foreign key, policy or trigger Citus would refuse (rules R0–R7)',
  )
  return findings
}
