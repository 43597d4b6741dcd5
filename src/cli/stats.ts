import type { DatabaseStats } from '../client/create-database'
import type { CliSql } from './connection'
import { LIBRARY_TABLE_NAMES } from '../schema/table-names'
import { appTableNames } from '../schema/app-tables'

export interface TableStats {
  readonly table: string
  /** pg_total_relation_size (table, indexes, TOAST); summed over the partitions of a partitioned table. */
  readonly totalBytes: number
  /** The planner's row estimate (reltuples, or the statistics collector's live tuples before any ANALYZE). */
  readonly rowEstimate: number | null
}

export interface StatsReport {
  readonly database: { readonly name: string; readonly sizeBytes: number; readonly serverVersion: string }
  readonly tables: readonly TableStats[]
  readonly pool: DatabaseStats['pool']
  readonly routing: DatabaseStats['routing']
}

/**
 * Sizes and row estimates of `organizations`, the tenant tables, then the registered app tables (by
 * name; a login that may not read the registry gets the fallback of `appTableNames`).
 */
export async function tableStats(sql: CliSql): Promise<TableStats[]> {
  const apps = await appTableNames(async <T>(text: string) => (await sql.unsafe(text)) as unknown as T[])
  const names = [...LIBRARY_TABLE_NAMES, ...apps]
  // pg_partition_tree returns nothing for a plain table: its leaves are then the table itself.
  const rows = await sql<{ table: string; bytes: string; estimate: string | null }[]>`
    with leaves as (
      select c.relname as table, t.relid
      from pg_class c join pg_namespace n on n.oid = c.relnamespace, pg_partition_tree(c.oid) t
      where n.nspname = 'public' and c.relkind = 'p' and c.relname = any(${names}) and t.isleaf
      union all
      select c.relname, c.oid
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r' and c.relname = any(${names})
    )
    select l.table,
           coalesce(sum(pg_total_relation_size(l.relid)), 0)::bigint::text as bytes,
           case when bool_and(coalesce(k.reltuples, -1) < 0 and s.n_live_tup is null) then null
                else sum(case when k.reltuples >= 0 then k.reltuples else coalesce(s.n_live_tup, 0) end)::bigint::text
           end as estimate
    from leaves l join pg_class k on k.oid = l.relid left join pg_stat_all_tables s on s.relid = l.relid
    group by l.table`
  return names.flatMap((name) => {
    const row = rows.find((r) => r.table === name)
    return row
      ? [
          {
            table: name,
            totalBytes: Number(row.bytes),
            rowEstimate: row.estimate === null ? null : Number(row.estimate),
          },
        ]
      : []
  })
}

export async function databaseInfo(sql: CliSql): Promise<StatsReport['database']> {
  const [row] = await sql<{ name: string; bytes: string; version: string }[]>`
    select current_database() as name, pg_database_size(current_database())::text as bytes,
           current_setting('server_version') as version`
  return { name: row?.name ?? '', sizeBytes: Number(row?.bytes ?? 0), serverVersion: row?.version ?? '' }
}

/** 1536 → "1.5 kB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}
