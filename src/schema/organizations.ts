import { sql } from 'drizzle-orm'
import { check, jsonb, pgPolicy, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core'
import { POLICY_PREDICATE, primaryId, softDelete, timestamps } from './columns'

/** Free-form per-organization settings. */
export type OrganizationSettings = Record<string, unknown>

/**
 * The tenants. Not a tenant table itself: created and listed by the privileged (owner) path; the app
 * role sees only the organization of the current tenant context.
 */
export const organizations = pgTable(
  'organizations',
  {
    id: primaryId().primaryKey(),
    name: text('name').notNull(),
    slug: text('slug').notNull(),
    settings: jsonb('settings').$type<OrganizationSettings>().notNull().default({}),
    ...timestamps(),
    ...softDelete(),
  },
  (t) => [
    uniqueIndex('organizations_slug_live_key')
      .on(t.slug)
      .where(sql`${t.deletedAt} is null`),
    check('organizations_slug_format', sql`${t.slug} ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(${t.slug}) <= 63`),
    check('organizations_name_length', sql`char_length(${t.name}) between 1 and 200`),
    pgPolicy('tenant_isolation', {
      as: 'permissive',
      for: 'all',
      to: 'public',
      using: sql.raw(`"id" = ${POLICY_PREDICATE}`),
      withCheck: sql.raw(`"id" = ${POLICY_PREDICATE}`),
    }),
  ],
)
