/**
 * The error tree of @callsheet/db. Every error the library throws is a {@link CallsheetDbError} with a
 * stable string `code`; switch on the code (or use {@link isCallsheetDbError}) rather than `instanceof`,
 * which fails when an ESM and a CJS copy of the library are loaded together.
 */

const BRAND = Symbol.for('@callsheet/db/error')

/** Stable error codes. */
export type CallsheetDbErrorCode =
  | 'INVALID_CONFIGURATION'
  | 'MIGRATION_FAILED'
  | 'VALIDATION_FAILED'
  | 'NOT_FOUND'
  | 'UNIQUE_VIOLATION'
  | 'FOREIGN_KEY_VIOLATION'
  | 'CHECK_VIOLATION'
  | 'NOT_NULL_VIOLATION'
  | 'PERMISSION_DENIED'
  | 'SERIALIZATION_FAILURE'
  | 'CONFLICT'
  | 'INVALID_STATE'
  | 'PARTIAL_BATCH'
  | 'CONNECTION_ERROR'
  | 'ACQUIRE_TIMEOUT'
  | 'TIMEOUT'
  | 'DATABASE_ERROR'
  | 'PRIVILEGED_LOGIN'
  | 'TENANT_PROOF_REJECTED'
  | 'TENANT_UNAVAILABLE'
  | 'INVALID_ACTOR'

/** Base class of every error the library throws. */
export class CallsheetDbError extends Error {
  readonly code: CallsheetDbErrorCode
  /** Whether running the same operation again may succeed (serialization failures, lost connections). */
  readonly retryable: boolean

  constructor(code: CallsheetDbErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retryable = options?.retryable ?? false
    Object.defineProperty(this, BRAND, { value: true })
  }
}

/** A configuration value is missing or invalid. Thrown before anything connects. */
export class InvalidConfigurationError extends CallsheetDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_CONFIGURATION', message, options)
  }
}

/** Applying the migrations failed; nothing of the failing migration run was committed. */
export class MigrationError extends CallsheetDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MIGRATION_FAILED', message, options)
  }
}

/** Input failed validation before any SQL was sent; nothing was written. */
export class ValidationError extends CallsheetDbError {
  /** Every problem found, with the path of the offending value (`[3, 'email']` is row 3's e-mail). */
  readonly issues: readonly ValidationIssue[]
  constructor(message: string, issues: readonly ValidationIssue[], options?: { cause?: unknown }) {
    super('VALIDATION_FAILED', message, options)
    this.issues = issues
  }
}

/** One problem found by validation. */
export interface ValidationIssue {
  readonly path: readonly (string | number)[]
  readonly message: string
}

/** The row does not exist for this tenant (or is soft-deleted and deleted rows were not asked for). */
export class NotFoundError extends CallsheetDbError {
  readonly entity: string
  readonly id: string
  constructor(entity: string, id: string) {
    super('NOT_FOUND', `${entity} ${id} not found`)
    this.entity = entity
    this.id = id
  }
}

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
  readonly sqlState: string | undefined
  constructor(code: CallsheetDbErrorCode, message: string, details: ConstraintDetails, options?: { cause?: unknown }) {
    super(code, message, options)
    this.constraint = details.constraint
    this.table = details.table
    this.detail = details.detail
    this.sqlState = details.sqlState
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
  readonly sqlState: string | undefined
  constructor(message: string, options?: { cause?: unknown; sqlState?: string }) {
    super('PERMISSION_DENIED', message, options)
    this.sqlState = options?.sqlState
  }
}

/** A concurrent transaction conflicted (SQLSTATE 40001 / 40P01): retrying the whole operation may succeed. */
export class SerializationError extends CallsheetDbError {
  readonly sqlState: string | undefined
  constructor(message: string, options?: { cause?: unknown; sqlState?: string }) {
    super('SERIALIZATION_FAILURE', message, { ...options, retryable: true })
    this.sqlState = options?.sqlState
  }
}

/** The operation conflicts with the current state, e.g. restoring a row whose unique value is now taken. */
export class ConflictError extends CallsheetDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFLICT', message, options)
  }
}

/** The row is not in a state that allows this operation (e.g. an illegal upload status transition). */
export class InvalidStateError extends CallsheetDbError {
  constructor(message: string) {
    super('INVALID_STATE', message)
  }
}

/**
 * A non-atomic batch (`createMany(rows, { atomic: false })`) failed part-way: the first
 * `committedCount` rows (in input order, after de-duplication) are committed, the rest are not.
 * `cause` is the error that stopped it.
 */
