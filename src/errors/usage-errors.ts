/**
 * Errors the library raises itself, before or instead of asking the database: bad configuration or
 * input, a missing row, a state that forbids the operation, a batch stopped part-way, a privileged login.
 */
import { CallsheetDbError, hasCallsheetDbBrand } from './callsheet-db-error'

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

/**
 * `migrate()` ran, but some migrations the package ships are still not recorded as applied (in
 * `callsheet_migrations.applied`): the run is not reported as a success. `missing` names them (journal tags).
 */
export class MigrationsNotAppliedError extends CallsheetDbError {
  readonly missing: readonly string[]
  constructor(message: string, missing: readonly string[]) {
    super('MIGRATIONS_NOT_APPLIED', message)
    this.missing = missing
  }
}

/**
 * `migrate()` refused to run: the database records a shipped migration (same journal timestamp) with
 * another hash, i.e. that migration's .sql file changed after it was applied. Nothing was applied.
 * `changed` names them (journal tags). Shipped migrations are immutable: revert the file and add a new one.
 */
export class MigrationChangedError extends CallsheetDbError {
  readonly changed: readonly string[]
  constructor(message: string, changed: readonly string[]) {
    super('MIGRATION_CHANGED', message)
    this.changed = changed
  }
}

/**
 * `migrate()` waited longer than its `lockTimeoutMs` for a lock another session holds (SQLSTATE 55P03),
 * and gave up rather than queue every other query on that table behind its own wait. The message says
 * what was (not) applied; running `migrate()` again once the other transaction ends is safe. Retryable.
 */
export class MigrationLockTimeoutError extends CallsheetDbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MIGRATION_LOCK_TIMEOUT', message, { ...options, retryable: true, sqlState: '55P03' })
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
 * The database was closed (`db.close()`, or a test database's `close()`): nothing was sent. Never
 * retryable — the same call on the same handle fails the same way; open a new database instead.
 */
export class DatabaseClosedError extends CallsheetDbError {
  constructor(operation = 'the operation') {
    super('DATABASE_CLOSED', `${operation} was refused: the database is closed (close() was called); nothing was sent`)
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
      { cause, retryable: hasCallsheetDbBrand(cause) && cause.retryable },
    )
    this.committedCount = committedCount
    this.committedIds = committedIds
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
