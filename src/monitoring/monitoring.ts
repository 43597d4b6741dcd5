import { sql, type SQL } from 'drizzle-orm'
import type { Db } from '../engine/engine'
import type { ReplicaStats } from '../routing/router'
import { InvalidStateError, ValidationError, isCallsheetDbError, mapDatabaseError } from '../errors'
import { rowsOf } from '../support/rows'
import { LIBRARY_TABLE_NAMES } from '../schema/table-names'

/** Options of {@link Monitoring.slowQueries}. */
export interface SlowQueriesOptions {
  /**
   * How many statements to return, most total time first (1 to 1000).
   * @default 20
   */
  readonly limit?: number
  /**
   * Only statements whose mean execution time is at least this many milliseconds.
   * @default 0
   */
  readonly minMeanMs?: number
}

/** One normalized statement from `pg_stat_statements` (this database only). */
export interface SlowQuery {
  /** The normalized statement text (`$1` for constants); `<insufficient privilege>` for other roles' statements unless the role has `pg_read_all_stats`. */
  readonly query: string
  /** Times executed. */
  readonly calls: number
  /** Total execution time (ms) over all calls. */
  readonly totalMs: number
  /** Mean execution time (ms) per call. */
  readonly meanMs: number
  /** Rows returned or affected, over all calls. */
  readonly rows: number
}

/** One index of a library table. For a partitioned table (`audit_logs`), summed over its partitions' indexes. */
export interface IndexUsage {
  readonly table: string
  readonly index: string
  /** Index scans since the statistics were last reset (`pg_stat_all_indexes.idx_scan`). */
  readonly scans: number
  /** On-disk size in bytes. */
  readonly sizeBytes: number
  /** Backs a primary key. */
  readonly primary: boolean
  /** Enforces uniqueness (a unique index or constraint, or an exclusion constraint). */
  readonly unique: boolean
  /** Never scanned and enforces nothing: a candidate to drop (after a representative period of traffic). */
  readonly unused: boolean
}

/** Disk use of one library table, summed over its partitions for `audit_logs`. */
export interface TableSize {
  readonly table: string
  /** Heap + TOAST + indexes. */
  readonly totalBytes: number
  /** Heap + TOAST (+ free space and visibility maps), without indexes. */
  readonly tableBytes: number
  readonly indexBytes: number
  /**
   * Estimated live rows: the planner's `reltuples` once the table has been vacuumed or analyzed, else
   * the statistics system's `n_live_tup`. An estimate, never a `count(*)`.
   */
  readonly rowEstimate: number
  /** Partitions (0 for a plain table). */
  readonly partitions: number
}

/** Client connections of the server, from `pg_stat_activity`. */
export interface ConnectionStats {
  /** Client backends on the whole server (every database, every role). */
  readonly total: number
  /** Client backends connected to this database. */
  readonly currentDatabase: number
  /**
   * Client backends on the whole server by `state` (`active`, `idle`, `idle in transaction`,
   * `idle in transaction (aborted)`, `fastpath function call`, `disabled`); `unknown` counts the
   * sessions whose state this role may not see (other roles' sessions without `pg_read_all_stats`).
   */
  readonly byState: { readonly [state: string]: number }
  /** `max_connections` (1 on PGlite: one session). */
  readonly max: number
  /** `total / max`: how close the server is to refusing connections. */
  readonly ratio: number
}

/** Replay lag of one replica, measured just now. */
export interface ReplicaLag {
  /** `host:port` (or `replicas[i]`). */
  readonly name: string
  /** `down` while in backoff after a failure, `lagging` while over `routing.maxLagMs`. */
  readonly state: ReplicaStats['state']
  /** Replay lag in ms (0 when caught up; `Infinity` when it is not replaying); undefined when it did not answer. */
  readonly lagMs: number | undefined
  /** WAL bytes not yet replayed; undefined when it did not answer or is not replaying. */
  readonly lagBytes: number | undefined
  /** When the lag was measured (epoch ms); undefined when it never answered. */
  readonly measuredAt: number | undefined
}

