import { getTableColumns, is, sql, SQL } from 'drizzle-orm'
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core'
import { newId } from '../../unit-of-work/tenant-runtime'

/** A live-unique key a batch can conflict on (a partial unique index). */
export interface NaturalKey {
  /** Drizzle keys of the index columns, organization first. */
  readonly columns: readonly PgColumn[]
  /** The index predicate (live rows), as ON CONFLICT must repeat it. */
  readonly where: SQL
  /** The key of a validated row, or undefined when the row cannot conflict (e.g. no e-mail). */
  readonly keyOf: (row: Record<string, unknown>) => string | undefined
}

/**
 * `SELECT … FROM unnest($1::text[], $2::text[], …)` producing every column of `table`, in the order
 * drizzle's `insert().select()` lists them. One array parameter per supplied column, so the parameter
 * count stays the same for 10 rows or 100,000, far under PostgreSQL's 65,534 limit. Values travel as
 * text and are cast to each column's own type in the select list; a column no row supplies takes its
 * default.
 */
export function unnestSelect(table: PgTable, rows: readonly Record<string, unknown>[], organizationId: string): SQL {
  const select: SQL[] = []
  const arrays: SQL[] = []
  const aliases: SQL[] = []
  // The same filter drizzle applies when it lists an INSERT's columns (generated columns are left out).
  const columns = Object.entries(getTableColumns(table)).filter(
    ([, c]) => !(c as unknown as { shouldDisableInsert?: () => boolean }).shouldDisableInsert?.(),
  )
  for (const [key, column] of columns) {
    const type = sql.raw(column.getSQLType())
    if (key === 'organizationId') {
      select.push(sql`cast(${organizationId} as uuid)`)
      continue
    }
    const values = key === 'id' ? rows.map((r) => (r.id as string | undefined) ?? newId()) : rows.map((r) => r[key])
    const supplied = key === 'id' || values.some((v) => v !== undefined)
    const sqlDefault = is(column.default, SQL) ? column.default : undefined
    if (!supplied) {
      if (sqlDefault) select.push(sqlDefault)
      else if (column.default !== undefined) select.push(sql`cast(${toText(column.default, column)} as ${type})`)
      else select.push(sql`null`)
      continue
    }
    const alias = sql.raw(`c${arrays.length}`)
    const literalDefault = sqlDefault || column.default === undefined ? null : toText(column.default, column)
    arrays.push(
      sql`cast(${sql.param(values.map((v) => (v === undefined ? literalDefault : toText(v, column))))} as text[])`,
    )
    aliases.push(alias)
    const value = sql`cast(t.${alias} as ${type})`
    // Only not-null columns with an SQL default (timestamps) can be missing from some rows and not others.
    select.push(sqlDefault ? sql`coalesce(${value}, ${sqlDefault})` : value)
  }
  return sql`select ${sql.join(select, sql`, `)} from unnest(${sql.join(arrays, sql`, `)}) as t(${sql.join(aliases, sql`, `)})`
}

/** A value as PostgreSQL's text input for the column's type reads it. */
function toText(value: unknown, column: PgColumn): string | null {
  if (value === null || value === undefined) return null
  const type = column.getSQLType()
  if (type === 'jsonb' || type === 'json') return JSON.stringify(value)
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value))
    return `{${value.map((v) => (v === null ? 'NULL' : `"${String(v).replace(/(["\\])/g, '\\$1')}"`)).join(',')}}`
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}
