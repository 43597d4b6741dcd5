import { sql, type SQL } from 'drizzle-orm'
import { InvalidStateError, ValidationError, isCallsheetDbError, mapDatabaseError } from '../errors'
import { rowsOf } from '../support/rows'
import { LIBRARY_TABLE_NAMES } from '../schema/table-names'
import { appTableNames } from '../schema/app-tables'
import type { IndexUsage, Monitoring, MonitoringSource } from './monitoring'

const PG_STAT_STATEMENTS_MISSING =
  'pg_stat_statements is not installed: add it to shared_preload_libraries (restart the server) and run CREATE EXTENSION pg_stat_statements in this database'

const PG_STAT_STATEMENTS_NOT_LOADED =
  'pg_stat_statements is created in this database but not loaded: add it to shared_preload_libraries and restart the server'

const num = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value))

const tableList = (names: readonly string[]): SQL =>
  sql`array[${sql.join(
    names.map((name) => sql`${name}`),
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

  // The library's tables and the app tables registered with callsheet_register_tenant_table (read from the
  // registry when this connection may, as the owner; see appTableNames for a runtime login's fallback).
  async function tables(): Promise<SQL> {
    return tableList([...LIBRARY_TABLE_NAMES, ...(await appTableNames((text) => query(sql.raw(text))))])
  }

  async function indexUsage(): Promise<IndexUsage[]> {
    const names = await tables()
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
        where t.relname = any(${names}) and t.relkind in ('r', 'p') and pg_table_is_visible(t.oid)
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
      const names = await tables()
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
          where t.relname = any(${names}) and t.relkind in ('r', 'p') and pg_table_is_visible(t.oid)
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

    pool() {
      return Promise.resolve({ ...source.pool() })
    },
  }
}
