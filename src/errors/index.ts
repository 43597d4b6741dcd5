// The error tree: the base class and its brand check, the errors, and the one mapping from driver errors.
export { CallsheetDbError, type CallsheetDbErrorCode } from './callsheet-db-error'
export { isCallsheetDbError, type ErrorByCode } from './is-callsheet-db-error'
export {
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
  type ValidationIssue,
} from './usage-errors'
export {
  AcquireTimeoutError,
  CheckViolationError,
  ConnectionError,
  DatabaseError,
  ForeignKeyViolationError,
  IntegrityConstraintViolationError,
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
export { driverErrorCode, mapDatabaseError, toLibraryError } from './from-driver'
