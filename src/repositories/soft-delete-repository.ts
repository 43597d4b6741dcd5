import type { PgColumn } from 'drizzle-orm/pg-core'
import { NotFoundError } from '../errors'
import { parseId } from '../support/ids'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { restoring, setDeletedWrite } from './soft-delete'
import { BatchRepository } from './batch-repository'
import type { RepositoryDefinition } from './tenant-repository'

/**
 * A tenant repository whose rows are soft-deleted: it adds `softDelete` and `restore`. A repository
 * without soft delete (API keys are revoked) extends {@link TenantRepository} and so has neither.
 * Every soft-deletable entity also takes batches (it extends {@link BatchRepository}).
 */
export class SoftDeleteRepository<
  TRow extends { id: string },
  TCreate,
  TUpdate,
  TFilter,
  TSort extends string,
> extends BatchRepository<TRow, TCreate, TUpdate, TFilter, TSort> {
  /** The table's `deleted_at`, checked present when the repository is made. */
  private readonly deletedAt: PgColumn

  constructor(runtime: TenantRuntime, def: RepositoryDefinition<TFilter, TSort>) {
    super(runtime, def)
    if (!this.columns.deletedAt) throw new TypeError(`${def.entity} has no deleted_at column`)
    this.deletedAt = this.columns.deletedAt
  }

  /**
   * Soft-deletes a live row: it stays, hidden from reads, until `restore` or `purge`.
   * @throws NotFoundError when no live row has this id for this tenant.
   */
  async softDelete(id: string): Promise<TRow> {
    return this.setDeleted(id, true)
  }

  /**
   * Brings a soft-deleted row back.
   * @throws NotFoundError when no soft-deleted row has this id for this tenant.
   * @throws ConflictError when a live row now holds one of its unique values.
   */
  async restore(id: string): Promise<TRow> {
    return restoring(
      () => this.setDeleted(id, false),
      (cause) => `cannot restore ${this.def.entity} ${id}: a live row already has the same unique value (${cause})`,
    )
  }

  /**
   * What else a soft delete or restore of the row `key` changes, in the same unit, after the row itself
   * (a production takes its contacts and uploads along). Writes through `bound.write`.
   */
  protected async cascade(_bound: TenantRuntime, _key: string, _deleted: boolean): Promise<void> {}

  private async setDeleted(id: string, deleted: boolean): Promise<TRow> {
    const key = parseId(id)
    const columns = { id: this.columns.id, deletedAt: this.deletedAt, deletedWith: this.columns.deletedWith }
    return this.runtime.writeUnit(async (bound) => {
      const [row] = await bound.write(
        setDeletedWrite(this.def.entity, this.def.table, columns, this.tenantScope(), key, deleted),
      )
      if (!row) throw new NotFoundError(this.def.entity, id)
      await this.cascade(bound, key, deleted)
      return row as unknown as TRow
    })
  }
}
