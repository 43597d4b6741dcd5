import { and, eq, getTableColumns, is, Param, Placeholder, sql, type SQLWrapper } from 'drizzle-orm'
import { PgDialect, QueryBuilder, type PgColumn, type PgTable } from 'drizzle-orm/pg-core'
import type { PreparedRead } from '../engine/engine'
import { deletedCondition, type DeletedFilter } from './soft-delete'

const dialect = new PgDialect()

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
  readonly #columns: readonly PgColumn[]

  /** `query` must select exactly `fields`, in their order (`select(fields)`). */
  constructor(query: SQLWrapper, fields: Readonly<Record<string, PgColumn>>) {
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
    this.#columns = Object.values(fields)
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
    const columns = this.#columns
    const out: Row[] = []
    for (const row of rows) {
      const mapped: Record<string, unknown> = {}
      for (let i = 0; i < keys.length; i++) {
        const value = row[i]
        mapped[keys[i] as string] = value === null ? null : (columns[i] as PgColumn).mapFromDriverValue(value)
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
