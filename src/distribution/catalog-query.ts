import type { PGlite, Transaction } from '@electric-sql/pglite'
import type postgres from 'postgres'

/**
 * The one thing the distribution checks need from a connection: run one statement with parameters and
 * return its rows. One statement per call (Citus refuses several in one prepared statement). Any client
 * fits in one line; {@link catalogQuery} adapts the two drivers.
 *
 * @example
 * ```ts
 * const run: CatalogQuery = (text, params) => runner.query(text, params)
 * ```
 */
export type CatalogQuery = (text: string, params?: unknown[]) => Promise<readonly object[]>

/**
 * A {@link CatalogQuery} over a postgres.js client (`unsafe`) or a PGlite instance or transaction (`query`).
 *
 * @example
 * ```ts
 * const violations = await distributionViolations(catalogQuery(postgres(url)))
 * ```
 */
export function catalogQuery(client: postgres.Sql | postgres.TransactionSql | PGlite | Transaction): CatalogQuery {
  if ('unsafe' in client) {
    return async (text, params = []) => client.unsafe(text, params as postgres.ParameterOrJSON<never>[])
  }
  return async (text, params = []) => (await client.query<object>(text, params)).rows
}

/** Runs `text` and types its rows with the caller's word for it (nothing is checked). */
export async function catalogRows<T>(run: CatalogQuery, text: string, params?: unknown[]): Promise<T[]> {
  return (await run(text, params)) as T[]
}
