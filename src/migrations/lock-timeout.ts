/**
 * migrate() on a server is lock-aware (issue 21): its dedicated connection sets `lock_timeout`, so that
 * a migration waiting behind a long transaction fails fast, as a retryable error, instead of queueing
 * every other query on that table behind its own wait (PostgreSQL grants locks in order).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { InvalidConfigurationError, MigrationLockTimeoutError } from '../errors'
import type { MigratePhase } from './progress'
import { runsOutsideTransaction } from './apply-migrations'

/** The default of `MigrateOptions.lockTimeoutMs`. */
const DEFAULT_LOCK_TIMEOUT_MS = 5000

/** `lockTimeoutMs` checked: an integer from 0 (no limit) to one day. */
export function checkLockTimeout(value: number | undefined): number {
  const ms = value ?? DEFAULT_LOCK_TIMEOUT_MS
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > 86_400_000)
    throw new InvalidConfigurationError(`lockTimeoutMs must be an integer from 0 (no limit) to 86400000, got ${ms}`)
  return ms
}

/**
 * The session settings for migrate's connection, set after the advisory lock is held (lock_timeout
 * applies to advisory locks too, and concurrent runs must keep waiting for each other): the lock
 * timeout, and no statement timeout (a migration may rewrite a large table).
 */
export function sessionSettings(lockTimeoutMs: number): { text: string; params: string[] } {
  return {
    text: `select set_config('lock_timeout', $1, false), set_config('statement_timeout', '0', false)`,
    params: [lockTimeoutMs === 0 ? '0' : `${lockTimeoutMs}ms`],
  }
}

/**
 * On a Citus coordinator, the statements that open each transaction of migrate(): the session's
 * lock_timeout bounds only the coordinator's own lock waits, while a DDL's commands on the shards run on
 * connections Citus opens to the workers, where a lock held on a shard would be waited for without limit
 * (checked on Citus 13.2). Citus sends a transaction's SET LOCAL commands along to those connections
 * once citus.propagate_set_commands is 'local' (a SET LOCAL itself, so that it ends with the transaction).
 */
export function citusTransactionSettings(lockTimeoutMs: number): string[] {
  return [
    "set local citus.propagate_set_commands = 'local'",
    `set local lock_timeout = '${lockTimeoutMs === 0 ? '0' : `${lockTimeoutMs}ms`}'`,
  ]
}

/** What a 55P03 during each phase left applied: a retry is safe in every case (each step converges). */
const LEFT: Record<MigratePhase, string> = {
  locked: 'nothing was applied',
  adopting: 'nothing was applied',
  applying: 'none of the pending migrations was applied (they run in one transaction, which was rolled back)',
  applied: "this package's migrations are applied; the audit partitions and key were not finished",
  partitions: "this package's migrations are applied; the audit partitions and key were not finished",
  'app-applying': "this package's migrations are applied; none of the app's pending migrations was",
  'app-applied': 'all migrations are applied',
  done: 'all migrations are applied',
}

/**
 * `error` as a {@link MigrationLockTimeoutError} when it (or one of its causes) is PostgreSQL's
 * lock_not_available (55P03); otherwise undefined.
 */
export function lockTimeoutError(
  error: unknown,
  lockTimeoutMs: number,
  phase: MigratePhase,
  pending: readonly string[],
  folder: string | undefined,
): MigrationLockTimeoutError | undefined {
  let statement: string | undefined
  let found = false
  for (let e: unknown = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const { code, query, cause } = e as { code?: unknown; query?: unknown; cause?: unknown }
    if (typeof query === 'string') statement ??= query
    if (code === '55P03') found = true
    e = cause
  }
  if (!found) return undefined
  const waited = statement === undefined ? '' : ` (statement: ${statement.trim().replace(/\s+/g, ' ').slice(0, 160)})`
  const applying = phase === 'applying' || phase === 'app-applying'
  const blocked = applying && statement !== undefined ? migrationOf(statement, pending, folder) : undefined
  const migrations = !applying || pending.length === 0 ? '' : ` while applying ${blocked ?? pending.join(', ')}`
  const outside = applying && folder !== undefined && pending.some((tag) => runsOutsideTransaction(folder, tag))
  const left = outside
    ? 'the pending migrations before a no-transaction one (CONCURRENTLY) are committed before it runs, so some ' +
      'may be applied (`callsheet-db status` lists them); the rest are not, and an index build it interrupted ' +
      'is rebuilt by the next run'
    : LEFT[phase]
  return new MigrationLockTimeoutError(
    `migrate() waited longer than lockTimeoutMs (${lockTimeoutMs} ms) for a lock another session holds` +
      `${migrations}${waited}: ${left}. A long transaction probably holds a conflicting lock on that ` +
      `table; run migrate() again once it ends, or raise lockTimeoutMs.`,
    { cause: error },
  )
}

/** The pending migration whose file holds `statement` (drizzle runs each file's statements verbatim). */
function migrationOf(statement: string, pending: readonly string[], folder: string | undefined): string | undefined {
  if (folder === undefined) return undefined
  return pending.find((tag) => {
    try {
      return readFileSync(join(folder, `${tag}.sql`), 'utf8').includes(statement.trim())
    } catch {
      return false
    }
  })
}
