import { z } from 'zod'
import { uuidSchema } from '../support/ids'

/** A filter value: one value, any of several (≤ 1000), or (for nullable columns) `null`. */
export const oneOrMany = <T extends z.ZodType>(schema: T) => z.union([schema, z.array(schema).max(1000)]).optional()
const nullableOneOrMany = <T extends z.ZodType>(schema: T) =>
  z.union([schema, z.array(schema).max(1000), z.null()]).optional()

export const idFilter = oneOrMany(uuidSchema)
export const optionalIdFilter = nullableOneOrMany(uuidSchema)
export const textFilter = (max: number) => oneOrMany(z.string().min(1).max(max))

/** `T | T[]` for a filter field. */
export type OneOrMany<T> = T | readonly T[]
