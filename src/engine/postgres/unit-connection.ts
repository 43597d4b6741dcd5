/**
 * The reserved connection as a unit's Drizzle session sees it: every query prepared as configured, refused
 * once the unit has ended or lost its connection, observed when `onQuery` is set. One Proxy per unit, and
 * per query one wrapper ({@link refusedWhenRun}), plus the timing one only when observed.
 */
import type postgres from 'postgres'
import type { QueryEvent } from '../engine-config'
import { timed } from '../query-observation'
import { withConfiguredPrepare } from '../workarounds/drizzle-unsafe-prepare'

/** `conn` with every `unsafe()` call prepared as configured, refused when `refused()` says so, observed. */
export function unitConnection(
  conn: postgres.ReservedSql,
  prepare: boolean,
  refused: () => unknown,
  observe?: (event: Omit<QueryEvent, 'target'>) => void,
): postgres.ReservedSql {
  return new Proxy(conn, {
    get(target, property, receiver) {
      if (property !== 'unsafe') return Reflect.get(target, property, receiver) as unknown
      return (query: string, params?: postgres.ParameterOrJSON<never>[], options?: postgres.UnsafeQueryOptions) => {
        // Never write to a connection the server closed, nor after the unit ended.
        const error = refused()
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- a driver's error, typed unknown (narrowed to {} here)
        if (error !== undefined) throw error
        const pending = refusedWhenRun(target.unsafe(query, params, withConfiguredPrepare(options, prepare)), refused)
        return observe ? timed(pending, query, params ?? [], observe) : pending
      }
    },
  })
}

/**
 * A postgres.js query that is refused again when it is run, not only when it is built. drizzle builds a
 * query and runs it (its first `then`) a few microtasks later: a query built in the same turn as the
 * unit's last result could run after the unit decided its outcome, and postgres.js would write it behind
 * the COMMIT — outside the transaction, as the login role, without the tenant settings (reproduced).
 * Checked when run, it is queued before any COMMIT sent after the check: postgres.js queues queries in
 * the order they are run.
 *
 * Not a driver workaround: the unit's end is the library's boundary (a callback that did not await), and
 * stays enforced whatever the drivers do.
 */
function refusedWhenRun<T extends PromiseLike<unknown>>(query: T, refused: () => unknown): T {
  let ran = false
  const wrapper: T = new Proxy(query, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (!ran && RUNS_A_QUERY.has(property)) {
          const error = refused()
          if (error !== undefined) {
            // eslint-disable-next-line @typescript-eslint/only-throw-error -- a driver's error, typed unknown (narrowed to {} here)
            if (property === 'execute') throw error
            // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- as above
            const rejected = Promise.reject(error)
            return (Reflect.get(rejected, property) as (...a: unknown[]) => unknown).apply(rejected, args)
          }
          ran = true
        }
        const result = (value as (...a: unknown[]) => unknown).apply(target, args)
        return result === target ? wrapper : result
      }
    },
  })
  return wrapper
}

/** The postgres.js query methods that send it. */
const RUNS_A_QUERY = new Set<PropertyKey>(['then', 'catch', 'finally', 'execute'])