/** The primary's pool, as in `db.stats().pool`. */
export interface PoolStats {
  /** Connections running a unit of work. */
  readonly inUse: number
  /** Units waiting for a connection. */
  readonly waiting: number
  /** `pool.max` (1 on PGlite). */
  readonly max: number
}

/**
 * Health and tuning reports from PostgreSQL's statistics views, run as the connecting role on the
 * primary (`db.monitoring`). Every method is read-only and safe to call from a health endpoint;
 * failures are library errors (`CallsheetDbError`), never raw driver errors.
 */
export interface Monitoring {
  /**
   * The statements of this database that took the most total execution time, from
   * `pg_stat_statements` (PostgreSQL 13+).
   *
   * @example
   * ```ts
   * try {
   *   for (const q of await db.monitoring.slowQueries({ limit: 10, minMeanMs: 5 })) {
   *     console.log(q.meanMs.toFixed(1), 'ms ×', q.calls, q.query)
   *   }
   * } catch (e) {
   *   if (isCallsheetDbError(e, 'INVALID_STATE')) console.warn(e.message) // extension not installed
   *   else throw e
   * }
   * ```
   * @throws InvalidStateError (code `INVALID_STATE`) when `pg_stat_statements` is not installed in this
   *   database or not loaded through `shared_preload_libraries` — always on PGlite.
   * @throws ValidationError when `limit` is not an integer from 1 to 1000 or `minMeanMs` is negative.
   */
  slowQueries(options?: SlowQueriesOptions): Promise<SlowQuery[]>
  /**
   * Every index of the library's tables with its scans and size, by table then index name.
   *
   * @example
   * ```ts
   * const usage = await db.monitoring.indexUsage()
   * const email = usage.find((i) => i.index === 'contacts_email_live_key')
   * ```
   */
  indexUsage(): Promise<IndexUsage[]>
  /**
   * The indexes of {@link indexUsage} flagged `unused`: never scanned since the statistics were
   * reset, and backing no primary key, unique or exclusion constraint.
   *
   * @example
   * ```ts
   * for (const i of await db.monitoring.unusedIndexes()) console.log(`${i.table}.${i.index}: ${i.sizeBytes} bytes, never scanned`)
   * ```
   */
  unusedIndexes(): Promise<IndexUsage[]>
  /**
   * Disk use of each library table (`organizations` and the tenant tables; `audit_logs` summed over
   * its partitions), largest first.
   *
   * @example
   * ```ts
   * const [largest] = await db.monitoring.tableSizes()
   * console.log(largest?.table, largest?.totalBytes)
   * ```
   */
  tableSizes(): Promise<TableSize[]>
  /**
   * Client connections of the server against `max_connections`.
   *
   * @example
   * ```ts
   * const c = await db.monitoring.connections()
   * if (c.ratio > 0.8) alert(`${c.total}/${c.max} connections, ${c.byState['idle in transaction'] ?? 0} idle in transaction`)
   * ```
   */
  connections(): Promise<ConnectionStats>
  /**
   * Measures every replica's replay lag now and returns it; `[]` when the database has no replicas.
   *
   * @example
   * ```ts
   * for (const r of await db.monitoring.replicaLag()) metrics.gauge('replica_lag_ms', r.lagMs ?? -1, { replica: r.name })
   * ```
   */
  replicaLag(): Promise<ReplicaLag[]>
  /**
   * The primary's pool: connections in use, units waiting for one, and the maximum.
   *
   * @example
   * ```ts
   * const { inUse, waiting, max } = await db.monitoring.pool()
   * ```
   */
  pool(): Promise<PoolStats>
}

/** What {@link createMonitoring} needs of a database. */
export interface MonitoringSource {
  readonly kind: 'postgres' | 'pglite'
  /** Drizzle over the connecting role on the primary. */
  readonly db: () => Db
  readonly pool: () => PoolStats
  readonly replicas: () => readonly ReplicaStats[]
  readonly measureReplicaLag: () => Promise<void>
}

export const PG_STAT_STATEMENTS_MISSING =
  'pg_stat_statements is not installed: add it to shared_preload_libraries (restart the server) and run CREATE EXTENSION pg_stat_statements in this database'

