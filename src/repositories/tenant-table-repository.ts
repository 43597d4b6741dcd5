import { getTableColumns, getTableName } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { createInsertSchema, createSelectSchema, createUpdateSchema } from 'drizzle-zod'
import { z } from 'zod'
import { InvalidConfigurationError } from '../errors'
import { TENANT_TABLE, type TenantTable, type TenantTableInfo } from '../schema/tenant-table'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { BatchRepository } from './batch-repository'
import type { OneOrMany } from './filters'
import { SoftDeleteRepository } from './soft-delete-repository'
import type { RepositoryDefinition } from './tenant-repository'

/** The columns of a tenant table the library sets: never in a create or an update. */
type Owned = 'organizationId' | 'createdAt' | 'updatedAt' | 'deletedAt'

/** A row of `T` as stored. */
export type TenantTableRow<T extends TenantTable> = T['$inferSelect'] & { id: string }
/** What `create` takes for `T`: its insert type without the columns the library sets. */
export type TenantTableCreate<T extends TenantTable> = Omit<T['$inferInsert'], Owned>
/** What `update` takes for `T`. */
export type TenantTableUpdate<T extends TenantTable> = Partial<Omit<T['$inferInsert'], Owned | 'id'>>
/**
 * Equality filters on `T`'s columns: a value, any of several, or `null` for a nullable column (JSON and
 * array columns are refused at run time with `ValidationError`).
 */
export type TenantTableFilter<T extends TenantTable> = {
  readonly [K in keyof T['$inferSelect']]?: OneOrMany<T['$inferSelect'][K]>
}
/** The columns `T`'s pages may be ordered by (keyset pagination needs NOT NULL ones). */
export type TenantTableSort<T extends TenantTable> = Extract<keyof T['$inferSelect'], string>

/** The repository of an app's tenant table with soft delete (see `tenant.table`). */
export type SoftDeleteTableRepository<T extends TenantTable> = SoftDeleteRepository<
  TenantTableRow<T>,
  TenantTableCreate<T>,
  TenantTableUpdate<T>,
  TenantTableFilter<T>,
  TenantTableSort<T>
>
/** The repository of an app's tenant table without soft delete (`tenantTable(…, { softDelete: false })`). */
export type PlainTableRepository<T extends TenantTable> = BatchRepository<
  TenantTableRow<T>,
  TenantTableCreate<T>,
  TenantTableUpdate<T>,
  TenantTableFilter<T>,
  TenantTableSort<T>
>
/** `tenant.table(t)`'s repository: with `softDelete`/`restore` exactly when `t` has soft delete. */
export type TenantTableRepository<T extends TenantTable> = T extends { [TENANT_TABLE]: unknown }
  ? 'deletedAt' extends keyof T['$inferSelect']
    ? SoftDeleteTableRepository<T>
    : PlainTableRepository<T>
  : never

const OWNED = { organizationId: true, createdAt: true, updatedAt: true, deletedAt: true } as const
// Column types keyset pagination and ORDER BY handle: scalars, not JSON or arrays.
const UNSORTABLE = new Set(['json', 'array', 'object', 'buffer', 'custom'])

/** The definition of a tenant table's repository, derived from its drizzle table (once per table). */
function definitionOf(table: TenantTable): RepositoryDefinition<Record<string, unknown>, string> {
  const columns = getTableColumns(table) as Record<string, PgColumn>
  const hasDeletedAt = 'deletedAt' in columns
  const owned = hasDeletedAt ? OWNED : { organizationId: true, createdAt: true, updatedAt: true }
  const insert = (createInsertSchema(table) as unknown as z.ZodObject).omit(owned as never).strict()
  const update = (createUpdateSchema(table) as unknown as z.ZodObject).omit({ ...owned, id: true } as never).strict()
  const select = (createSelectSchema(table) as unknown as z.ZodObject).shape as Record<string, z.ZodType>
  // Equality filters on scalar columns: a JSON or array value would be ambiguous with "any of".
  const scalar = Object.fromEntries(Object.entries(columns).filter(([, c]) => !UNSORTABLE.has(c.dataType)))
  const filterShape = Object.fromEntries(
    Object.keys(scalar).map((key) => [key, z.union([select[key]!, z.array(select[key]!).max(1000)]).optional()]),
  )
  const sortColumns = Object.fromEntries(
    Object.entries(columns).filter(([, c]) => c.notNull && !UNSORTABLE.has(c.dataType)),
  )
  return {
    entity: getTableName(table),
    table,
    createSchema: insert,
    updateSchema: update,
    filterSchema: z.object(filterShape).strict(),
    filterColumns: scalar,
    sortColumns,
    defaultSort: 'createdAt',
  }
}

const definitions = new WeakMap<TenantTable, RepositoryDefinition<Record<string, unknown>, string>>()

/**
 * The repository `tenant.table(t)` returns: the library's vocabulary (`findById`, `getById`, `findMany`
 * with equality filters on every scalar column and keyset pages on every NOT NULL scalar column, `count`,
 * `create`, `createMany`, `update`, `purge`, and `softDelete`/`restore` when the table has `deleted_at`),
 * validated with the table's drizzle-zod schemas, through the hooks, as the app role under RLS.
 * @throws InvalidConfigurationError when `table` was not made by `tenantTable`.
 */
export function tenantTableRepository<T extends TenantTable>(
  runtime: TenantRuntime,
  table: T,
): TenantTableRepository<T> {
  const info = (table as { [TENANT_TABLE]?: TenantTableInfo } | undefined)?.[TENANT_TABLE]
  if (info === undefined)
    throw new InvalidConfigurationError(
      'tenant.table(t) takes a table made with tenantTable() from @callsheet/db/schema; ' +
        "the library's own tables have their repositories (tenant.contacts, …)",
    )
  let def = definitions.get(table)
  if (!def) {
    def = definitionOf(table)
    definitions.set(table, def)
  }
  const repository = info.softDelete ? new SoftDeleteRepository(runtime, def) : new BatchRepository(runtime, def)
  return repository as unknown as TenantTableRepository<T>
}
