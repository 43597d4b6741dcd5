import { foreignKey, index, pgTable, type PgColumn, type PgTableExtraConfigValue } from 'drizzle-orm/pg-core'
import type { PgColumnBuilderBase, PgTable, PgTableWithColumns, TableConfig } from 'drizzle-orm/pg-core'
import { getTableName, sql, type BuildColumns, type BuildExtraConfigColumns } from 'drizzle-orm'
import { InvalidConfigurationError } from '../errors/usage-errors'
import { organizationId, primaryId, softDelete, tenantPolicy, tenantPrimaryKey, timestamps } from './columns'
import { organizations } from './organizations'
import { LIBRARY_TABLE_NAMES } from './table-names'

/**
 * The key under which a table made by {@link tenantTable} carries its {@link TenantTableInfo}: the unit's
 * drizzle handle (`tx.db`) writes only to tables carrying it. A string, not a symbol: an app's exported
 * tables then have declarations TypeScript can write, and `@callsheet/db/schema` and `@callsheet/db`
 * (separate bundles) agree on it.
 */
export const TENANT_TABLE = '~callsheetTenantTable'

/** What {@link tenantTable} records on a table it made. */
export interface TenantTableInfo {
  /** Whether rows are soft-deleted (`deleted_at`). */
  readonly softDelete: boolean
}

/** Options of {@link tenantTable}. */
export interface TenantTableOptions {
  /**
   * Whether the table has `deleted_at` and its rows are soft-deleted (`tenant.table(t).softDelete`).
   * @default true
   */
  readonly softDelete?: boolean
}

// organization_id defaults to the unit's tenant (`callsheet_tenant()`, NULL outside a unit, so NOT NULL
// refuses the row): raw SQL in a unit may leave it out; the unit's drizzle handle sets it anyway.
const baseColumns = () => ({
  id: primaryId(),
  organizationId: organizationId().default(sql`callsheet_tenant()`),
  ...timestamps(),
})
type BaseColumns = ReturnType<typeof baseColumns>
type SoftDeleteColumns = ReturnType<typeof softDelete>

/**
 * The columns an app gives, any but the ones every tenant table has: those keys are typed `never`. On the
 * parameter, not as `TColumns`' constraint: a constraint with optional `never` keys typed the extra-config
 * callback's `t` as `never` in every tenantTable call after a program's first.
 */
type AppColumns<TColumns> = TColumns & {
  readonly [K in keyof TColumns & (keyof BaseColumns | keyof SoftDeleteColumns)]: never
}

/** A table made by {@link tenantTable}. */
export type TenantTable<T extends TableConfig = TableConfig> = PgTable<T> & {
  readonly [TENANT_TABLE]: TenantTableInfo
}

type Built<TName extends string, TColumns extends Record<string, PgColumnBuilderBase>> = BuiltTable<{
  name: TName
  schema: undefined
  columns: BuildColumns<TName, TColumns, 'pg'>
  dialect: 'pg'
}>

type BuiltTable<T extends TableConfig> = PgTableWithColumns<T> & { readonly [TENANT_TABLE]: TenantTableInfo }

type ExtraConfig<TName extends string, TColumns extends Record<string, PgColumnBuilderBase>> = (
  self: BuildExtraConfigColumns<TName, TColumns, 'pg'>,
) => (PgTableExtraConfigValue | readonly PgTableExtraConfigValue[])[]

const RESERVED = new Set(['id', 'organizationId', 'createdAt', 'updatedAt', 'deletedAt'])
const RESERVED_SQL = new Set(['id', 'organization_id', 'created_at', 'updated_at', 'deleted_at'])
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/
const LIBRARY_NAMES = new Set(LIBRARY_TABLE_NAMES)

/**
 * A table of the app's own whose rows belong to tenants, shaped as the library's are: `id` (UUIDv7 from
 * the app, `gen_random_uuid()` for raw SQL), `organization_id` with a cascading foreign key to
 * `organizations`, `created_at`, `updated_at`, `deleted_at` (unless `softDelete: false`),
 * `PRIMARY KEY (organization_id, id)` — which {@link tenantReference}s to it need — and the library's
 * `tenant_isolation` policy. drizzle-kit generates it like any table; one more step in the app's
 * migrations, `SELECT callsheet_register_tenant_table('<name>')`, adds FORCE ROW LEVEL SECURITY, the
 * audit and `updated_at` triggers and the app role's grants (README "Your own tenant tables").
 *
 * @example
 * ```ts
 * import { contacts, tenantReference, tenantTable } from '@callsheet/db/schema'
 * export const callTimes = tenantTable('call_times', {
 *   contactId: uuid('contact_id').notNull(),
 *   callAt: timestamp('call_at', { withTimezone: true }).notNull(),
 * }, (t) => [...tenantReference(t.contactId, contacts, { onDelete: 'cascade' })])
 * ```
 * @throws InvalidConfigurationError on a name that is not a plain lower-case SQL name or is one of the
 *   library's tables, or a column that would replace one every tenant table has.
 */
