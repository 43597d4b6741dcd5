import postgres from 'postgres'
import { isPGlite } from '../engine/pglite/is-pglite'
import { InvalidConfigurationError, MigrationError, isCallsheetDbError } from '../errors'
import { checkCluster, type ClusterFacts } from './cluster-checks'
import {
  appRoleLogin,
  auditPartitions,
  checkMigrationsCurrent,
  leakproofSimilarity,
  policies,
  proofOnWorkers,
  refuseUndistributable,
  type Conn,
  type DistributionStep,
} from './distribute-steps'

/** Where {@link distribute} runs: the owner's (superuser's) URL of the Citus coordinator, or a postgres.js client on it. */
export type DistributionTarget = string | postgres.Sql

/** Options of {@link distribute}. */
export interface DistributeOptions {
  /** receives one line per step (default: discarded) */
  log?: (line: string) => void
}

export type { DistributionStep, DistributionStepName } from './distribute-steps'

/** What {@link distribute} did, step by step. */
export interface DistributionReport {
  /** Whether any step changed the database (false on a second run). */
  readonly changed: boolean
  readonly steps: readonly DistributionStep[]
  /** What an operator still has to do by hand (the `manual` steps' details). */
  readonly manual: readonly string[]
}

/** Tables copied whole to every node: `organizations` (tenant tables reference it) and the proof keys (`callsheet_tenant()` runs on workers). */
export const REFERENCE_TABLES = ['public.organizations', 'callsheet_private.tenant_keys'] as const
/** Tables sharded by `organization_id`, colocated with the first: the order create_distributed_table needs. */
export const DISTRIBUTED_TABLES = [
  'users',
  'departments',
  'productions',
  'uploads',
  'contacts',
  'api_keys',
  'audit_logs',
] as const
const COLOCATE_WITH = DISTRIBUTED_TABLES[0]

/**
 * Distributes the migrated schema over a Citus cluster: checks the cluster, lets the app role log in
 * (Citus opens worker connections as it), puts the policies into the form Citus accepts, makes
 * `organizations` and the proof keys reference tables and shards the tenant tables by
 * `organization_id`, colocated; marks `similarity_op` LEAKPROOF on every node and checks the audit
 * partition upkeep. Idempotent: a second run changes nothing (`report.changed === false`).
 *
 * Run it as a superuser on the coordinator, after {@link migrate} (same secret) and before serving.
 * `callsheet_app` becomes LOGIN: it is RLS-bound and needs a tenant proof for every row, but restrict it
 * in pg_hba.conf of every worker to the coordinator's hosts, and give it no password.
 *
 * @throws InvalidConfigurationError when the target is not a Citus coordinator with an active worker, or
 *   the migrations are not current ("distribute() needs a Citus coordinator: …").
 * @throws MigrationError when a step fails; the table distribution runs in one transaction.
 *
 * @example
 * ```ts
 * await migrate(process.env.DATABASE_ADMIN_URL)
 * const report = await distribute(process.env.DATABASE_ADMIN_URL)
 * for (const line of report.manual) console.warn(line)
 * ```
 */
export async function distribute(
  target?: DistributionTarget,
  options: DistributeOptions = {},
): Promise<DistributionReport> {
  const log = options.log ?? (() => {})
  const resolved = target ?? process.env.DATABASE_ADMIN_URL
  if (isPGlite(resolved))
    throw new InvalidConfigurationError('distribute() needs a Citus coordinator: PGlite is a single local database')
  if (resolved === undefined || resolved === '')
    throw new InvalidConfigurationError(
      "distribute() needs a Citus coordinator: pass the owner's URL or set DATABASE_ADMIN_URL",
    )
  // One session: the settings below are session settings.
  const owned = typeof resolved === 'string' ? postgres(resolved, { max: 1, onnotice: () => {} }) : undefined
  const sql = owned ?? (resolved as postgres.Sql)
  const conn = await sql.reserve()
  try {
    const steps: DistributionStep[] = []
    const step = (s: DistributionStep): void => {
      steps.push(s)
      log(`${s.step}: ${s.status}: ${s.detail}`)
    }
    const facts = await checkCluster(conn)
    await checkMigrationsCurrent(conn)
    step({ step: 'cluster', status: 'already', detail: describeCluster(facts) })
    await conn`set citus.shard_replication_factor = 1`
    // Tables with triggers (updated_at, audit) can only be distributed with this on; see docs/citus.md.
    await conn`set citus.enable_unsafe_triggers = on`
    await conn`set citus.multi_shard_modify_mode = 'sequential'`

    step(await appRoleLogin(conn))
    // One transaction: a refusal part-way leaves policies, keys and placement as they were.
    await conn`begin`
    try {
      const policiesStep = await policies(conn)
      await refuseUndistributable(conn)
      const proofStep = await proofOnWorkers(conn)
      const tableSteps = await distributeTables(conn)
      await conn`commit`
      for (const s of [policiesStep, proofStep, ...tableSteps]) step(s)
    } catch (error) {
      await conn`rollback`.catch(() => undefined)
      throw error
    }
    step(await leakproofSimilarity(conn, facts))
    step(await auditPartitions(conn))
    return {
      changed: steps.some((s) => s.status === 'done'),
      steps,
      manual: steps.filter((s) => s.status === 'manual').map((s) => s.detail),
    }
  } catch (error) {
    if (isCallsheetDbError(error, 'INVALID_CONFIGURATION')) throw error
    const pg = error as { message?: unknown; detail?: unknown; hint?: unknown }
    const detail = [pg.message, pg.detail, pg.hint].filter((x) => typeof x === 'string' && x !== '').join(' — ')
    throw new MigrationError(`distribute() failed: ${detail || String(error)}`, { cause: error })
  } finally {
    // A caller's client gets its connection back as it lent it.
    for (const name of SESSION_SETTINGS) await conn.unsafe(`reset ${name}`).catch(() => undefined)
    conn.release()
    await owned?.end({ timeout: 5 })
  }
}

