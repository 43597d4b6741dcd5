import { createMany } from './create-many/execute'
import type { CreateManyOptions } from './create-many/plan'
import { TenantRepository } from './tenant-repository'

/**
 * A tenant repository that can insert many rows at once: it adds `createMany`. API keys are issued one
 * `create` at a time (each plaintext must reach its owner), so their repository does not extend this and
 * has no `createMany` to call.
 */
export class BatchRepository<
  TRow extends { id: string },
  TCreate,
  TUpdate,
  TFilter,
  TSort extends string,
> extends TenantRepository<TRow, TCreate, TUpdate, TFilter, TSort> {
  /**
   * Inserts many rows. Every row is validated first — a ValidationError names each bad row by index
   * and nothing is written. Rows go in as `INSERT … SELECT … FROM unnest(…)`, one array parameter per
   * column, in chunks (default 10,000 rows), all in one transaction unless `atomic: false`.
   *
   * @example
   * ```ts
   * const ids = await tenant.contacts.createMany(rows, { onConflict: 'skip', returning: 'ids', onProgress })
   * ```
   * @throws ValidationError on any bad row or option (nothing is written).
   * @throws ForeignKeyViolationError / UniqueViolationError from the database (nothing is written).
   * @throws PartialBatchError with `atomic: false`, naming how many rows committed before the failure.
   */
  async createMany(inputs: readonly TCreate[], options?: CreateManyOptions & { returning?: 'rows' }): Promise<TRow[]>
  async createMany(inputs: readonly TCreate[], options: CreateManyOptions & { returning: 'ids' }): Promise<string[]>
  async createMany(inputs: readonly TCreate[], options: CreateManyOptions & { returning: 'count' }): Promise<number>
  async createMany(inputs: readonly TCreate[], options: CreateManyOptions = {}): Promise<TRow[] | string[] | number> {
    const target = {
      entity: this.def.entity,
      table: this.def.table,
      idColumn: this.columns.id,
      createSchema: this.def.createSchema,
      naturalKey: this.def.naturalKey,
    }
    return (await createMany(target, this.runtime, inputs, options)) as TRow[] | string[] | number
  }
}
