import { hasCallsheetDbBrand, type CallsheetDbErrorCode } from './callsheet-db-error'
import type {
  AcquireTimeoutError,
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
} from './database-errors'
import type {
  ConflictError,
  DatabaseClosedError,
  InvalidConfigurationError,
  InvalidStateError,
  MigrationChangedError,
  MigrationError,
  MigrationLockTimeoutError,
  MigrationsNotAppliedError,
  NotFoundError,
  PartialBatchError,
  PrivilegedLoginError,
  ValidationError,
} from './usage-errors'

/** The error class behind each code, so `isCallsheetDbError(e, 'NOT_FOUND')` narrows to `NotFoundError`. */
export interface ErrorByCode {
  INVALID_CONFIGURATION: InvalidConfigurationError
  MIGRATION_FAILED: MigrationError
  MIGRATIONS_NOT_APPLIED: MigrationsNotAppliedError
  MIGRATION_CHANGED: MigrationChangedError
  MIGRATION_LOCK_TIMEOUT: MigrationLockTimeoutError
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
  DATABASE_CLOSED: DatabaseClosedError
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
  if (!hasCallsheetDbBrand(error)) return false
  return code === undefined || (error as { code?: unknown }).code === code
}
