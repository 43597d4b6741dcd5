import { getTableColumns, getTableName, sql, type SQL } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import type { UniqueViolationError } from '../../errors'
import type { Db } from '../../engine/engine'
import { primaryKeyViolation } from '../primary-key-violation'
import { unnestSelect, type NaturalKey } from './batch-insert'
import type { CreateManySettings, CreateManyTarget } from './plan'

/** What one chunk's statements wrote: the rows returned (none when counting only) and how many. */
export interface Written {
  readonly rows: Record<string, unknown>[]
  readonly count: number
}

/**
 * The statements inserting one chunk: `INSERT … SELECT … FROM unnest(…)` (batch-insert.ts) with the
 * batch's ON CONFLICT clause and RETURNING.
 */
export function chunkStatement(
  target: CreateManyTarget,
  organizationId: string,
  settings: CreateManySettings,
  countOnly: boolean,
): (db: Db, values: readonly Record<string, unknown>[]) => Promise<Written> {
  const key = target.naturalKey
  const guarded = settings.onConflict === 'error' || !key
  const tableName = getTableName(target.table)
  const tenantColumn = getTableColumns(target.table).organizationId as PgColumn
  const insertRun = async (db: Db, values: readonly Record<string, unknown>[]): Promise<Written> => {
    const insert = db.insert(target.table).select(unnestSelect(target.table, values, organizationId))
    const written = await insertConflicting(values, insert)
    // ON CONFLICT (organization_id, id) DO NOTHING, then the count: see pkeyViolation.
    if (guarded && written.count !== values.length) throw pkeyViolation(tableName)
    return written
  }
  const insertConflicting = async (
    values: readonly Record<string, unknown>[],
    insert: ReturnType<ReturnType<Db['insert']>['select']>,
  ): Promise<Written> => {
    const conflict =
      settings.onConflict === 'skip' && key
        ? insert.onConflictDoNothing({ target: [...key.columns], where: key.where })
        : settings.onConflict === 'update' && key
          ? insert.onConflictDoUpdate({
              target: [...key.columns],
              targetWhere: key.where,
              set: excludedSet(target, values, key),
            })
          : // Citus sends a plain INSERT … SELECT's rows to the shards with COPY, which PostgreSQL refuses
            // under row-level security ("COPY FROM not supported with row-level security"); with an ON
            // CONFLICT clause it inserts them with INSERT … SELECT on each shard instead. A conflict on the
            // primary key is still an error: the count below says so.
            insert.onConflictDoNothing({ target: [tenantColumn, target.idColumn] })
    if (countOnly) return { rows: [], count: affectedRows(await conflict) }
    const returned = (
      settings.returning === 'rows' ? await conflict.returning() : await conflict.returning({ id: target.idColumn })
    ) as Record<string, unknown>[]
    return { rows: returned, count: returned.length }
  }
  return async (db, values) => {
    const rows: Record<string, unknown>[] = []
    let count = 0
    for (const run of runsOf(values, settings.onConflict === 'update')) {
      const written = await insertRun(db, run)
      rows.push(...written.rows)
      count += written.count
    }
    return { rows, count }
  }
}

/**
 * An id of the batch that is already a row of this organization (or twice in the batch): the insert's
 * `ON CONFLICT (organization_id, id) DO NOTHING` skipped it, so the batch is refused as a plain INSERT would
 * refuse it, and the unit rolls back.
 */
function pkeyViolation(table: string): UniqueViolationError {
  return primaryKeyViolation(
    table,
    'an id of the batch is already a row of this organization, or appears twice in the batch',
  )
}

/**
 * ON CONFLICT DO UPDATE sets the same columns for every row of a statement: rows that supply different
 * columns go in separate statements (consecutive runs keep the input order).
 */
function runsOf(values: readonly Record<string, unknown>[], byShape: boolean): (readonly Record<string, unknown>[])[] {
  if (!byShape) return [values]
  const runs: Record<string, unknown>[][] = []
  let last = ''
  for (const v of values) {
    const shape = Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .join(',')
    if (runs.length === 0 || shape !== last) runs.push([])
    ;(runs.at(-1) as Record<string, unknown>[]).push(v)
    last = shape
  }
  return runs
}

/** `SET col = excluded.col` for every supplied column but the key, the id and the tenant. */
function excludedSet(
  target: CreateManyTarget,
  values: readonly Record<string, unknown>[],
  key: NaturalKey,
): Record<string, SQL> {
  const keyNames = new Set(key.columns.map((c) => c.name))
  const set: Record<string, SQL> = {}
  for (const [prop, column] of Object.entries(getTableColumns(target.table))) {
    if (prop === 'id' || prop === 'organizationId' || keyNames.has(column.name)) continue
    if (!values.some((v) => v[prop] !== undefined)) continue
    set[prop] = sql`excluded.${sql.identifier(column.name)}`
  }
  return set
}

/** Rows an INSERT without RETURNING wrote: postgres.js gives `count`, PGlite `affectedRows`. */
function affectedRows(result: unknown): number {
  const r = result as { count?: unknown; affectedRows?: unknown }
  const n = typeof r.count === 'number' ? r.count : r.affectedRows
  return typeof n === 'number' ? n : 0
}
