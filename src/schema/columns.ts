import { sql } from 'drizzle-orm'
import { customType, pgPolicy, pgRole, primaryKey, timestamp, uuid, type PgColumn } from 'drizzle-orm/pg-core'
import { uuidv7 } from 'uuidv7'

/**
 * The role tenant work runs as: not the owner, not a superuser, no BYPASSRLS. Created idempotently by
 * the first migration (roles are cluster-wide, so drizzle-kit must not emit `CREATE ROLE`).
 */
export const APP_ROLE = 'callsheet_app'

/** drizzle-kit handle for {@link APP_ROLE}; `.existing()` keeps `CREATE ROLE` out of generated SQL. */
export const appRole = pgRole(APP_ROLE).existing()

/** The transaction-local setting that carries the current tenant. */
export const TENANT_SETTING = 'app.organization_id'

/** The transaction-local setting that carries the proof of {@link TENANT_SETTING} (migration 0012). */
export const TENANT_PROOF_SETTING = 'app.tenant_proof'

/**
 * The tenant predicate every policy uses: `callsheet_tenant()` (migration 0012) returns the
 * organization of {@link TENANT_SETTING} only when {@link TENANT_PROOF_SETTING} proves it (an HMAC
 * of the deployment secret), else NULL — SQL injected into a unit can change the setting, not forge
 * its proof. `(select …)` so PostgreSQL evaluates it once per statement.
 */
export const POLICY_PREDICATE = '(select callsheet_tenant())'

/** Case-insensitive text (the `citext` extension), used for e-mail addresses. */
export const citext = customType<{ data: string; driverData: string }>({
  dataType: () => 'citext',
})

/**
 * The row id: UUIDv7 generated in the app (index locality), `gen_random_uuid()` for raw SQL. Not a
 * primary key by itself: a tenant table's key is `(organization_id, id)` ({@link tenantPrimaryKey}), so
 * that Citus can distribute it by `organization_id`; `organizations` adds `.primaryKey()`.
 */
export const primaryId = () =>
  uuid('id')
    .notNull()
    .defaultRandom()
    .$defaultFn(() => uuidv7())

/**
 * `PRIMARY KEY (organization_id, id)` named `<table>_pkey` (the name PostgreSQL would give it, which
 * error mapping and docs use). Leading with the distribution column is what Citus requires of every
 * PK/UNIQUE; the composite foreign keys `(organization_id, x_id)` reference it.
 */
export const tenantPrimaryKey = (table: string, t: { organizationId: PgColumn; id: PgColumn }) =>
  primaryKey({ name: `${table}_pkey`, columns: [t.organizationId, t.id] })

/** `organization_id uuid NOT NULL` — every tenant row names its tenant. */
export const organizationId = () => uuid('organization_id').notNull()

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

/** `created_at` / `updated_at`; `updated_at` is kept current by a database trigger on every UPDATE. */
export const timestamps = () => ({
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
})

/** `deleted_at`: NULL while the row is live. */
export const softDelete = () => ({
  deletedAt: timestamptz('deleted_at'),
})

/** A nullable timestamptz column. */
export const optionalTimestamp = (name: string) => timestamptz(name)

/** The tenant isolation policy (DESIGN): on all commands, both USING and WITH CHECK. */
export const tenantPolicy = (column = 'organization_id') =>
  pgPolicy('tenant_isolation', {
    as: 'permissive',
    for: 'all',
    to: 'public',
    using: sql.raw(`"${column}" = ${POLICY_PREDICATE}`),
    withCheck: sql.raw(`"${column}" = ${POLICY_PREDICATE}`),
  })
