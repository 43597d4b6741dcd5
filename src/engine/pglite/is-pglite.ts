import type { PGlite } from '@electric-sql/pglite'

/**
 * Whether `value` is a PGlite instance, by its shape (its prototype's methods): `instanceof PGlite` is
 * false for an instance from another copy of the package (the app's CJS build beside our ESM one, or
 * two installed versions).
 * `execProtocolRawSync` is what sets an in-process PGlite apart from a `PGliteWorker`, which drizzle's
 * PGlite driver (and so the library) does not take.
 *
 * @example
 * ```ts
 * if (isPGlite(target)) return { kind: 'pglite', pglite: target }
 * ```
 */
export function isPGlite(value: unknown): value is PGlite {
  if (typeof value !== 'object' || value === null) return false
  const candidate = value as Record<string, unknown>
  return (
    typeof candidate.query === 'function' &&
    typeof candidate.exec === 'function' &&
    typeof candidate.transaction === 'function' &&
    typeof candidate.execProtocolRawSync === 'function'
  )
}
