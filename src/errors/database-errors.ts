/**
 * Errors that stand for what the database (or the connection to it) said: each carries the SQLSTATE
 * in `sqlState` when a server reported one. `from-driver.ts` is the one place that creates them from
 * driver errors; the library also raises a few itself (`AcquireTimeoutError`, `TenantProofError.noSecret`).
 */
import { CallsheetDbError, type CallsheetDbErrorCode, type CallsheetDbErrorOptions } from './callsheet-db-error'

/** Fields PostgreSQL reports on a constraint violation. */
export interface ConstraintDetails {
  readonly constraint?: string | undefined
  readonly table?: string | undefined
  readonly detail?: string | undefined
  readonly sqlState?: string | undefined
}

/** Base of the errors raised when PostgreSQL refuses a row. */
export class IntegrityConstraintViolationError extends CallsheetDbError {
  readonly constraint: string | undefined
  readonly table: string | undefined
  readonly detail: string | undefined
  constructor(code: CallsheetDbErrorCode, message: string, details: ConstraintDetails, options?: { cause?: unknown }) {
    super(code, message, { ...options, sqlState: details.sqlState })
    this.constraint = details.constraint
    this.table = details.table
    this.detail = details.detail
  }
}

/** A live row already has this unique value (SQLSTATE 23505). */
export class UniqueViolationError extends IntegrityConstraintViolationError {
  constructor(message: string, details: ConstraintDetails, options?: { cause?: unknown }) {
    super('UNIQUE_VIOLATION', message, details, options)
  }
}

/** A referenced row does not exist for this tenant, or is still referenced (SQLSTATE 23503). */
export class ForeignKeyViolationError extends IntegrityConstraintViolationError {
  constructor(message: string, details: ConstraintDetails, options?: { cause?: unknown }) {
    super('FOREIGN_KEY_VIOLATION', message, details, options)
  }
}

/** A CHECK constraint refused the row (SQLSTATE 23514). */
export class CheckViolationError extends IntegrityConstraintViolationError {
  constructor(message: string, details: ConstraintDetails, options?: { cause?: unknown }) {
    super('CHECK_VIOLATION', message, details, options)
  }
}

/** A required column was null (SQLSTATE 23502). */
export class NotNullViolationError extends IntegrityConstraintViolationError {
  constructor(message: string, details: ConstraintDetails, options?: { cause?: unknown }) {
    super('NOT_NULL_VIOLATION', message, details, options)
  }
}

/** PostgreSQL refused the statement for this role: RLS `WITH CHECK`, or a missing grant (SQLSTATE 42501). */
export class PermissionDeniedError extends CallsheetDbError {
  constructor(message: string, options?: CallsheetDbErrorOptions) {
    super('PERMISSION_DENIED', message, options)
  }
}

/** A concurrent transaction conflicted (SQLSTATE 40001 / 40P01): retrying the whole operation may succeed. */
export class SerializationError extends CallsheetDbError {
  constructor(message: string, options?: CallsheetDbErrorOptions) {
    super('SERIALIZATION_FAILURE', message, { ...options, retryable: true })
  }
}

/** The connection was lost or could not be made. The transaction did not commit; retrying may succeed. */
export class ConnectionError extends CallsheetDbError {
  constructor(message: string, options?: CallsheetDbErrorOptions) {
    super('CONNECTION_ERROR', message, { ...options, retryable: true })
  }
}

/**
 * No pooled connection became free within `pool.acquireTimeoutMs`. Nothing was sent. When the server could
 * not be reached meanwhile, `cause` is the last connection error (and the message says so).
 */
export class AcquireTimeoutError extends CallsheetDbError {
  constructor(timeoutMs: number, lastConnectionError?: unknown) {
    const reason =
      lastConnectionError === undefined
        ? ''
        : ` (the server could not be reached: ${lastConnectionError instanceof Error ? lastConnectionError.message : String(lastConnectionError)})`
    super('ACQUIRE_TIMEOUT', `no database connection became free within ${timeoutMs} ms${reason}`, {
      retryable: true,
      ...(lastConnectionError === undefined ? {} : { cause: lastConnectionError }),
    })
  }
}

/** A statement ran past `statement_timeout` or waited past `lock_timeout` (SQLSTATE 57014 / 55P03). */
export class TimeoutError extends CallsheetDbError {
  constructor(message: string, options?: CallsheetDbErrorOptions) {
    super('TIMEOUT', message, { ...options, retryable: true })
  }
}

/**
 * Any other database error; `sqlState` tells what PostgreSQL said. Retryable only where the library knows
 * the statement failed on a passing state (Citus: a shard placement that moved or split under it).
 */
export class DatabaseError extends CallsheetDbError {
  constructor(message: string, options?: CallsheetDbErrorOptions & { readonly retryable?: boolean }) {
    super('DATABASE_ERROR', message, options)
  }
}

/**
 * The database refused the unit's tenant proof (SQLSTATE CS001), or no deployment secret is configured:
 * nothing was read or written. The secret (`secret` / `CALLSHEET_SECRET`) must be the one `migrate()`
 * installed, and the app's and database's clocks must agree within a few minutes.
 */
export class TenantProofError extends CallsheetDbError {
  constructor(message: string, options?: CallsheetDbErrorOptions) {
    super('TENANT_PROOF_REJECTED', message, options)
  }

  /** No secret on a server: a tenant unit cannot prove its tenant. */
  static noSecret(): TenantProofError {
    return new TenantProofError(
      'no deployment secret: set `secret` (or CALLSHEET_SECRET) to the secret migrate() installed ' +
        '(migrate(url, { secret }) installs it); tenant units cannot run without it',
    )
  }
}

/** The organization does not exist or is soft-deleted (SQLSTATE CS002): nothing was read or written. */
export class TenantUnavailableError extends CallsheetDbError {
  constructor(message: string, options?: CallsheetDbErrorOptions) {
    super('TENANT_UNAVAILABLE', message, options)
  }
}

/**
 * The tenant context's `actorId` is not a live user of the organization, or its `apiKeyId` not an
 * unrevoked, unexpired key of it (SQLSTATE CS003): nothing was read or written.
 */
export class InvalidActorError extends CallsheetDbError {
  constructor(message: string, options?: CallsheetDbErrorOptions) {
    super('INVALID_ACTOR', message, options)
  }
}
