import { sql } from 'drizzle-orm'
import { check, foreignKey, index, pgTable, text, unique, uuid } from 'drizzle-orm/pg-core'
import { optionalTimestamp, organizationId, primaryId, tenantPrimaryKey, tenantPolicy, timestamps } from './columns'
import { pgPolicy } from 'drizzle-orm/pg-core'
import { organizations } from './organizations'
import { users } from './users'

/**
 * API keys for machine access. Only the SHA-256 of the key is stored; `prefix` is the short, public
 * part shown in UIs to tell keys apart. Keys are revoked, not soft-deleted.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: primaryId(),
    organizationId: organizationId(),
    name: text('name').notNull(),
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull(),
    scopes: text('scopes')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    lastUsedAt: optionalTimestamp('last_used_at'),
    expiresAt: optionalTimestamp('expires_at'),
    revokedAt: optionalTimestamp('revoked_at'),
    createdBy: uuid('created_by'),
    ...timestamps(),
  },
  (t) => [
    tenantPrimaryKey('api_keys', t),
    foreignKey({
      name: 'api_keys_organization_fk',
      columns: [t.organizationId],
      foreignColumns: [organizations.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'api_keys_created_by_fk',
      columns: [t.organizationId, t.createdBy],
      foreignColumns: [users.organizationId, users.id],
    }),
    // The key names its organization (`csk_<org>_<secret>`), so a hash is looked up within it; unique
    // per organization because Citus refuses a UNIQUE without the distribution column.
    unique('api_keys_organization_key_hash_key').on(t.organizationId, t.keyHash),
    index('api_keys_organization_idx').on(t.organizationId, t.createdAt),
    index('api_keys_created_by_idx').on(t.organizationId, t.createdBy),
    check('api_keys_key_hash_format', sql`${t.keyHash} ~ '^[0-9a-f]{64}$'`),
    check('api_keys_prefix_format', sql`${t.prefix} ~ '^[A-Za-z0-9_]{4,32}$'`),
    check('api_keys_name_length', sql`char_length(${t.name}) between 1 and 200`),
    check('api_keys_scopes_count', sql`cardinality(${t.scopes}) <= 64`),
    tenantPolicy(),
    // Lets a key be verified before its tenant is proven, by whoever already holds the key: the row is
    // visible only to a transaction that set app.api_key_hash to its SHA-256. Reading, not writing.
    // Inline, not `(select …)`: Citus refuses subqueries in policies; current_setting is cheap.
    pgPolicy('api_key_verification', {
      as: 'permissive',
      for: 'select',
      to: 'public',
      using: sql.raw(`"key_hash" = nullif(current_setting('app.api_key_hash', true), '')`),
    }),
  ],
)
