/**
 * `onQuery`: every query a unit's own code sends, with its duration, rows and error, on either engine
 * (BEGIN, the settings statement and COMMIT are not reported). Only installed when `onQuery` is set: a
 * database without it pays nothing per query.
 */
import type { QueryEvent } from './engine-config'

/**
 * A postgres.js query that reports its duration. The query is lazy: it runs on its first `then`
 * (drizzle awaits it, possibly after `.values()`), so the clock starts there. Methods that return the
 * query itself return this wrapper, so the caller's `await` still goes through it.
 */
export function timed<T extends PromiseLike<unknown>>(
  query: T,
  sql: string,
  params: readonly unknown[],
  observe: (event: Omit<QueryEvent, 'target'>) => void,
): T {
  const wrapper: T = new Proxy(query, {
    get(target, property) {
      if (property === 'then') {
        return (onFulfilled?: (value: unknown) => unknown, onRejected?: (reason: unknown) => unknown) => {
          const started = performance.now()
          return target.then(
            (value) => {
              const rowCount = Array.isArray(value) ? value.length : undefined
              observe({
                sql,
                params,
                durationMs: performance.now() - started,
                ...(rowCount === undefined ? {} : { rowCount }),
              })
              return onFulfilled ? onFulfilled(value) : value
            },
            (error: unknown) => {
              observe({ sql, params, durationMs: performance.now() - started, error })
              if (onRejected) return onRejected(error)
              throw error
            },
          )
        }
      }
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args)
        return result === target ? wrapper : result
      }
    },
  })
  return wrapper
}

/** A PGlite transaction whose `query` calls report their duration. */
export function observedPglite<T extends { query: (...args: never[]) => Promise<unknown> }>(
  tx: T,
  onQuery: (event: QueryEvent) => void,
): T {
  return new Proxy(tx, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      if (property !== 'query') return (value as (...a: unknown[]) => unknown).bind(target)
      return async (sql: string, params?: unknown[], options?: unknown) => {
        const started = performance.now()
        const base = { sql, params: params ?? [], target: 'primary' }
        try {
          const query = value as (...a: unknown[]) => Promise<{ rows?: unknown[] }>
          const result = await query.call(target, sql, params, options)
          onQuery({ ...base, durationMs: performance.now() - started, rowCount: result.rows?.length ?? 0 })
          return result
        } catch (error) {
          onQuery({ ...base, durationMs: performance.now() - started, error })
          throw error
        }
      }
    },
  })
}
