/**
 * The steps of distribute() besides moving the tables (distribute.ts): the checks before, the role, the
 * policies, the proof lookup on workers, LEAKPROOF on every node and the audit partition upkeep.
 */
import type postgres from 'postgres'
import { InvalidConfigurationError, MigrationError } from '../errors'
import { readJournal } from '../migrations/journal'
import { MIGRATIONS_RELATION, missingMigrations } from '../migrations/migrations-table'
import { APP_ROLE } from '../schema/columns'
import { citusPolicyStatements } from './citus-policies'
import { distributionViolations } from './citus-shape'
import type { ClusterFacts } from './cluster-checks'
import { describeViolation } from './distribution-rules'

/** A reserved connection of the owner on the coordinator: distribute() runs every step on it. */
export type Conn = postgres.ReservedSql

/** The steps of distribute(), in the order they run. */
export type DistributionStepName =
  | 'cluster'
  | 'app-role-login'
  | 'policies'
  | 'proof-on-workers'
  | 'reference-tables'
  | 'distributed-tables'
  | 'leakproof-similarity'
  | 'audit-partitions'

/** What one step did: `done` (changed the database), `already` (found done), `manual` (left to an operator: see detail). */
export interface DistributionStep {
  readonly step: DistributionStepName
  readonly status: 'done' | 'already' | 'manual'
  readonly detail: string
}

export async function checkMigrationsCurrent(conn: Conn): Promise<void> {
  const [table] = await conn<{ ok: boolean }[]>`select to_regclass(${MIGRATIONS_RELATION}) is not null as ok`
  const recorded = table?.ok
    ? (await conn.unsafe<{ hash: string }[]>(`select hash from ${MIGRATIONS_RELATION}`)).map((r) => r.hash)
    : []
  const missing = missingMigrations(readJournal(), recorded).map((m) => m.tag)
  if (missing.length > 0)
    throw new InvalidConfigurationError(
      `distribute() needs the migrations applied first: ${missing.length} not applied (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}); run migrate()`,
    )
}

export async function appRoleLogin(conn: Conn): Promise<DistributionStep> {
  const [role] = await conn<
    { login: boolean }[]
  >`select rolcanlogin as login from pg_catalog.pg_roles where rolname = ${APP_ROLE}`
  if (role === undefined) throw new InvalidConfigurationError(`role ${APP_ROLE} does not exist: run migrate() first`)
  if (role.login) return { step: 'app-role-login', status: 'already', detail: `${APP_ROLE} can log in` }
  // Propagated to every worker by Citus (ALTER ROLE propagation is on by default).
  await conn.unsafe(`alter role ${APP_ROLE} login`)
  return {
    step: 'app-role-login',
    status: 'done',
    detail: `${APP_ROLE} can now log in (Citus connects to workers as it): allow it only from the coordinator's hosts in pg_hba.conf`,
  }
}

export async function policies(conn: Conn): Promise<DistributionStep> {
  const statements = await citusPolicyStatements((text, params) => conn.unsafe(text, params as never[]) as never)
  if (statements.length === 0) return { step: 'policies', status: 'already', detail: 'no policy has a subquery' }
  for (const statement of statements) await conn.unsafe(statement)
  return { step: 'policies', status: 'done', detail: `${statements.length} policies rewritten without subqueries` }
}

/**
 * The catalog check of the Citus shape (citus-shape.ts) after the policy rewrite: a table, key, FK, policy
 * or trigger Citus would refuse is named here, before any table moves, instead of as Citus's first error.
 */
export async function refuseUndistributable(conn: Conn): Promise<void> {
  const violations = await distributionViolations((text, params) => conn.unsafe(text, params as never[]) as never)
  if (violations.length === 0) return
  throw new MigrationError(
    `distribute() refused: the schema is not distributable by organization_id (${violations.length}):\n` +
      violations.map((v) => `  ${describeViolation(v)}`).join('\n'),
  )
}

/**
 * callsheet_tenant() reads the proof keys (a reference table) from inside the policy, that is from inside a
 * shard query on a worker, which Citus refuses ("cannot execute a distributed query from a query on a
 * shard") unless the function allows nested execution. The reference table has a copy on every node, so
 * the lookup stays local. Set on the coordinator: Citus propagates it (workers refuse it directly).
 */
export async function proofOnWorkers(conn: Conn): Promise<DistributionStep> {
  const [fn] = await conn<{ config: string[] | null }[]>`
    select proconfig as config from pg_catalog.pg_proc where oid = 'public.callsheet_tenant()'::regprocedure`
  if (fn?.config?.includes('citus.allow_nested_distributed_execution=on'))
    return {
      step: 'proof-on-workers',
      status: 'already',
      detail: 'callsheet_tenant() may read the proof keys on a worker',
    }
  await conn.unsafe('alter function public.callsheet_tenant() set citus.allow_nested_distributed_execution = on')
  return {
    step: 'proof-on-workers',
    status: 'done',
    detail: 'callsheet_tenant() may read the proof keys (a reference table) inside a shard query',
  }
}

const SIMILARITY_OP = 'similarity_op(text, text)'

export async function leakproofSimilarity(conn: Conn, facts: ClusterFacts): Promise<DistributionStep> {
  const statement = `ALTER FUNCTION ${SIMILARITY_OP} LEAKPROOF`
  const check = `select proleakproof from pg_proc where oid = to_regprocedure('${SIMILARITY_OP}')`
  const nodes = await conn<{ result: string; success: boolean }[]>`
    select result, success from run_command_on_all_nodes(${check})`
  if (nodes.every((n) => n.success && n.result === 't'))
    return { step: 'leakproof-similarity', status: 'already', detail: `${SIMILARITY_OP} is LEAKPROOF on every node` }
  if (!facts.superuser)
    return {
      step: 'leakproof-similarity',
      status: 'manual',
      detail: `as a superuser on the coordinator: select run_command_on_all_nodes($$${statement}$$) (tenant fuzzy search needs it for its trigram index)`,
    }
  const results = await conn<{ result: string; success: boolean }[]>`
    select result, success from run_command_on_all_nodes(${statement})`
  const failed = results.filter((r) => !r.success)
  if (failed.length > 0) throw new Error(`${statement} failed on ${failed.length} node(s): ${failed[0]?.result}`)
  return {
    step: 'leakproof-similarity',
    status: 'done',
    detail: `${SIMILARITY_OP} marked LEAKPROOF on ${results.length} nodes`,
  }
}

export async function auditPartitions(conn: Conn): Promise<DistributionStep> {
  // The upkeep migrate() runs: on the distributed parent, each new partition is distributed with it.
  const created = await conn<{ name: string }[]>`select callsheet_ensure_audit_partitions(3) as name`
  return created.length === 0
    ? {
        step: 'audit-partitions',
        status: 'already',
        detail: 'audit_logs has its partitions for this month and 3 ahead',
      }
    : { step: 'audit-partitions', status: 'done', detail: `created ${created.map((r) => r.name).join(', ')}` }
}