const SESSION_SETTINGS = [
  'citus.shard_replication_factor',
  'citus.enable_unsafe_triggers',
  'citus.multi_shard_modify_mode',
] as const

function describeCluster(facts: ClusterFacts): string {
  return (
    `Citus ${facts.citusVersion} coordinator with ${facts.workers} active worker(s); ` +
    `shard_replication_factor ${facts.replicationFactor}${facts.replicationFactor === '1' ? '' : ' (1 for this run)'}; migrations current`
  )
}

interface Placement {
  table: string
  method: string | null
  column: string | null
  colocation: number | null
}

async function placements(conn: Conn): Promise<Map<string, Placement>> {
  const names = [...REFERENCE_TABLES, ...DISTRIBUTED_TABLES.map((t) => `public.${t}`)]
  const rows = await conn<Placement[]>`
    select t.name as table, p.partmethod::text as method,
           case when p.partmethod = 'h' then column_to_column_name(p.logicalrelid, p.partkey) end as column,
           p.colocationid as colocation
      from unnest(${names}::text[]) as t(name)
      left join pg_dist_partition p on p.logicalrelid = to_regclass(t.name)`
  return new Map(rows.map((row) => [row.table, row]))
}

// A reference table: partmethod 'n' with replication model 't' (a citus local table is 'n'/'s').
async function isReference(conn: Conn, table: string): Promise<boolean> {
  const [row] = await conn<{ ok: boolean }[]>`
    select exists (select 1 from pg_dist_partition where logicalrelid = to_regclass(${table})
                   and partmethod = 'n' and repmodel = 't') as ok`
  return row?.ok === true
}

async function distributeTables(conn: Conn): Promise<[DistributionStep, DistributionStep]> {
  const before = await placements(conn)
  const wrongKey = [...before.values()].filter((p) => p.method === 'h' && p.column !== 'organization_id')
  if (wrongKey.length > 0)
    throw new InvalidConfigurationError(
      `distribute() needs a Citus coordinator whose tenant tables are unsharded or sharded by organization_id: ${wrongKey.map((p) => `${p.table} by ${p.column}`).join(', ')}`,
    )
  const referencesToDo: string[] = []
  for (const table of REFERENCE_TABLES) if (!(await isReference(conn, table))) referencesToDo.push(table)
  const tablesToDo = DISTRIBUTED_TABLES.filter((t) => before.get(`public.${t}`)?.method !== 'h')
  if (referencesToDo.length > 0 || tablesToDo.length > 0) {
    // Citus refuses a foreign key from a distributed table to a not-yet-distributed one (and converts
    // local tables linked to a reference table into citus local tables, which cannot be colocated):
    // the tenant → tenant composite keys go first and come back once every table is distributed.
    const fks = await conn<{ table: string; name: string; definition: string }[]>`
      select conrelid::regclass::text as table, conname as name, pg_get_constraintdef(oid) as definition
        from pg_constraint
       where contype = 'f' and conparentid = 0
         and conrelid::regclass::text = any(${DISTRIBUTED_TABLES})
         and confrelid::regclass::text = any(${DISTRIBUTED_TABLES})
       order by 1, 2`
    for (const fk of fks) await conn.unsafe(`alter table ${fk.table} drop constraint ${quote(fk.name)}`)
    for (const table of referencesToDo) await conn`select create_reference_table(${table})`
    for (const table of tablesToDo) {
      if (table === COLOCATE_WITH) await conn`select create_distributed_table(${table}, 'organization_id')`
      else await conn`select create_distributed_table(${table}, 'organization_id', colocate_with => ${COLOCATE_WITH})`
    }
    for (const fk of fks) await conn.unsafe(`alter table ${fk.table} add constraint ${quote(fk.name)} ${fk.definition}`)
  }
  const after = await placements(conn)
  const groups = new Set(DISTRIBUTED_TABLES.map((t) => after.get(`public.${t}`)?.colocation))
  if (groups.size !== 1) throw new Error(`tenant tables ended up in ${groups.size} colocation groups`)
  return [
    referencesToDo.length === 0
      ? { step: 'reference-tables', status: 'already', detail: `${REFERENCE_TABLES.join(', ')} are reference tables` }
      : { step: 'reference-tables', status: 'done', detail: `made reference tables: ${referencesToDo.join(', ')}` },
    tablesToDo.length === 0
      ? {
          step: 'distributed-tables',
          status: 'already',
          detail: `${DISTRIBUTED_TABLES.length} tenant tables distributed by organization_id, colocated`,
        }
      : {
          step: 'distributed-tables',
          status: 'done',
          detail: `distributed by organization_id, colocated with ${COLOCATE_WITH}: ${tablesToDo.join(', ')}`,
        },
  ]
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
