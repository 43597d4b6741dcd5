/**
 * WORKAROUND for drizzle-orm 0.45 (drizzle-team/drizzle-orm#6096, fix proposed in #6098): its postgres-js
 * session calls `unsafe(query, params, { prepare })` with `prepare` true only for named (`.prepare(name)`)
 * queries, whatever the client was configured with. A unit needs every query prepared: postgres.js sends an
 * unprepared statement that has parameters "describe first" (a round trip of its own, and nothing
 * pipelines behind it), which would undo the pipelining of BEGIN, settings and first query. With
 * `prepare: false` configured (PgBouncer), named queries must not be prepared either.
 *
 * Delete when drizzle-orm passes the client's own `prepare` option to every `unsafe()` call: the reserved
 * connection carries `prepare` from postgres/pool.ts, so drizzle then sends each query as configured.
 */
import type postgres from 'postgres'

/** `options` with `prepare` as configured, whatever drizzle asked for. */
export function withConfiguredPrepare(
  options: postgres.UnsafeQueryOptions | undefined,
  prepare: boolean,
): postgres.UnsafeQueryOptions {
  return { ...options, prepare }
}
