import { and, eq, isNotNull, isNull, sql, type SQL } from 'drizzle-orm'
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core'
import { ConflictError, ValidationError, isCallsheetDbError } from '../errors'
import type { Db } from '../engine/engine'
import type { EntityName } from '../unit-of-work/hooks'
import type { WriteSpec } from '../unit-of-work/tenant-runtime'

/**
 * Soft delete, decided here: which rows a read sees (`deleted`), what "live" means, the statement that
 * deletes or restores a row, and the conflict a restore can meet. Tenant repositories
 * (soft-delete-repository.ts) and organizations use it; the cascade of a production to its contacts and
 * uploads (tagged `deleted_with`) is in productions-repository.ts.
 */

/** Which rows a read sees with respect to soft delete. */
export type DeletedFilter = 'exclude' | 'include' | 'only'

/**
 * Options of a single-row read. `D` is what `deleted` may be: a repository whose rows are never soft-deleted
 * (API keys) takes `'exclude'` only, so `deleted: 'include'` does not compile there.
 */
export interface FindOptions<D extends DeletedFilter = DeletedFilter> {
  /**
   * Soft-deleted rows: hidden (`'exclude'`), shown too (`'include'`), or only them (`'only'`).
   * @default 'exclude'
   */
  readonly deleted?: D
}

/**
 * The `deleted` option of a read, checked: only `'exclude'` (the default) where rows are never
 * soft-deleted (`deletedAt` is undefined).
 * @throws ValidationError on anything else.
 */
export function parseDeletedFilter(deleted: unknown, entity: string, deletedAt: PgColumn | undefined): DeletedFilter {
  if (deleted === undefined) return 'exclude'
  if (deleted !== 'exclude' && deleted !== 'include' && deleted !== 'only') {
    throw new ValidationError(`deleted must be 'exclude', 'include' or 'only'`, [
      { path: ['deleted'], message: 'invalid' },
    ])
  }
  if (!deletedAt && deleted !== 'exclude') {
    throw new ValidationError(`${entity} are not soft-deleted`, [{ path: ['deleted'], message: 'not supported' }])
  }
  return deleted
}

/** The condition a read adds for `deleted`; none where rows are never soft-deleted. */
export function deletedCondition(deletedAt: PgColumn | undefined, deleted: DeletedFilter): SQL | undefined {
  if (!deletedAt || deleted === 'include') return undefined
  return deleted === 'only' ? isNotNull(deletedAt) : isNull(deletedAt)
}

/** Live rows only: what writes other than `restore` and `purge` may touch. */
export const liveCondition = (deletedAt: PgColumn | undefined): SQL | undefined =>
  deletedCondition(deletedAt, 'exclude')

/** The columns of a soft-deletable table. */
export interface SoftDeleteColumns {
  readonly id: PgColumn
  readonly deletedAt: PgColumn
  /** The parent whose soft delete took this row along (contacts, uploads). */
  readonly deletedWith?: PgColumn | undefined
}

/**
 * The statement that soft-deletes (`deleted`) a live row, or restores a soft-deleted one, within
 * `scope` (the tenant), returning the row.
 */
export function setDeletedStatement(
  table: PgTable,
  columns: SoftDeleteColumns,
  scope: SQL | undefined,
  key: string,
  deleted: boolean,
): (db: Db) => Promise<Record<string, unknown>[]> {
  return async (db) =>
    db
      .update(table)
      // A row deleted or restored on its own is no longer part of a parent's cascade: the tag goes, or a
      // later restore of the parent would bring back a row that was since deleted on its own.
      .set({ deletedAt: deleted ? sql`now()` : null, ...(columns.deletedWith ? { deletedWith: null } : {}) })
      .where(and(scope, eq(columns.id, key), deleted ? isNull(columns.deletedAt) : isNotNull(columns.deletedAt)))
      .returning()
}

/** {@link setDeletedStatement} as a write the runtime runs between the hooks. */
export function setDeletedWrite(
  entity: EntityName,
  table: PgTable,
  columns: SoftDeleteColumns,
  scope: SQL,
  key: string,
  deleted: boolean,
): WriteSpec {
  return {
    entity,
    operation: deleted ? 'soft_delete' : 'restore',
    ids: [key],
    values: [],
    statement: setDeletedStatement(table, columns, scope, key, deleted),
  }
}

/**
 * Runs a restore, turning the unique violation met when a live row now holds one of the restored
 * row's unique values into a ConflictError with `message` (given the violation's own message).
 * @throws ConflictError
 */
export async function restoring<T>(restore: () => Promise<T>, message: (cause: string) => string): Promise<T> {
  try {
    return await restore()
  } catch (error) {
    if (isCallsheetDbError(error, 'UNIQUE_VIOLATION')) throw new ConflictError(message(error.message), { cause: error })
    throw error
  }
}
