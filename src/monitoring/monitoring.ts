import type { Db } from '../engine/engine'
import type { ReplicaStats } from '../routing/routing-stats'

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

/** What `createMonitoring` needs of a database. */
export interface MonitoringSource {
  readonly kind: 'postgres' | 'pglite'
  /** Drizzle over the connecting role on the primary. */
  readonly db: () => Db
  readonly pool: () => PoolStats
  readonly replicas: () => readonly ReplicaStats[]
  readonly measureReplicaLag: () => Promise<void>
}
