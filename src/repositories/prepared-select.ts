import {
  and,
  Column,
  eq,
  getTableColumns,
  is,
  isNull,
  Param,
  Placeholder,
  SQL,
  sql,
  type SQLWrapper,
} from 'drizzle-orm'
import { PgDialect, QueryBuilder, type PgColumn, type PgTable } from 'drizzle-orm/pg-core'
import type { PreparedRead } from '../engine/engine'
import { keysetClauses, type Keyset } from './keyset-page'
import { deletedCondition, type DeletedFilter } from './soft-delete'

const dialect = new PgDialect()

type Field = PgColumn | SQL | SQL.Aliased
interface Decoder {
  mapFromDriverValue(value: unknown): unknown
}

/** An SQL field's decoder (`mapWith`; internal in drizzle's types, read as its own mapResultRow does). */
const decoderOf = (field: SQL): Decoder => (field as unknown as { readonly decoder: Decoder }).decoder

/** Where a parameter's value comes from: a constant, or a named value (through its column's encoder). */
type Slot = { readonly constant: unknown } | { readonly name: string; readonly encode?: (value: unknown) => unknown }

/**
 * A select built once by Drizzle, with `sql.placeholder(name)` where per-call values go: its text, where
 * each parameter comes from, and a row mapper equal to Drizzle's for `fields` (null stays null, anything
 * else goes through the column's decoder). A call only fills the parameters (issue 20: Drizzle's query
 * building cost more Node CPU per findById than the driver).
 */
export class PreparedSelect<Row> {
  readonly text: string
  readonly #slots: readonly Slot[]
  readonly #keys: readonly string[]
  readonly #decoders: readonly Decoder[]

  /** `query` must select exactly `fields`, in their order (`select(fields)`). */
  constructor(query: SQLWrapper, fields: Readonly<Record<string, Field>>) {
    const built = dialect.sqlToQuery(query.getSQL())
    this.text = built.sql
    this.#slots = built.params.map((p): Slot => {
      if (is(p, Placeholder)) return { name: p.name }
      if (is(p, Param) && is(p.value, Placeholder)) {
        const { encoder } = p
        return { name: p.value.name, encode: (v) => encoder.mapToDriverValue(v) }
      }
      return { constant: p }
    })
    this.#keys = Object.keys(fields)
    // As drizzle-orm 0.45's mapResultRow picks a field's decoder.
    this.#decoders = Object.values(fields).map((f) => (is(f, Column) ? f : decoderOf(is(f, SQL) ? f : f.sql)))
  }

  /**
   * The read with `values` for the placeholders.
   * @throws Error when a placeholder has no value (a bug in the caller, not the app's input).
   */
  read(values: Readonly<Record<string, unknown>>): PreparedRead<Row[]> {
    const params = this.#slots.map((slot) => {
      if ('constant' in slot) return slot.constant
      if (!(slot.name in values)) throw new Error(`no value for placeholder ${slot.name}`)
      const value = values[slot.name]
      return slot.encode ? slot.encode(value) : value
    })
    return { text: this.text, params, map: this.#map }
  }

  readonly #map = (rows: readonly (readonly unknown[])[]): Row[] => {
    const keys = this.#keys
    const decoders = this.#decoders
    const out: Row[] = []
    for (const row of rows) {
      const mapped: Record<string, unknown> = {}
      for (let i = 0; i < keys.length; i++) {
        const value = row[i]
        mapped[keys[i] as string] = value === null ? null : (decoders[i] as Decoder).mapFromDriverValue(value)
      }
      out.push(mapped as Row)
    }
    return out
  }
}

// findById's statement per table and `deleted` filter, built once (issue 20: no query building per call).
const byIdSelects = new WeakMap<PgTable, Map<DeletedFilter, PreparedSelect<Record<string, unknown>>>>()

/** `select <every column> … where organization_id = :organizationId and id = :id [and <deleted>] limit 1`. */
export function byIdSelect(
  table: PgTable,
  columns: { readonly organizationId: PgColumn; readonly id: PgColumn; readonly deletedAt?: PgColumn },
  deleted: DeletedFilter,
): PreparedSelect<Record<string, unknown>> {
  let selects = byIdSelects.get(table)
  if (!selects) byIdSelects.set(table, (selects = new Map()))
  let select = selects.get(deleted)
  if (!select) {
    const fields = getTableColumns(table) as Record<string, PgColumn>
    const query = new QueryBuilder()
      .select(fields)
      .from(table)
      .where(
        and(
          eq(columns.organizationId, sql.placeholder('organizationId')),
          eq(columns.id, sql.placeholder('id')),
          deletedCondition(columns.deletedAt, deleted),
        ),
      )
      .limit(1)
    select = new PreparedSelect(query, fields)
    selects.set(deleted, select)
  }
  return select
}

/** A filter of a prepared page: the column, and whether it is null, any of a list, or equal to a value. */
export interface PageFilter {
  readonly key: string
  readonly column: PgColumn
  readonly kind: 'null' | 'any' | 'eq'
}

// findMany's statements per table, keyed by the shape of the call (filters, order, cursor or not, deleted).
const pageSelects = new WeakMap<PgTable, Map<string, PreparedSelect<Record<string, unknown>>>>()

/**
 * findMany's statement for one shape: `organization_id = :organizationId`, the deleted condition, each filter
 * (`= :f<i>`, `= any(:f<i>)` with one array parameter, or `is null`), the keyset (`:cursorValue`, `:cursorId`
 * when `withCursor`), the order and `limit :fetch`; the columns and the cursor's sort value.
 */
export function pageSelect(
  table: PgTable,
  columns: { readonly organizationId: PgColumn },
  deleted: SQL | undefined,
  deletedKey: DeletedFilter,
  filters: readonly PageFilter[],
  keyset: Pick<Keyset, 'sort' | 'column' | 'idColumn' | 'direction'>,
  withCursor: boolean,
): PreparedSelect<Record<string, unknown>> {
  let selects = pageSelects.get(table)
  if (!selects) pageSelects.set(table, (selects = new Map()))
  const shape = `${deletedKey}|${keyset.sort}|${keyset.direction}|${withCursor}|${filters.map((f) => `${f.key}:${f.kind}`).join(',')}`
  let select = selects.get(shape)
  if (!select) {
    const clauses = keysetClauses(
      keyset,
      withCursor ? { value: sql.placeholder('cursorValue'), id: sql.placeholder('cursorId') } : undefined,
    )
    const conditions = filters.map((f, i) => {
      const value = sql.placeholder(`f${i}`)
      // `= any($1)` with one array parameter, not `in ($1, …, $n)`: one text whatever the list's length.
      if (f.kind === 'null') return isNull(f.column)
      if (f.kind === 'any') return sql`${f.column} = any(${value})`
      return eq(f.column, sql.param(value, f.column))
    })
    const fields = { ...getTableColumns(table), ...clauses.select }
    const query = new QueryBuilder()
      .select(fields)
      .from(table)
      .where(and(eq(columns.organizationId, sql.placeholder('organizationId')), deleted, ...conditions, clauses.after))
      .orderBy(...clauses.orderBy)
      .limit(sql.placeholder('fetch'))
    select = new PreparedSelect(query, fields)
    selects.set(shape, select)
  }
  return select
}
