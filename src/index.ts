/**
 * `@callsheet/db`: the typed, multi-tenant data layer of the Call Sheet Connector.
 *
 * @example
 * ```ts
 * import { createDatabase } from '@callsheet/db'
 * const db = createDatabase({ primary: process.env.DATABASE_URL! })
 * const tenant = db.tenant(orgId, { actorId: user.id, requestId })
 * const hits = await tenant.contacts.search('jon smth', { limit: 20 })
 * ```
 */
export {
  createDatabase,
  type Database,
  type DatabaseStats,
  type TenantOptions,
  type VerifiedApiKey,
} from './client/create-database'
export type { ReadConsistency } from './routing/consistency'
export type { FallbackReason, ReplicaStats, RoutingStats } from './routing/routing-stats'
export {
  closeDefaultDatabase,
  createTenantClient,
  getDefaultDatabase,
  setDefaultDatabase,
  type TenantClientOptions,
} from './client/default-database'
export type { TenantDb } from './client/tenant-db'
export type {
  PlainTableRepository,
  SoftDeleteTableRepository,
  TenantTableCreate,
  TenantTableFilter,
  TenantTableRepository,
  TenantTableRow,
  TenantTableSort,
  TenantTableUpdate,
} from './repositories/tenant-table-repository'
export type {
  DatabaseConfig,
  DatabaseLogger,
  DatabaseTarget,
  PostgresOptions,
  QueryEvent,
  RoutingConfig,
} from './client/config'
export type { TenantContext } from './unit-of-work/tenant-context'
export { createPglite, pgliteExtensions } from './engine/pglite/create-pglite'
export {
  createRuntimeLogin,
  migrate,
  type MigrateOptions,
  type MigrateProgress,
  type MigrateReport,
  type MigrationTarget,
  type RuntimeLoginOptions,
} from './migrations/migrate'
export {
  distribute,
  type DistributeOptions,
  type DistributionReport,
  type DistributionStep,
  type DistributionStepName,
  type DistributionTarget,
} from './distribution/distribute'
export { TenantClient, type TenantRepositories, type TenantTransaction } from './client/tenant-client'
export type {
  AfterWriteContext,
  BeforeWriteContext,
  ChangeEvent,
  DatabaseHook,
  EntityName,
  HookContext,
  LibraryEntityName,
  WriteOperation,
} from './unit-of-work/hooks'
export { ENTITY_NAMES, WRITE_OPERATIONS } from './unit-of-work/hooks'
export type { TenantRepository } from './repositories/tenant-repository'
export type { SoftDeleteRepository } from './repositories/soft-delete-repository'
export type { BatchRepository } from './repositories/batch-repository'
export type { DeletedFilter, FindOptions } from './repositories/soft-delete'
export type { FindManyOptions, Page } from './repositories/keyset-page'
export type { CreateManyOptions } from './repositories/create-many/plan'
export type {
  UsersRepository,
  CreateUserInput,
  UpdateUserInput,
  UserFilter,
  UserSort,
} from './repositories/users-repository'
export type {
  DepartmentsRepository,
  CreateDepartmentInput,
  UpdateDepartmentInput,
  DepartmentFilter,
  DepartmentSort,
} from './repositories/departments-repository'
export type {
  ProductionsRepository,
  CreateProductionInput,
  UpdateProductionInput,
  ProductionFilter,
  ProductionSort,
  ProductionWithContacts,
  ProductionWithContactCount,
} from './repositories/productions-repository'
export type {
  ContactsRepository,
  CreateContactInput,
  UpdateContactInput,
  ContactFilter,
  ContactSort,
  ContactSearchOptions,
  ContactSearchHit,
} from './repositories/contacts-repository'
export type {
  UploadsRepository,
  CreateUploadInput,
  UpdateUploadInput,
  UploadFilter,
  UploadSort,
} from './repositories/uploads-repository'
export type { IngestReport } from './schema/extraction'
export type {
  ApiKeysRepository,
  CreateApiKeyInput,
  UpdateApiKeyInput,
  ApiKeyFilter,
  ApiKeySort,
  CreatedApiKey,
} from './repositories/api-keys-repository'
export type { Maintenance } from './audit/maintenance'
export type {
  ConnectionStats,
  IndexUsage,
  Monitoring,
  PoolStats,
  ReplicaLag,
  SlowQueriesOptions,
  SlowQuery,
  TableSize,
} from './monitoring'
export type { AuditLogsRepository, AuditHistoryOptions, AuditFindManyOptions } from './audit/audit-logs-repository'
export type {
  OrganizationsRepository,
  CreateOrganizationInput,
  UpdateOrganizationInput,
  FindManyOrganizationsOptions,
} from './repositories/organizations-repository'
export {
  AcquireTimeoutError,
  CallsheetDbError,
  CheckViolationError,
  ConflictError,
  ConnectionError,
  DatabaseClosedError,
  DatabaseError,
  ForeignKeyViolationError,
  IntegrityConstraintViolationError,
  InvalidActorError,
  InvalidConfigurationError,
  InvalidStateError,
  MigrationChangedError,
  MigrationError,
  MigrationLockTimeoutError,
  MigrationsNotAppliedError,
  NotFoundError,
  NotNullViolationError,
  PartialBatchError,
  PermissionDeniedError,
  PrivilegedLoginError,
  SerializationError,
  TenantProofError,
  TenantUnavailableError,
  TimeoutError,
  UniqueViolationError,
  ValidationError,
  isCallsheetDbError,
  type CallsheetDbErrorCode,
  type ConstraintDetails,
  type ErrorByCode,
  type ValidationIssue,
} from './errors'
export { withRetry, type RetryOptions } from './support/retry'
export type * from './schema/types'
export type { OneOrMany } from './repositories/filters'
export type { Db, Schema as DrizzleSchema } from './engine/engine'
