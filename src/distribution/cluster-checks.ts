import type postgres from 'postgres'
import { InvalidConfigurationError } from '../errors'

/** What {@link checkCluster} found on a Citus coordinator. */
export interface ClusterFacts {
  readonly citusVersion: string
  /** Active primary worker nodes. */
  readonly workers: number
  /** `citus.shard_replication_factor` as the server has it (distribute() uses 1: foreign keys need it). */
  readonly replicationFactor: string
  /** Whether the connecting role is a superuser (for `run_command_on_all_nodes` of LEAKPROOF). */
  readonly superuser: boolean
}

/** Whether the connected database has the citus extension (false on plain PostgreSQL). */
export async function hasCitus(sql: postgres.Sql | postgres.ReservedSql): Promise<boolean> {
  const [row] = await sql.unsafe<{ citus: boolean }[]>(CITUS_INSTALLED_SQL)
  return row?.citus === true
}

/** Whether this database has the citus extension (one row, column `citus`): distribute, doctor and the router ask it. */
export const CITUS_INSTALLED_SQL =
  "select exists (select 1 from pg_catalog.pg_extension where extname = 'citus') as citus"

/**
 * Checks that `sql` is connected to a Citus coordinator that can take the schema: the extension in
 * this database, this node registered as the coordinator (group 0), and at least one active worker.
 * @throws InvalidConfigurationError "distribute() needs a Citus coordinator: …" otherwise.
 */
export async function checkCluster(sql: postgres.Sql | postgres.ReservedSql): Promise<ClusterFacts> {
  const refuse = (why: string): never => {
    throw new InvalidConfigurationError(`distribute() needs a Citus coordinator: ${why}`)
  }
  const [db] = await sql<{ name: string; version: string | null; superuser: boolean }[]>`
    select current_database() as name, (select extversion from pg_extension where extname = 'citus') as version,
           (select rolsuper from pg_roles where rolname = current_user) as superuser`
  if (db?.version == null)
    return refuse(
      `the citus extension is not installed in database ${db?.name ?? '?'} ` +
        '(CREATE EXTENSION citus in it on every node, then citus_set_coordinator_host and citus_add_node on the coordinator)',
    )
  const [node] = await sql<{ local: number; registered: boolean; workers: number; factor: string }[]>`
    select (select groupid from pg_dist_local_group)::int as local,
           exists (select 1 from pg_dist_node where groupid = 0) as registered,
           (select count(*) from pg_dist_node where groupid <> 0 and isactive and noderole = 'primary')::int as workers,
           current_setting('citus.shard_replication_factor') as factor`
  if (node === undefined || node.local !== 0)
    return refuse(`this node is a worker (group ${node?.local ?? '?'}): connect to the coordinator`)
  if (!node.registered)
    return refuse("the coordinator is not registered: select citus_set_coordinator_host('<its host>', <port>)")
  if (node.workers < 1)
    return refuse("no active worker node: select citus_add_node('<worker host>', <port>) for each worker")
  return { citusVersion: db.version, workers: node.workers, replicationFactor: node.factor, superuser: db.superuser }
}
