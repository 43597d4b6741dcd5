/**
 * The base of the error tree. Every error the library throws is a {@link CallsheetDbError} with a
 * stable string `code`; switch on the code (or use `isCallsheetDbError`) rather than `instanceof`,
 * which fails when an ESM and a CJS copy of the library are loaded together.
 */

// A registered symbol, so that every copy of the library (ESM and CJS side by side) marks its errors alike.
const BRAND = Symbol.for('@callsheet/db/error')

/** Stable error codes. */
export type CallsheetDbErrorCode =
  | 'INVALID_CONFIGURATION'
  | 'MIGRATION_FAILED'
  | 'MIGRATIONS_NOT_APPLIED'
  | 'MIGRATION_CHANGED'
  | 'MIGRATION_LOCK_TIMEOUT'
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
  | 'DATABASE_CLOSED'
  | 'PARTIAL_BATCH'
  | 'CONNECTION_ERROR'
  | 'ACQUIRE_TIMEOUT'
  | 'TIMEOUT'
  | 'DATABASE_ERROR'
  | 'PRIVILEGED_LOGIN'
  | 'TENANT_PROOF_REJECTED'
  | 'TENANT_UNAVAILABLE'
  | 'INVALID_ACTOR'

/** What every error constructor accepts besides its message. */
export interface CallsheetDbErrorOptions {
  readonly cause?: unknown
  /** The SQLSTATE PostgreSQL reported, when the error came from the database. */
  readonly sqlState?: string | undefined
}

/** Base class of every error the library throws. */
export class CallsheetDbError extends Error {
  readonly code: CallsheetDbErrorCode
  /** Whether running the same operation again may succeed (serialization failures, lost connections). */
  readonly retryable: boolean
  /** The SQLSTATE PostgreSQL reported (`23505`, `40001`, `CS001`, …); undefined when no server said anything. */
  readonly sqlState: string | undefined

  constructor(
    code: CallsheetDbErrorCode,
    message: string,
    options?: CallsheetDbErrorOptions & { retryable?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retryable = options?.retryable ?? false
    this.sqlState = options?.sqlState
    Object.defineProperty(this, BRAND, { value: true })
  }
}

/**
 * Whether `error` carries the brand of a {@link CallsheetDbError} of any copy of the library. The
 * public, code-narrowing check is `isCallsheetDbError`; this one is for the error tree itself.
 */
export function hasCallsheetDbBrand(error: unknown): error is CallsheetDbError {
  return typeof error === 'object' && error !== null && BRAND in error
}
