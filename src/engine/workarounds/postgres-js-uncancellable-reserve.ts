/**
 * WORKAROUND for postgres.js 3.4.9: a queued `reserve()` cannot be cancelled (no timeout, no AbortSignal;
 * related: porsager/postgres#1195, a queued reserve stranded forever). A unit that gave up waiting
 * (AcquireTimeoutError) would leak the connection the reservation receives later; it is handed straight
 * back instead.
 *
 * Delete when postgres.js's reserve() can be cancelled or given a timeout (then pass it the acquire
 * timeout and drop the race in postgres/pool.ts).
 */
import type postgres from 'postgres'

/** Releases the connection `reserving` eventually yields, for a reservation nobody waits for any more. */
export function releaseWhenReserved(reserving: Promise<postgres.ReservedSql>): void {
  reserving.then(
    (connection) => connection.release(),
    () => undefined,
  )
}
