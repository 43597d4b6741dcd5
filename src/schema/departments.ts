import { sql } from 'drizzle-orm'
import { check, foreignKey, index, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core'
import { organizationId, primaryId, tenantPrimaryKey, softDelete, tenantPolicy, timestamps } from './columns'
import { organizations } from './organizations'

/** Production departments (Camera, Grip, Art, …), shared by all productions of an organization. */
export const departments = pgTable(
  'departments',
  {
    id: primaryId(),
    organizationId: organizationId(),
    name: text('name').notNull(),
    code: text('code').notNull(),
    sortOrder: integer('sort_order').notNull().default(0),
    ...timestamps(),
    ...softDelete(),
  },
  (t) => [
    tenantPrimaryKey('departments', t),
    foreignKey({
      name: 'departments_organization_fk',
      columns: [t.organizationId],
      foreignColumns: [organizations.id],
    }).onDelete('cascade'),
    uniqueIndex('departments_code_live_key')
      .on(t.organizationId, t.code)
      .where(sql`${t.deletedAt} is null`),
    index('departments_organization_sort_idx').on(t.organizationId, t.sortOrder),
    check('departments_code_format', sql`${t.code} ~ '^[A-Za-z0-9_-]{1,50}$'`),
    check('departments_name_length', sql`char_length(${t.name}) between 1 and 200`),
    tenantPolicy(),
  ],
)
