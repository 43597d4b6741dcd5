/**
 * WORKAROUND for postgres.js 3.4.9: it keeps the fatal error of a connection the server closed
 * mid-statement and hands it to the first reservation of the reconnected connection, once (the stale
 * error state porsager/postgres#1215 clears "before reuse"; still open). Nothing was sent for the unit
 * yet, so postgres/pool.ts tries again ({@link isStaleConnectionError}), at most once per pooled connection.
 *
 * Delete when a postgres.js release resets a connection's error state on reconnect (#1215 or its
 * equivalent): the first reservation after a killed backend then succeeds. test/faults.test.ts covers it.
 */
import { driverErrorCode, isCallsheetDbError, mapDatabaseError } from '../../errors'

// Connection failures that a second attempt at once cannot fix (postgres.js would only wait out its
// reconnect backoff): the server is not there, or refuses us.
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'CONNECT_TIMEOUT', 'ETIMEDOUT', '57P03'])

/**
 * Whether a failed `reserve()` should be tried again: a connection error that is not a failure to connect
 * (the previous life's error, handed over once), at most `poolMax` times.
 */
export function isStaleConnectionError(error: unknown, attempt: number, poolMax: number): boolean {
  return (
    attempt < poolMax &&
    isCallsheetDbError(mapDatabaseError(error), 'CONNECTION_ERROR') &&
    !CONNECT_FAILURES.has(driverErrorCode(error) ?? '')
  )
}
