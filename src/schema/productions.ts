import { sql } from 'drizzle-orm'
import { check, date, foreignKey, index, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { organizationId, primaryId, tenantPrimaryKey, softDelete, tenantPolicy, timestamps } from './columns'
import { organizations } from './organizations'
import { users } from './users'

/** Where a production is in its life. */
export const PRODUCTION_STATUSES = [
  'development',
  'pre_production',
  'production',
  'post_production',
  'wrapped',
] as const
export type ProductionStatus = (typeof PRODUCTION_STATUSES)[number]

/** Films, series and shoots; contacts and uploads belong to one. */
export const productions = pgTable(
  'productions',
  {
    id: primaryId(),
    organizationId: organizationId(),
    title: text('title').notNull(),
    code: text('code'),
    status: text('status').$type<ProductionStatus>().notNull().default('development'),
    startDate: date('start_date', { mode: 'string' }),
    endDate: date('end_date', { mode: 'string' }),
    createdBy: uuid('created_by'),
    ...timestamps(),
    ...softDelete(),
  },
  (t) => [
    tenantPrimaryKey('productions', t),
    foreignKey({
      name: 'productions_organization_fk',
      columns: [t.organizationId],
      foreignColumns: [organizations.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'productions_created_by_fk',
      columns: [t.organizationId, t.createdBy],
      foreignColumns: [users.organizationId, users.id],
    }),
    uniqueIndex('productions_code_live_key')
      .on(t.organizationId, t.code)
      .where(sql`${t.deletedAt} is null and ${t.code} is not null`),
    index('productions_created_by_idx').on(t.organizationId, t.createdBy),
    index('productions_organization_created_idx').on(t.organizationId, t.createdAt),
    index('productions_title_trgm_idx').using('gin', t.organizationId, t.title.op('gin_trgm_ops')),
    check(
      'productions_status_check',
      sql`${t.status} in ('development', 'pre_production', 'production', 'post_production', 'wrapped')`,
    ),
    check(
      'productions_dates_check',
      sql`${t.endDate} is null or ${t.startDate} is null or ${t.endDate} >= ${t.startDate}`,
    ),
    check('productions_title_length', sql`char_length(${t.title}) between 1 and 300`),
    check('productions_code_format', sql`${t.code} is null or ${t.code} ~ '^[A-Za-z0-9_-]{1,50}$'`),
    tenantPolicy(),
  ],
)
