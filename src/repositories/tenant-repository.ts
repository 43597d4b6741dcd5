import { and, count, eq, getTableColumns, getTableName, sql, type SQL } from 'drizzle-orm'
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core'
import type { z } from 'zod'
import { NotFoundError, ValidationError } from '../errors'
import { parseId } from '../support/ids'
import { parsePageLimit } from '../support/limits'
import { onlyKeys, shown, validate } from '../support/validate'
import type { EntityName } from '../unit-of-work/hooks'
import type { TenantRuntime, WriteSpec } from '../unit-of-work/tenant-runtime'
import { newId } from '../unit-of-work/tenant-runtime'
import type { NaturalKey } from './create-many/batch-insert'
import { primaryKeyViolation } from './primary-key-violation'
import { byIdSelect, pageSelect } from './prepared-select'
import { filterCondition, parseFilters } from './filters'
import { keysetPage, keysetPosition, keysetQuery, type FindManyOptions, type Page } from './keyset-page'
import {
  deletedCondition,
  liveCondition,
  parseDeletedFilter,
  type DeletedFilter,
  type FindOptions,
} from './soft-delete'

/** What a repository is made of. Column maps use the Drizzle (camelCase) keys. */
export interface RepositoryDefinition<TFilter, TSort extends string> {
  readonly entity: EntityName
  readonly table: PgTable
  readonly createSchema: z.ZodType
  readonly updateSchema: z.ZodType
  readonly filterSchema: z.ZodType<TFilter>
  readonly filterColumns: { readonly [K in keyof TFilter]-?: PgColumn }
  /** NOT NULL columns only: keyset pagination cannot order by a nullable column. */
  readonly sortColumns: { readonly [K in TSort]: PgColumn }
  readonly defaultSort: TSort
  /** The live-unique key `createMany({ onConflict })` resolves conflicts on; none means 'error' only. */
  readonly naturalKey?: NaturalKey
}

/** The columns every tenant table has, and the soft-delete ones some have. */
export interface TenantColumns {
  readonly id: PgColumn
  readonly organizationId: PgColumn
  /** Present on soft-deletable tables only. */
  readonly deletedAt?: PgColumn
  /** The parent whose soft delete took this row along (contacts, uploads). */
  readonly deletedWith?: PgColumn
}

/**
 * The vocabulary every tenant repository shares: `findById`, `getById`, `findMany`, `count`, `create`,
 * `update`, `purge`. Capabilities some entities lack are subclasses, so they are absent from the others'
 * types: `createMany` (batch-repository.ts; API keys are issued one at a time) and `softDelete`/`restore`
 * (soft-delete-repository.ts; API keys are revoked). Every query carries `organization_id = <tenant>` and runs under row-level
 * security as the app role; every write goes through `runtime.write`, which runs the hooks.
 */
export class TenantRepository<
  TRow extends { id: string },
  TCreate,
  TUpdate,
  TFilter,
  TSort extends string,
  /** What the `deleted` read option may be: `'exclude'` only where rows are never soft-deleted. */
  TDeleted extends DeletedFilter = DeletedFilter,
