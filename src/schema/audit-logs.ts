import { sql } from 'drizzle-orm'
import { check, index, inet, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import { organizationId, tenantPolicy } from './columns'

/** What an audit row records. */
export const AUDIT_ACTIONS = ['insert', 'update', 'soft_delete', 'restore', 'purge'] as const
export type AuditAction = (typeof AUDIT_ACTIONS)[number]

/** The tenant tables whose changes are audited. */
export const AUDITED_ENTITY_TYPES = ['users', 'departments', 'productions', 'contacts', 'uploads', 'api_keys'] as const
export type AuditEntityType = (typeof AUDITED_ENTITY_TYPES)[number]

/**
 * Append-only audit trail, partitioned by month on `created_at` with a DEFAULT partition.
 *
 * drizzle-kit cannot express `PARTITION BY`, so this table is created by the custom migration
 * `drizzle/0002_*` and deliberately left out of `drizzle.config.ts`; a catalog test keeps this
 * definition and the database in step. It has no foreign keys: the trail outlives what it describes.
 */
export const auditLogs = pgTable(
  'audit_logs',
  {
    id: uuid('id').notNull().defaultRandom(),
    organizationId: organizationId(),
    action: text('action').$type<AuditAction>().notNull(),
    entityType: text('entity_type').$type<AuditEntityType>().notNull(),
    entityId: uuid('entity_id').notNull(),
    oldValues: jsonb('old_values').$type<Record<string, unknown>>(),
    newValues: jsonb('new_values').$type<Record<string, unknown>>(),
    userId: uuid('user_id'),
    apiKeyId: uuid('api_key_id'),
    ipAddress: inet('ip_address'),
    requestId: text('request_id'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: 'audit_logs_pkey', columns: [t.id, t.createdAt] }),
    index('audit_logs_entity_idx').on(t.organizationId, t.entityType, t.entityId, t.createdAt),
    index('audit_logs_organization_created_idx').on(t.organizationId, t.createdAt),
    index('audit_logs_user_idx').on(t.organizationId, t.userId, t.createdAt),
    check('audit_logs_action_check', sql`${t.action} in ('insert', 'update', 'soft_delete', 'restore', 'purge')`),
    tenantPolicy(),
  ],
)
