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
  | 'CONNECTION_ERROR'
  | 'TIMEOUT'
  | 'DATABASE_ERROR'

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

/**
 * Whether `error` was thrown by @callsheet/db (any copy of it), optionally with a given code.
 *
 * @example
 * ```ts
 * if (isCallsheetDbError(e, 'NOT_FOUND')) return res.status(404).end()
 * ```
 */
export function isCallsheetDbError<C extends CallsheetDbErrorCode>(
  error: unknown,
  code?: C,
): error is CallsheetDbError & { code: C } {
  if (typeof error !== 'object' || error === null || !(BRAND in error)) return false
  return code === undefined || (error as { code?: unknown }).code === code
}
