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
 * The `entity_type` of an audit row: one of the library's tables, or an app table registered with
 * `callsheet_register_tenant_table` (any lower-case SQL identifier). The library's names still autocomplete.
 */
export type AuditedTableName = AuditEntityType | (string & {})
/** What an entity type must look like to be a table's name (lower-case SQL identifier, ≤ 63 bytes). */
export const AUDITED_TABLE_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/

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
    // Set by drizzle/0010: 48 bits of a sequence, then a random v4 remainder, so that (created_at, id)
    // follows insertion order when two changes share a clock tick.
    id: uuid('id')
      .notNull()
      .default(
        sql`(encode(overlay(uuid_send(gen_random_uuid()) PLACING substring(int8send(nextval('callsheet_audit_order')) FROM 3 FOR 6) FROM 1 FOR 6), 'hex'))::uuid`,
      ),
    organizationId: organizationId(),
    action: text('action').$type<AuditAction>().notNull(),
    entityType: text('entity_type').$type<AuditedTableName>().notNull(),
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
    primaryKey({ name: 'audit_logs_pkey', columns: [t.organizationId, t.createdAt, t.id] }),
    index('audit_logs_entity_idx').on(t.organizationId, t.entityType, t.entityId, t.createdAt),
    index('audit_logs_organization_created_idx').on(t.organizationId, t.createdAt),
    index('audit_logs_user_idx').on(t.organizationId, t.userId, t.createdAt),
    check('audit_logs_action_check', sql`${t.action} in ('insert', 'update', 'soft_delete', 'restore', 'purge')`),
    tenantPolicy(),
  ],
)