export function tenantTable<TName extends string, TColumns extends Record<string, PgColumnBuilderBase>>(
  name: TName,
  columns: AppColumns<TColumns>,
  extraConfig?: ExtraConfig<TName, BaseColumns & SoftDeleteColumns & TColumns>,
  options?: TenantTableOptions & { readonly softDelete?: true },
): Built<TName, BaseColumns & SoftDeleteColumns & TColumns>
export function tenantTable<TName extends string, TColumns extends Record<string, PgColumnBuilderBase>>(
  name: TName,
  columns: AppColumns<TColumns>,
  extraConfig: ExtraConfig<TName, BaseColumns & TColumns> | undefined,
  options: TenantTableOptions & { readonly softDelete: false },
): Built<TName, BaseColumns & TColumns>
export function tenantTable(
  name: string,
  columns: Record<string, PgColumnBuilderBase>,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the overloads above type it
  extraConfig?: (self: any) => (PgTableExtraConfigValue | readonly PgTableExtraConfigValue[])[],
  options: TenantTableOptions = {},
): unknown {
  if (typeof name !== 'string' || !TABLE_NAME.test(name))
    throw new InvalidConfigurationError(`tenantTable: ${JSON.stringify(name)} is not a plain lower-case SQL name`)
  if (LIBRARY_NAMES.has(name))
    throw new InvalidConfigurationError(`tenantTable: '${name}' is one of the library's tables; choose another name`)
  for (const key of Object.keys(columns)) {
    const sqlName = (columns[key] as unknown as { config: { name: string } }).config.name || key
    if (RESERVED.has(key) || RESERVED_SQL.has(sqlName))
      throw new InvalidConfigurationError(
        `tenantTable('${name}'): column '${key}' is one every tenant table has already; remove it`,
      )
  }
  const withSoftDelete = options.softDelete !== false
  const table = pgTable(name, { ...baseColumns(), ...(withSoftDelete ? softDelete() : {}), ...columns }, (t) => [
    tenantPrimaryKey(name, t as never),
    foreignKey({
      name: `${name}_organization_fk`,
      columns: [t.organizationId as PgColumn],
      foreignColumns: [organizations.id],
    }).onDelete('cascade'),
    tenantPolicy(),
    ...(extraConfig ? extraConfig(t as Record<string, PgColumn>).flat() : []),
  ])
  Object.defineProperty(table, TENANT_TABLE, { value: { softDelete: withSoftDelete } satisfies TenantTableInfo })
  return table
}

/** A table rows can reference tenant-safely: it has `organization_id` and `id` (ours, or a {@link tenantTable}). */
interface ReferencedTable {
  readonly organizationId: PgColumn
  readonly id: PgColumn
}

/** Options of {@link tenantReference}. */
export interface TenantReferenceOptions {
  /** What deleting (purging) the referenced row does. @default 'no action' */
  readonly onDelete?: 'cascade' | 'restrict' | 'no action'
  /** Also index `(organization_id, <column>)`, as every foreign key of the library is. @default true */
  readonly index?: boolean
}

/**
 * A composite foreign key `(organization_id, <column>) → <target>(organization_id, id)`, named
 * `<table>_<column>_fk`, and (unless `index: false`) the index `<table>_<column>_idx` on
 * `(organization_id, <column>)`: the database refuses a reference to another tenant's row, which a plain
 * `<column> → id` key would accept. Spread it into the table's extra config. There is no `'set null'`:
 * drizzle would write `SET NULL` for both columns, and `organization_id` is NOT NULL.
 *
 * @example
 * ```ts
 * (t) => [...tenantReference(t.contactId, contacts, { onDelete: 'cascade' })]
 * ```
 * @throws InvalidConfigurationError when the column is not of a tenant table or a name exceeds 63 bytes.
 */
export function tenantReference(
  column: PgColumn,
  target: ReferencedTable,
  options: TenantReferenceOptions = {},
): PgTableExtraConfigValue[] {
  const own = column.table as unknown as Record<symbol, Record<string, PgColumn> | undefined>
  const organization = own[Symbol.for('drizzle:ExtraConfigColumns')]?.organizationId
  if (!organization)
    throw new InvalidConfigurationError(
      'tenantReference: the column must be one of a tenant table (with organizationId)',
    )
  const table = getTableName(column.table)
  const fkName = `${table}_${column.name}_fk`
  const indexName = `${table}_${column.name}_idx`
  for (const n of [fkName, indexName]) {
    if (Buffer.byteLength(n) > 63)
      throw new InvalidConfigurationError(`tenantReference: the name ${n} is longer than PostgreSQL's 63 bytes`)
  }
  const fk = foreignKey({
    name: fkName,
    columns: [organization, column],
    foreignColumns: [target.organizationId, target.id],
  })
  fk.onDelete(options.onDelete ?? 'no action')
  return options.index === false ? [fk] : [fk, index(indexName).on(organization, column)]
}
