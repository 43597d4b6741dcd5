import { eq, isNull, sql, type SQL } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { z } from 'zod'
import { ValidationError } from '../errors'
import { uuidSchema } from '../support/ids'
import { validate } from '../support/validate'
import type { PageFilter } from './prepared-select'

/** A filter value: one value, any of several (≤ 1000), or (for nullable columns) `null`. */
export const oneOrMany = <T extends z.ZodType>(schema: T) => z.union([schema, z.array(schema).max(1000)]).optional()
const nullableOneOrMany = <T extends z.ZodType>(schema: T) =>
  z.union([schema, z.array(schema).max(1000), z.null()]).optional()

export const idFilter = oneOrMany(uuidSchema)
export const optionalIdFilter = nullableOneOrMany(uuidSchema)
export const textFilter = (max: number) => oneOrMany(z.string().min(1).max(max))

/** `T | T[]` for a filter field. */
export type OneOrMany<T> = T | readonly T[]

/** A validated filter: its column, its kind and its value. */
export type ParsedFilter = PageFilter & { readonly value: unknown }

/**
 * The filters of a `where`, validated with the repository's filter schema, in its order.
 * @throws ValidationError on a bad value or a column that is not filterable.
 */
export function parseFilters(
  def: { readonly entity: string; readonly filterSchema: z.ZodType; readonly filterColumns: object },
  where: unknown,
): ParsedFilter[] {
  if (where === undefined) return []
  const filter = validate(def.filterSchema, where, `${def.entity} filter`) as Record<string, unknown>
  const filters: ParsedFilter[] = []
  for (const [key, value] of Object.entries(filter)) {
    if (value === undefined) continue
    const column = (def.filterColumns as Record<string, PgColumn | undefined>)[key]
    if (!column)
      throw new ValidationError(`cannot filter ${def.entity} by ${key}`, [
        { path: ['where', key], message: 'not filterable' },
      ])
    filters.push({ key, column, value, kind: value === null ? 'null' : Array.isArray(value) ? 'any' : 'eq' })
  }
  return filters
}

/** A filter's condition with its value (findMany with extra columns, and count). */
export function filterCondition(f: ParsedFilter): SQL {
  if (f.kind === 'null') return isNull(f.column)
  // `= any($1)` with one array parameter, not `in ($1, …, $n)`: the statement text stays the same
  // whatever the list's length, so each connection prepares it once.
  if (f.kind === 'any') return sql`${f.column} = any(${sql.param(f.value)})`
  return eq(f.column, f.value)
}
