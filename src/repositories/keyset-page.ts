import { asc, desc, sql, type SQL } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { decodeCursor, encodeCursor, type SortDirection } from '../support/keyset-cursor'
import type { DeletedFilter, FindOptions } from './soft-delete'

/** Options of `findMany`. */
export interface FindManyOptions<
  TFilter,
  TSort extends string,
  D extends DeletedFilter = DeletedFilter,
> extends FindOptions<D> {
  /** Equality filters (an array means any of) on the repository's filterable columns. */
  readonly where?: TFilter
  /** A column of the repository's sort allow-list. */
  readonly orderBy?: TSort
  /** @default 'asc' */
  readonly direction?: SortDirection
  /**
   * Page size, 1–1000.
   * @default 50
   */
  readonly limit?: number
  /** The `nextCursor` of the previous page; must be used with the same `orderBy` and `direction`. */
  readonly cursor?: string
}

/** One page of a `findMany` (or of an audit `history`). */
export interface Page<TRow> {
  readonly rows: TRow[]
  /** Pass as `cursor` for the next page; `null` on the last page. */
  readonly nextCursor: string | null
}

/** One keyset: `(column, id)` in one direction, a page size, and where the page starts. */
export interface Keyset {
  /** The sort key's name, as the cursor records it. */
  readonly sort: string
  readonly column: PgColumn
  readonly idColumn: PgColumn
  readonly direction: SortDirection
  /** Already checked (support/limits.ts). */
  readonly limit: number
  /** The previous page's `nextCursor`, unchecked. */
  readonly cursor: unknown
}

const CURSOR_KEY = '__cursor'

/**
 * What a keyset page query adds: the condition after the cursor (none on the first page), the order,
 * the row count to fetch (one more than the page, to know whether another follows), and the selected
 * sort value as PostgreSQL prints it — a JS Date would drop the microseconds of a timestamptz and page
 * over rows twice.
 * @throws ValidationError on a cursor that is not one this library issued, or of another ordering.
 */
export function keysetQuery(keyset: Keyset): KeysetClauses & { readonly fetch: number } {
  return { ...keysetClauses(keyset, keysetPosition(keyset)), fetch: keyset.limit + 1 }
}

/** What {@link keysetQuery} adds, for a position given as values or as placeholders (a prepared page). */
export interface KeysetClauses {
  readonly after: SQL | undefined
  readonly orderBy: SQL[]
  readonly select: { readonly [CURSOR_KEY]: SQL.Aliased<string> }
}

/**
 * Where the page starts: the cursor's sort value and id, or undefined on the first page.
 * @throws ValidationError on a cursor that is not one this library issued, or of another ordering.
 */
export function keysetPosition(keyset: Keyset): { readonly value: string; readonly id: string } | undefined {
  if (keyset.cursor === undefined) return undefined
  const sqlType = keyset.column.getSQLType()
  return decodeCursor(keyset.cursor, { sort: keyset.sort, direction: keyset.direction, sqlType })
}

/** The clauses of {@link keysetQuery} after `position` (values, or placeholders of a prepared page). */
export function keysetClauses(
  keyset: Pick<Keyset, 'column' | 'idColumn' | 'direction'>,
  position: { readonly value: unknown; readonly id: unknown } | undefined,
): KeysetClauses {
  const { column, idColumn, direction } = keyset
  let after: SQL | undefined
  if (position !== undefined) {
    // The cast names the column's own SQL type (from our schema, never from input).
    const sqlType = column.getSQLType()
    const op = direction === 'asc' ? sql`>` : sql`<`
    after = sql`(${column}, ${idColumn}) ${op} (cast(${position.value}::text as ${sql.raw(sqlType)}), ${position.id}::uuid)`
  }
  const orderBy = direction === 'asc' ? [asc(column), asc(idColumn)] : [desc(column), desc(idColumn)]
  return { after, orderBy, select: { [CURSOR_KEY]: sql<string>`(${column})::text`.as(CURSOR_KEY) } }
}

/** The page of rows a {@link keysetQuery} fetched: at most `limit`, and the cursor of the next page. */
export function keysetPage<R extends { id: string }>(keyset: Keyset, fetched: readonly unknown[]): Page<R> {
  const rows = fetched.slice(0, keyset.limit) as (R & { [CURSOR_KEY]?: string })[]
  const last = rows.at(-1)
  const nextCursor =
    fetched.length > keyset.limit && last
      ? encodeCursor({ sort: keyset.sort, direction: keyset.direction, value: String(last[CURSOR_KEY]), id: last.id })
      : null
  for (const row of rows) delete row[CURSOR_KEY]
  return { rows, nextCursor }
}