export class PartialBatchError extends CallsheetDbError {
  /** How many rows, from the start of the batch, were committed. */
  readonly committedCount: number
  /** The ids of the committed rows. */
  readonly committedIds: readonly string[]
  constructor(committedCount: number, committedIds: readonly string[], cause: unknown) {
    super(
      'PARTIAL_BATCH',
      `batch stopped after ${committedCount} committed rows: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause, retryable: isCallsheetDbError(cause) && cause.retryable },
    )
    this.committedCount = committedCount
    this.committedIds = committedIds
  }
}

/** The connection was lost or could not be made. The transaction did not commit; retrying may succeed. */
export class ConnectionError extends CallsheetDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONNECTION_ERROR', message, { ...options, retryable: true })
  }
}

/** No pooled connection became free within `pool.acquireTimeoutMs`. Nothing was sent. */
export class AcquireTimeoutError extends CallsheetDbError {
  constructor(timeoutMs: number) {
    super('ACQUIRE_TIMEOUT', `no database connection became free within ${timeoutMs} ms`, { retryable: true })
  }
}

/** A statement ran past `statement_timeout` or waited past `lock_timeout` (SQLSTATE 57014 / 55P03). */
export class TimeoutError extends CallsheetDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TIMEOUT', message, { ...options, retryable: true })
  }
}

/**
 * The login `createDatabase` connects with on a PostgreSQL server could escape row-level security: it
 * is a superuser, has BYPASSRLS or CREATEROLE, or is (a member of) the owner of the library's tables.
 * SQL injected into a tenant unit could then `RESET ROLE` and read or change every tenant's rows.
 * Connect as a login that is only a member of the app role (`createRuntimeLogin`, or
 * `callsheet-db runtime-login`), and keep the owner for `migrate` and `admin`. Nothing was sent for the
 * refused operation.
 */
export class PrivilegedLoginError extends CallsheetDbError {
  /** The connecting login. */
  readonly login: string
  /** Why it is privileged, one reason per entry. */
  readonly reasons: readonly string[]
  constructor(login: string, reasons: readonly string[]) {
    super(
      'PRIVILEGED_LOGIN',
      `refusing to serve requests as ${login}: ${reasons.join('; ')}. Connect as a runtime login that is only a ` +
        `member of the app role (createRuntimeLogin() or \`callsheet-db runtime-login\`); the owner is for migrate() ` +
        `and the admin connection. To accept the risk (development only), set dangerouslyAllowPrivilegedLogin: true.`,
    )
    this.login = login
    this.reasons = reasons
  }
}

/** Any other database error; `sqlState` tells what PostgreSQL said. */
export class DatabaseError extends CallsheetDbError {
  readonly sqlState: string | undefined
  constructor(message: string, options?: { cause?: unknown; sqlState?: string }) {
    super('DATABASE_ERROR', message, options)
    this.sqlState = options?.sqlState
  }
}

/**
 * The database refused the unit's tenant proof (SQLSTATE CS001), or no deployment secret is configured:
 * nothing was read or written. The secret (`secret` / `CALLSHEET_SECRET`) must be the one `migrate()`
 * installed, and the app's and database's clocks must agree within a few minutes.
 */
export class TenantProofError extends CallsheetDbError {
  constructor(message: string, options?: { cause?: unknown }) {
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
  constructor(message: string, options?: { cause?: unknown }) {
    super('TENANT_UNAVAILABLE', message, options)
  }
}

/**
 * The tenant context's `actorId` is not a live user of the organization, or its `apiKeyId` not an
 * unrevoked, unexpired key of it (SQLSTATE CS003): nothing was read or written.
 */
export class InvalidActorError extends CallsheetDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ACTOR', message, options)
  }
}

interface DriverErrorFields {
  code?: unknown
  message?: unknown
  constraint?: unknown
  constraint_name?: unknown
  table?: unknown
  table_name?: unknown
  detail?: unknown
  errno?: unknown
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

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined)

/**
 * Errors from the drivers become library errors; anything else (an app's own error thrown inside
 * `transaction(fn)`, a hook's rejection) passes through unchanged.
 */
export function toLibraryError(error: unknown): unknown {
  if (isCallsheetDbError(error)) return error
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    // The library's own error, thrown below drizzle (which wraps whatever its client throws).
    if (isCallsheetDbError(current)) return current
    const code = (current as DriverErrorFields).code
    const name = (current as { name?: unknown }).name
    if (typeof code === 'string' && (/^[0-9A-Z]{5}$/.test(code) || CONNECTION_CODES.has(code)))
      return mapDatabaseError(error)
    if (name === 'DrizzleQueryError' || name === 'PostgresError') return mapDatabaseError(error)
    current = (current as { cause?: unknown }).cause
  }
  return error
}

