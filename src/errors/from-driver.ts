/**
 * The one place where driver errors become library errors: the one walk down an error's `cause` chain,
 * and the SQLSTATE mapping. drizzle ≥ 0.44 wraps driver errors in `DrizzleQueryError`, and the library's
 * own errors can be thrown below drizzle (which wraps whatever its client throws), so the answer may sit
 * a few causes down. postgres.js names fields `constraint_name` / `table_name`; PGlite `constraint` / `table`.
 */
import { hasCallsheetDbBrand, type CallsheetDbError } from './callsheet-db-error'
import {
  CheckViolationError,
  ConnectionError,
  DatabaseError,
  ForeignKeyViolationError,
  InvalidActorError,
  NotNullViolationError,
  PermissionDeniedError,
  SerializationError,
  TenantProofError,
  TenantUnavailableError,
  TimeoutError,
  UniqueViolationError,
  type ConstraintDetails,
} from './database-errors'
import { relayedByCitus, shardlessNames } from './shard-names'

interface DriverErrorFields {
  code?: unknown
  message?: unknown
  constraint?: unknown
  constraint_name?: unknown
  table?: unknown
  table_name?: unknown
  detail?: unknown
  where?: unknown
}

const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
])

// Deep enough for drizzle's wrapper over a driver's wrapper; a cycle of causes ends here too.
const MAX_DEPTH = 6

/** What the walk found: the library's own error, a driver error with a code, and whether a driver's wrapper was seen. */
interface CauseChain {
  readonly library?: CallsheetDbError
  readonly driver?: DriverErrorFields & { readonly code: string }
  /** A `DrizzleQueryError` or `PostgresError` was on the chain: a database error even without a code. */
  readonly fromDatabase: boolean
}

/** The one walk of an error's cause chain: stops at the library's own error or at a driver error with a code. */
function walkCauses(error: unknown): CauseChain {
  let fromDatabase = false
  let current: unknown = error
  for (let depth = 0; depth < MAX_DEPTH && typeof current === 'object' && current !== null; depth++) {
    if (hasCallsheetDbBrand(current)) return { library: current, fromDatabase }
    const code = (current as DriverErrorFields).code
    if (typeof code === 'string' && (/^[0-9A-Z]{5}$/.test(code) || CONNECTION_CODES.has(code))) {
      return { driver: current as DriverErrorFields & { code: string }, fromDatabase: true }
    }
    const name = (current as { name?: unknown }).name
    if (name === 'DrizzleQueryError' || name === 'PostgresError') fromDatabase = true
    current = (current as { cause?: unknown }).cause
  }
  return { fromDatabase }
}

/**
 * The SQLSTATE (or a connection code such as `ECONNREFUSED`) of the driver error behind `error`,
 * however deep drizzle wrapped it; undefined when there is none.
 */
export function driverErrorCode(error: unknown): string | undefined {
  return walkCauses(error).driver?.code
}

/**
 * Errors from the drivers become library errors; anything else (an app's own error thrown inside
 * `transaction(fn)`, a hook's rejection) passes through unchanged.
 */
export function toLibraryError(error: unknown, names: ErrorNames = {}): unknown {
  const chain = walkCauses(error)
  if (chain.library !== undefined) return chain.library
  return chain.fromDatabase ? fromDriver(error, chain.driver, names) : error
}

/** What a layer above knows of the schema, for errors that do not say it themselves. */
export interface ErrorNames {
  /**
   * The table a constraint belongs to: a unique violation relayed by a Citus coordinator names only the
   * constraint (schema/table-names.ts `tableOfConstraint`).
   */
  readonly tableOfConstraint?: (constraint: string) => string | undefined
}

/** Like {@link toLibraryError}, for errors known to come from the database: anything unknown becomes a `DatabaseError`. */
export function mapDatabaseError(error: unknown): CallsheetDbError {
  const chain = walkCauses(error)
  return chain.library ?? fromDriver(error, chain.driver)
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined)

function fromDriver(
  error: unknown,
  driver: (DriverErrorFields & { code: string }) | undefined,
  names: ErrorNames = {},
): CallsheetDbError {
  const raw = str(driver?.message) ?? (error instanceof Error ? error.message : String(error))
  // A worker's error relayed by a Citus coordinator: names recovered from the message, without shard suffixes.
  const relayed = relayedByCitus(driver?.where) ? shardlessNames(raw) : undefined
  const message = relayed?.message ?? raw
  const code = str(driver?.code)
  // Only a code says a connection was lost: guessing from messages would misclassify errors.
  if (code === undefined) return new DatabaseError(message, { cause: error })
  if (CONNECTION_CODES.has(code)) return new ConnectionError(message, { cause: error })
  const options = { cause: error, sqlState: code }
  const details: ConstraintDetails = {
    constraint: str(driver?.constraint_name) ?? str(driver?.constraint) ?? relayed?.constraint,
    table:
      str(driver?.table_name) ??
      str(driver?.table) ??
      relayed?.table ??
      (relayed?.constraint === undefined ? undefined : names.tableOfConstraint?.(relayed.constraint)),
    detail: str(driver?.detail),
    sqlState: code,
  }
  switch (code) {
    case '23505':
      return new UniqueViolationError(message, details, { cause: error })
    case '23503':
      return new ForeignKeyViolationError(message, details, { cause: error })
    case '23514':
      return new CheckViolationError(message, details, { cause: error })
    case '23502':
      return new NotNullViolationError(message, details, { cause: error })
    case '42501':
      return new PermissionDeniedError(message, options)
    case '40001':
    case '40P01':
      return new SerializationError(message, options)
    case '57014':
    case '55P03':
      return new TimeoutError(message, options)
    // Raised by callsheet_enter_tenant (migration 0012), the first statement of every unit.
    case 'CS001':
      return new TenantProofError(
        `${message}: the app's secret (\`secret\` / CALLSHEET_SECRET) is not the one migrate() installed ` +
          "(run migrate(url, { secret }) with it), or the app's and database's clocks differ by minutes",
        options,
      )
    case 'CS002':
      return new TenantUnavailableError(message, options)
    case 'CS003':
      return new InvalidActorError(message, options)
    // Raised by callsheet_require_primary (migration 0017): a unit on the primary target reached a standby
    // or a read-only server. Nothing of the unit ran; the engine drops the connection.
    case 'CS005':
      return new ConnectionError(message, options)
  }
  // Class 08 (connection exception) and 57P01-57P03 (admin shutdown, crash, cannot connect now).
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') {
    return new ConnectionError(message, options)
  }
  // Citus: a statement planned against a shard that a concurrent split or move has just replaced (seen
  // from the audit trigger's insert during isolate_tenant_to_new_shard). The statement failed, so its
  // transaction did not commit, and the next attempt reads the new placement metadata.
  if (code === 'XX000' && CITUS_STALE_SHARD.test(message))
    return new DatabaseError(message, { ...options, retryable: true })
  return new DatabaseError(message, options)
}

const CITUS_STALE_SHARD = /^could not find valid entry for shard \d+$/
