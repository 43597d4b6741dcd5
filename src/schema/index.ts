/**
 * `@callsheet/db/schema`: the Drizzle tables, relations, zod schemas and the constants the database
 * is built on. Importing this entry point never opens a connection.
 *
 * @example
 * ```ts
 * import { contacts, contactInsertSchema } from '@callsheet/db/schema'
 * const input = contactInsertSchema.parse({ productionId, name: 'Jon Smith' })
 * ```
 */
export { APP_ROLE, POLICY_PREDICATE, TENANT_PROOF_SETTING, TENANT_SETTING, appRole, citext } from './columns'
export {
  TENANT_TABLE,
  tenantReference,
  tenantTable,
  type TenantReferenceOptions,
  type TenantTable,
  type TenantTableInfo,
  type TenantTableOptions,
} from './tenant-table'
export { apiKeys } from './api-keys'
export { AUDIT_ACTIONS, AUDITED_ENTITY_TYPES, auditLogs, type AuditAction, type AuditEntityType } from './audit-logs'
export { contacts, type ContactMetadata } from './contacts'
export { departments } from './departments'
export { organizations, type OrganizationSettings } from './organizations'
export { PRODUCTION_STATUSES, productions, type ProductionStatus } from './productions'
export { UPLOAD_STATUSES, uploads, type ExtractedContact, type ExtractionResult, type UploadStatus } from './uploads'
export { USER_ROLES, users, type UserRole } from './users'
export * from './relations'
export * from './zod'
export { extractedContactSchema, extractionResultSchema } from './extraction'
export type * from './types'