/**
 * The one place where driver errors become library errors. drizzle ≥ 0.44 wraps driver errors in
 * `DrizzleQueryError`, so the SQLSTATE is looked for on the error and down its `cause` chain.
 * postgres.js names fields `constraint_name` / `table_name`; PGlite names them `constraint` / `table`.
 */
export function mapDatabaseError(error: unknown): CallsheetDbError {
  if (isCallsheetDbError(error)) return error
  let driver: DriverErrorFields | undefined
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    // The library's own error, thrown below drizzle (which wraps whatever its client throws).
    if (isCallsheetDbError(current)) return current
    const code = (current as DriverErrorFields).code
    if (typeof code === 'string' && (/^[0-9A-Z]{5}$/.test(code) || CONNECTION_CODES.has(code))) {
      driver = current as DriverErrorFields
      break
    }
    current = (current as { cause?: unknown }).cause
  }
  const message = str(driver?.message) ?? (error instanceof Error ? error.message : String(error))
  const code = str(driver?.code)
  // Only a code says a connection was lost: guessing from messages would misclassify errors.
  if (code === undefined) return new DatabaseError(message, { cause: error })
  if (CONNECTION_CODES.has(code)) return new ConnectionError(message, { cause: error })
  const details: ConstraintDetails = {
    constraint: str(driver?.constraint_name) ?? str(driver?.constraint),
    table: str(driver?.table_name) ?? str(driver?.table),
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
      return new PermissionDeniedError(message, { cause: error, sqlState: code })
    case '40001':
    case '40P01':
      return new SerializationError(message, { cause: error, sqlState: code })
    case '57014':
    case '55P03':
      return new TimeoutError(message, { cause: error })
    // Raised by callsheet_enter_tenant (migration 0012), the first statement of every unit.
    case 'CS001':
      return new TenantProofError(
        `${message}: the app's secret (\`secret\` / CALLSHEET_SECRET) is not the one migrate() installed ` +
          "(run migrate(url, { secret }) with it), or the app's and database's clocks differ by minutes",
        { cause: error },
      )
    case 'CS002':
      return new TenantUnavailableError(message, { cause: error })
    case 'CS003':
      return new InvalidActorError(message, { cause: error })
  }
  // Class 08 (connection exception) and 57P01-57P03 (admin shutdown, crash, cannot connect now).
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') {
    return new ConnectionError(message, { cause: error })
  }
  return new DatabaseError(message, { cause: error, sqlState: code })
}

/** The error class behind each code, so `isCallsheetDbError(e, 'NOT_FOUND')` narrows to `NotFoundError`. */
export interface ErrorByCode {
  INVALID_CONFIGURATION: InvalidConfigurationError
  MIGRATION_FAILED: MigrationError
  VALIDATION_FAILED: ValidationError
  NOT_FOUND: NotFoundError
  UNIQUE_VIOLATION: UniqueViolationError
  FOREIGN_KEY_VIOLATION: ForeignKeyViolationError
  CHECK_VIOLATION: CheckViolationError
  NOT_NULL_VIOLATION: NotNullViolationError
  PERMISSION_DENIED: PermissionDeniedError
  SERIALIZATION_FAILURE: SerializationError
  CONFLICT: ConflictError
  INVALID_STATE: InvalidStateError
  PARTIAL_BATCH: PartialBatchError
  CONNECTION_ERROR: ConnectionError
  ACQUIRE_TIMEOUT: AcquireTimeoutError
  TIMEOUT: TimeoutError
  DATABASE_ERROR: DatabaseError
  PRIVILEGED_LOGIN: PrivilegedLoginError
  TENANT_PROOF_REJECTED: TenantProofError
  TENANT_UNAVAILABLE: TenantUnavailableError
  INVALID_ACTOR: InvalidActorError
}

/**
 * Whether `error` was thrown by @callsheet/db (any copy of it), optionally with a given code.
 *
 * @example
 * ```ts
 * if (isCallsheetDbError(e, 'NOT_FOUND')) return res.status(404).end()
 * ```
 */
export function isCallsheetDbError<C extends CallsheetDbErrorCode = CallsheetDbErrorCode>(
  error: unknown,
  code?: C,
): error is ErrorByCode[C] {
  if (typeof error !== 'object' || error === null || !(BRAND in error)) return false
  return code === undefined || (error as { code?: unknown }).code === code
}
