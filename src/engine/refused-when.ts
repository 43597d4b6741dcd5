/**
 * A view of a driver client (a PGlite, a PGlite transaction, a postgres.js `Sql`) whose methods refuse
 * to run while `refuse()` returns an error: the call returns that error as a rejected promise, and
 * nothing reaches the driver. Used after a unit of work ends and after the database is closed, so
 * that both report a typed library error instead of the driver's own (`PGlite is closed`,
 * `CONNECTION_ENDED`).
 *
 * The refusal is also a thenable with postgres.js's query helpers (`values()`, `raw()`, …), which drizzle
 * calls on a query before awaiting it.
 */
export function refusedWhen<T extends object>(client: T, refuse: () => Error | undefined): T {
  return new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const error = refuse()
        return error === undefined ? (value as (...a: unknown[]) => unknown).apply(target, args) : refusal(error)
      }
    },
  })
}

const QUERY_HELPERS = ['values', 'raw', 'execute', 'describe', 'simple', 'cursor', 'forEach'] as const

function refusal(error: Error): Promise<never> {
  const rejected = Promise.reject(error)
  const helpers = Object.fromEntries(QUERY_HELPERS.map((name) => [name, () => rejected]))
  return Object.assign(rejected, helpers)
}
