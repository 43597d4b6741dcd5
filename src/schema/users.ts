import { sql } from 'drizzle-orm'
import { boolean, check, foreignKey, index, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core'
import {
  citext,
  optionalTimestamp,
  organizationId,
  primaryId,
  tenantPrimaryKey,
  softDelete,
  tenantPolicy,
  timestamps,
} from './columns'
import { organizations } from './organizations'

/** What a user may do inside their organization. */
export const USER_ROLES = ['owner', 'admin', 'member'] as const
export type UserRole = (typeof USER_ROLES)[number]

/** People who sign in to an organization. */
export const users = pgTable(
  'users',
  {
    id: primaryId(),
    organizationId: organizationId(),
    email: citext('email').notNull(),
    name: text('name').notNull(),
    role: text('role').$type<UserRole>().notNull().default('member'),
    isActive: boolean('is_active').notNull().default(true),
    lastLoginAt: optionalTimestamp('last_login_at'),
    ...timestamps(),
    ...softDelete(),
  },
  (t) => [
    tenantPrimaryKey('users', t),
    foreignKey({
      name: 'users_organization_fk',
      columns: [t.organizationId],
      foreignColumns: [organizations.id],
    }).onDelete('cascade'),
    uniqueIndex('users_email_live_key')
      .on(t.organizationId, t.email)
      .where(sql`${t.deletedAt} is null`),
    index('users_organization_created_idx').on(t.organizationId, t.createdAt),
    check('users_role_check', sql`${t.role} in ('owner', 'admin', 'member')`),
    check('users_email_format', sql`char_length(${t.email}) <= 320 and ${t.email} ~ '^[^@[:space:]]+@[^@[:space:]]+$'`),
    check('users_name_length', sql`char_length(${t.name}) between 1 and 200`),
    tenantPolicy(),
  ],
)