> {
  protected readonly columns: TenantColumns

  constructor(
    protected readonly runtime: TenantRuntime,
    protected readonly def: RepositoryDefinition<TFilter, TSort>,
  ) {
    this.columns = getTableColumns(def.table) as unknown as TenantColumns
  }

  /**
   * The row with this id, or `undefined` when it does not exist for this tenant.
   * @throws ValidationError when `id` is not a UUID.
   */
  async findById(id: string, options: FindOptions<TDeleted> = {}): Promise<TRow | undefined> {
    const key = parseId(id)
    onlyKeys(options, ['deleted'], 'findById options')
    const deleted = parseDeletedFilter(options.deleted, this.def.entity, this.columns.deletedAt)
    const select = byIdSelect(this.def.table, this.columns, deleted)
    const rows = await this.runtime.readPrepared(select.read({ organizationId: this.runtime.organizationId, id: key }))
    return rows[0] as TRow | undefined
  }

  /**
   * The row with this id.
   * @throws NotFoundError when it does not exist for this tenant.
   * @throws ValidationError when `id` is not a UUID.
   */
  async getById(id: string, options: FindOptions<TDeleted> = {}): Promise<TRow> {
    const row = await this.findById(id, options)
    if (!row) throw new NotFoundError(this.def.entity, id)
    return row
  }

  /**
   * A page of rows, filtered and ordered on allow-listed columns, with keyset pagination.
   * @throws ValidationError on an unknown filter or sort column, a bad limit or a tampered cursor.
   */
  async findMany(options: FindManyOptions<TFilter, TSort, TDeleted> = {}): Promise<Page<TRow>> {
    return this.page<TRow>(options, {})
  }

  /** findMany with extra computed columns (one query). */
  protected async page<R extends { id: string }>(
    options: FindManyOptions<TFilter, TSort, TDeleted>,
    extra: Record<string, SQL.Aliased | SQL>,
  ): Promise<Page<R>> {
    onlyKeys(options, ['where', 'orderBy', 'direction', 'limit', 'cursor', 'deleted'], 'findMany options')
    const sort = options.orderBy ?? this.def.defaultSort
    const column =
      typeof sort === 'string' && Object.hasOwn(this.def.sortColumns, sort)
        ? (this.def.sortColumns as Record<string, PgColumn>)[sort]
        : undefined
    if (!column) {
      throw new ValidationError(
        `cannot order ${this.def.entity} by ${shown(sort)}: use one of ${Object.keys(this.def.sortColumns).join(', ')}`,
        [{ path: ['orderBy'], message: 'not a sortable column' }],
      )
    }
    const direction = options.direction ?? 'asc'
    if (direction !== 'asc' && direction !== 'desc') {
      throw new ValidationError(`direction must be 'asc' or 'desc'`, [{ path: ['direction'], message: 'invalid' }])
    }
    const limit = parsePageLimit(options.limit)
    const filters = parseFilters(this.def, options.where)
    const deletedFilter = parseDeletedFilter(options.deleted, this.def.entity, this.columns.deletedAt)
    const deleted = deletedCondition(this.columns.deletedAt, deletedFilter)
    const keyset = { sort, column, idColumn: this.columns.id, direction, limit, cursor: options.cursor }
    if (Object.keys(extra).length === 0) {
      // A statement built once per shape (issue 20): only the values change from call to call.
      const position = keysetPosition(keyset)
      const select = pageSelect(this.def.table, this.columns, deleted, deletedFilter, filters, keyset, !!position)
      const values: Record<string, unknown> = {
        organizationId: this.runtime.organizationId,
        fetch: limit + 1,
        ...(position ? { cursorValue: position.value, cursorId: position.id } : {}),
      }
      filters.forEach((f, i) => (values[`f${i}`] = f.value))
      return keysetPage<R>(keyset, await this.runtime.readPrepared(select.read(values)))
    }
    const where = filters.map(filterCondition)
    const query = keysetQuery(keyset)
    const rows = await this.runtime.read((db) =>
      db
        .select({ ...getTableColumns(this.def.table), ...extra, ...query.select })
        .from(this.def.table)
        .where(and(this.tenantScope(), deleted, ...where, query.after))
        .orderBy(...query.orderBy)
        .limit(query.fetch),
    )
    return keysetPage<R>(keyset, rows)
  }

  /**
   * How many rows match.
   * @throws ValidationError on an unknown filter.
   */
  async count(options: Pick<FindManyOptions<TFilter, TSort, TDeleted>, 'where' | 'deleted'> = {}): Promise<number> {
    onlyKeys(options, ['where', 'deleted'], 'count options')
    const where = this.filterConditions(options.where)
    const deleted = this.deletedCondition(options.deleted)
    const [row] = await this.runtime.read((db) =>
      db
        .select({ n: count() })
        .from(this.def.table)
        .where(and(this.tenantScope(), deleted, ...where)),
    )
    return Number(row?.n ?? 0)
  }

  /**
   * Inserts one row for this tenant.
   *
   * With an `id` chosen by the caller the create is idempotent, so that `withRetry` may repeat it after a
   * connection lost during `COMMIT` (the first attempt may have committed): when this tenant already has a
   * live row with that id and every column the input gives holds the value this create would store, that
   * row is returned and nothing is written (no second row, no audit row; the hooks see the row as written,
   * since the first attempt's `afterCommit` may never have run). Another tenant's row with the same id does
   * not matter.
   *
   * @example
   * ```ts
   * const id = randomUUID() // node:crypto; once, before the first attempt
   * const contact = await withRetry(() => tenant.contacts.create({ id, productionId, name: 'Jon Smith' }))
   * ```
   * @throws ValidationError on bad input (nothing is written).
   * @throws ForeignKeyViolationError when a referenced row is not this tenant's.
   * @throws UniqueViolationError when a live row already has a unique value; with a given `id`, also when
   * this tenant's row with that id differs from the input or is soft-deleted (`constraint` `<table>_pkey`).
   */
  async create(input: TCreate): Promise<TRow> {
    const values = this.parseCreate(input, 'input')
    const write = values.id === undefined ? this.insertWrite([values]) : this.idempotentInsertWrite(values)
    const [row] = await this.runtime.write(write)
    return row as TRow
  }

  /**
   * Changes a live row.
   * @throws NotFoundError when no live row has this id for this tenant.
   * @throws ValidationError on a bad id or patch (nothing is written).
   */
  async update(id: string, patch: TUpdate): Promise<TRow> {
    const key = parseId(id)
    const what = `${this.def.entity} update`
    const values = validate(this.def.updateSchema, patch, what) as Record<string, unknown>
    if (Object.keys(values).length === 0) {
      throw new ValidationError('nothing to update: the patch is empty', [{ path: [], message: 'empty patch' }])
    }
    const [row] = await this.runtime.write({
      entity: this.def.entity,
      operation: 'update',
      ids: [key],
      values: [values],
      revalidate: (v) => validate(this.def.updateSchema, v, what) as Record<string, unknown>,
      statement: async (db, [v]) =>
        (await db
          .update(this.def.table)
          .set(v as never)
          .where(and(this.tenantScope(), eq(this.columns.id, key), this.liveCondition()))
          .returning()) as Record<string, unknown>[],
      noRows: () => new NotFoundError(this.def.entity, id),
    })
    return row as unknown as TRow
  }

  /**
   * Deletes a row for good (live or soft-deleted).
   * @throws NotFoundError when no row has this id for this tenant.
   * @throws ForeignKeyViolationError when other rows still reference it.
   */
  async purge(id: string): Promise<void> {
    const key = parseId(id)
    await this.runtime.write({
      entity: this.def.entity,
      operation: 'purge',
      ids: [key],
      values: [],
      statement: async (db) =>
        (await db
          .delete(this.def.table)
          .where(and(this.tenantScope(), eq(this.columns.id, key)))
          .returning({ id: this.columns.id })) as Record<string, unknown>[],
      noRows: () => new NotFoundError(this.def.entity, id),
    })
  }

  // ---- building blocks for the entity repositories ----

  protected parseCreate(input: unknown, what: string): Record<string, unknown> {
    return this.parseCreateWith(this.def.createSchema, input, what)
  }

  protected parseCreateWith(schema: z.ZodType, input: unknown, what: string): Record<string, unknown> {
    return validate(schema, input, `${this.def.entity} ${what}`) as Record<string, unknown>
  }

  /** The write inserting validated rows one statement (`create`). */
  protected insertWrite(rows: readonly Record<string, unknown>[]): WriteSpec {
    return {
      entity: this.def.entity,
      operation: 'insert',
      ids: [],
      values: rows,
      revalidate: (v) => validate(this.def.createSchema, v, `${this.def.entity} input`) as Record<string, unknown>,
      statement: async (db, values) =>
        db
          .insert(this.def.table)
          .values(values.map((v) => ({ id: newId(), ...v, organizationId: this.runtime.organizationId })) as never)
          .returning(),
    }
  }

  /**
   * The write of `create` with a caller-given id: `INSERT … ON CONFLICT (organization_id, id) DO NOTHING
   * RETURNING *`, and when it inserted nothing, this tenant's live row with that id whose given columns
   * equal the values inserted (compared in SQL as the insert would store them: numeric scale, jsonb
   * normalisation, date forms), in the same unit. Neither: the UNIQUE_VIOLATION a plain INSERT would raise.
   */
  protected idempotentInsertWrite(given: Record<string, unknown>): WriteSpec {
    const insert = this.insertWrite([given])
    const table = this.def.table
    const columns = getTableColumns(table) as Record<string, PgColumn>
    const givenKeys = Object.keys(given).filter((k) => k !== 'id' && given[k] !== undefined && columns[k])
    return {
      ...insert,
      statement: async (db, [v]) => {
        const row = { id: newId(), ...v, organizationId: this.runtime.organizationId }
        const inserted = (await db
          .insert(table)
          .values(row as never)
          .onConflictDoNothing({ target: [this.columns.organizationId, this.columns.id] })
          .returning()) as Record<string, unknown>[]
        if (inserted.length > 0) return inserted
        const same = givenKeys.map((k) => storedEquals(columns[k] as PgColumn, row[k as keyof typeof row]))
        const existing = (await db
          .select()
          .from(table)
          .where(and(this.tenantScope(), eq(this.columns.id, row.id), this.liveCondition(), ...same))
          .limit(1)) as Record<string, unknown>[]
        if (existing.length > 0) return existing
        throw primaryKeyViolation(
          getTableName(table),
          'this id is already a row of this organization: soft-deleted, or with other values than this create',
        )
      },
    }
  }

  /** `organization_id = <tenant>`: the repository's half of the double enforcement (RLS is the other). */
  protected tenantScope(): SQL {
    return eq(this.columns.organizationId, this.runtime.organizationId)
  }

  /** Live rows only (all rows of a table without soft delete). */
  protected liveCondition(): SQL | undefined {
    return liveCondition(this.columns.deletedAt)
  }

  /** The read condition for a `deleted` option (see soft-delete.ts). */
  private deletedCondition(deleted: unknown): SQL | undefined {
    return deletedCondition(
      this.columns.deletedAt,
      parseDeletedFilter(deleted, this.def.entity, this.columns.deletedAt),
    )
  }

  protected filterConditions(where: unknown): SQL[] {
    return parseFilters(this.def, where).map(filterCondition)
  }
}

/**
 * The stored value equals the value an insert of `value` would store: both sides cast to the column's type
 * (numeric scale, jsonb normalisation), then compared as text (citext's case counts; null equals null).
 */
function storedEquals(column: PgColumn, value: unknown): SQL {
  const type = sql.raw(column.getSQLType())
  return sql`${column}::text is not distinct from cast(${sql.param(value, column)} as ${type})::text`
}
