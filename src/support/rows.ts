/**
 * The rows of a `db.execute(...)` result from either driver: postgres.js returns the rows array itself,
 * PGlite returns `{ rows }`. The row type is the caller's word: nothing is checked.
 *
 * @example
 * ```ts
 * const [row] = rowsOf<{ now: Date }>(await db.execute(sql`select now()`))
 * ```
 */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[]
  return (result as { rows?: T[] }).rows ?? []
}