const PG_STAT_STATEMENTS_NOT_LOADED =
  'pg_stat_statements is created in this database but not loaded: add it to shared_preload_libraries and restart the server'

const num = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value))

const tableList = (): SQL =>
  sql`array[${sql.join(
    LIBRARY_TABLE_NAMES.map((name) => sql`${name}`),
    sql`, `,
  )}]::text[]`

/** Builds `db.monitoring`. */
export function createMonitoring(source: MonitoringSource): Monitoring {
  async function query<T>(statement: SQL): Promise<T[]> {
    try {
      return rowsOf<T>(await source.db().execute(statement))
    } catch (error) {
      throw mapDatabaseError(error)
    }
  }

  async function indexUsage(): Promise<IndexUsage[]> {
    // Top-level indexes of the library's tables (visible on the search path); a partitioned index
    // (relkind I) has no statistics of its own, so scans and sizes are summed over the partitions'
    // indexes attached to it (pg_inherits, recursively).
    const rows = await query<{
      table_name: string
      index_name: string
      is_primary: boolean
      is_unique: boolean
      scans: number | string | null
      size_bytes: number | string | null
    }>(sql`
      with recursive top as (
        select t.relname::text as table_name, i.indexrelid as index_oid, i.indisprimary as is_primary,
               (i.indisunique or i.indisexclusion) as is_unique
        from pg_class t
        join pg_index i on i.indrelid = t.oid
        where t.relname = any(${tableList()}) and t.relkind in ('r', 'p') and pg_table_is_visible(t.oid)
      ),
      tree(index_oid, leaf) as (
        select index_oid, index_oid from top
        union all
        select tree.index_oid, inh.inhrelid from tree join pg_inherits inh on inh.inhparent = tree.leaf
      )
      select top.table_name, ic.relname::text as index_name, top.is_primary, top.is_unique,
             coalesce(sum(s.idx_scan), 0)::float8 as scans,
             coalesce(sum(pg_relation_size(tree.leaf)), 0)::float8 as size_bytes
      from top
      join pg_class ic on ic.oid = top.index_oid
      join tree on tree.index_oid = top.index_oid
      left join pg_stat_all_indexes s on s.indexrelid = tree.leaf
      group by top.table_name, ic.relname, top.is_primary, top.is_unique
      order by top.table_name, ic.relname`)
    return rows.map((r) => {
      const scans = num(r.scans)
      return {
        table: r.table_name,
        index: r.index_name,
        scans,
        sizeBytes: num(r.size_bytes),
        primary: r.is_primary,
        unique: r.is_unique,
        unused: scans === 0 && !r.is_primary && !r.is_unique,
      }
    })
  }

  return {
    async slowQueries(options = {}) {
      if (typeof options !== 'object' || options === null) {
        throw new ValidationError('slowQueries options must be an object', [{ path: [], message: 'not an object' }])
      }
      const limit = options.limit ?? 20
      const minMeanMs = options.minMeanMs ?? 0
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new ValidationError(`limit must be an integer from 1 to 1000, got ${String(limit)}`, [
          { path: ['limit'], message: 'out of range' },
        ])
      }
      if (typeof minMeanMs !== 'number' || !Number.isFinite(minMeanMs) || minMeanMs < 0) {
        throw new ValidationError(`minMeanMs must be a finite number ≥ 0, got ${String(minMeanMs)}`, [
          { path: ['minMeanMs'], message: 'out of range' },
        ])
      }
      if (source.kind === 'pglite')
        throw new InvalidStateError(`${PG_STAT_STATEMENTS_MISSING} (PGlite has no extension)`)
      const installed = await query<{ schema: string }>(
        sql`select n.nspname::text as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace
            where e.extname = 'pg_stat_statements'`,
      )
      const schema = installed[0]?.schema
      if (schema === undefined) throw new InvalidStateError(PG_STAT_STATEMENTS_MISSING)
      try {
        const rows = await query<{
          query: string | null
          calls: number | string
          total_ms: number | string
          mean_ms: number | string
          rows: number | string
        }>(sql`
          select s.query, s.calls::float8 as calls, s.total_exec_time::float8 as total_ms,
                 s.mean_exec_time::float8 as mean_ms, s.rows::float8 as rows
          from ${sql.identifier(schema)}.pg_stat_statements s
          where s.dbid = (select oid from pg_database where datname = current_database())
            and s.mean_exec_time >= ${minMeanMs}
          order by s.total_exec_time desc
          limit ${limit}`)
        return rows.map((r) => ({
          query: r.query ?? '<insufficient privilege>',
          calls: num(r.calls),
          totalMs: num(r.total_ms),
          meanMs: num(r.mean_ms),
          rows: num(r.rows),
        }))
      } catch (error) {
        // 55000 object_not_in_prerequisite_state: created, but the library is not preloaded.
        if (isCallsheetDbError(error, 'DATABASE_ERROR') && error.sqlState === '55000') {
          throw new InvalidStateError(PG_STAT_STATEMENTS_NOT_LOADED)
        }
        throw error
      }
    },

    indexUsage,

    async unusedIndexes() {
      return (await indexUsage()).filter((i) => i.unused)
    },

    async tableSizes() {
      const rows = await query<{
        table_name: string
        total_bytes: number | string
        table_bytes: number | string
        index_bytes: number | string
        row_estimate: number | string
        partitions: number | string
      }>(sql`
        with recursive roots as (
          select t.oid, t.relname::text as table_name
          from pg_class t
          where t.relname = any(${tableList()}) and t.relkind in ('r', 'p') and pg_table_is_visible(t.oid)
        ),
        parts(root, relid) as (
          select oid, oid from roots
          union all
          select parts.root, inh.inhrelid from parts join pg_inherits inh on inh.inhparent = parts.relid
        )
        select roots.table_name,
               sum(pg_total_relation_size(parts.relid))::float8 as total_bytes,
               sum(pg_table_size(parts.relid))::float8 as table_bytes,
               sum(pg_indexes_size(parts.relid))::float8 as index_bytes,
               sum(case when c.relkind <> 'r' then 0
                        when c.reltuples >= 0 then c.reltuples
                        else coalesce(s.n_live_tup, 0) end)::float8 as row_estimate,
               (count(*) - 1)::float8 as partitions
        from roots
        join parts on parts.root = roots.oid
        join pg_class c on c.oid = parts.relid
        left join pg_stat_all_tables s on s.relid = parts.relid
        group by roots.table_name
        order by total_bytes desc, roots.table_name`)
      return rows.map((r) => ({
        table: r.table_name,
        totalBytes: num(r.total_bytes),
        tableBytes: num(r.table_bytes),
        indexBytes: num(r.index_bytes),
        rowEstimate: Math.round(num(r.row_estimate)),
        partitions: num(r.partitions),
      }))
    },

    async connections() {
      // The setting is read in the same statement: the calling session itself is always one row.
      const rows = await query<{ state: string; here: number | string; n: number | string; max: number | string }>(sql`
        select coalesce(a.state, 'unknown') as state,
               count(*) filter (where a.datname = current_database())::float8 as here,
               count(*)::float8 as n,
               current_setting('max_connections')::float8 as max
        from pg_stat_activity a
        where a.backend_type in ('client backend', 'standalone backend')
        group by 1`)
      const byState: Record<string, number> = {}
      let total = 0
      let currentDatabase = 0
      for (const r of rows) {
        byState[r.state] = num(r.n)
        total += num(r.n)
        currentDatabase += num(r.here)
      }
      // PGlite is one session, whatever its nominal max_connections says.
      const max = source.kind === 'pglite' ? 1 : num(rows[0]?.max)
      return { total, currentDatabase, byState, max, ratio: max > 0 ? total / max : 0 }
    },

    async replicaLag() {
      await source.measureReplicaLag()
      return source.replicas().map((r) => ({
        name: r.name,
        state: r.state,
        lagMs: r.lagMs,
        lagBytes: r.lagBytes,
        measuredAt: r.lagMeasuredAt,
      }))
    },

    async pool() {
      return { ...source.pool() }
    },
  }
}
