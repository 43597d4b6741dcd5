import { and, asc, count, desc, eq, getTableColumns, isNotNull, isNull, sql, type SQL } from 'drizzle-orm'
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core'
import { z } from 'zod'
import type { EntityName } from '../unit-of-work/hooks'
import type { Db } from '../engine/engine'
import { parseId } from '../support/ids'
import { ConflictError, NotFoundError, PartialBatchError, ValidationError, isCallsheetDbError } from '../errors'
import { unnestSelect, type NaturalKey } from './create-many/batch-insert'
import type { ActiveUnit, TenantRuntime } from '../unit-of-work/tenant-runtime'
import { newId } from '../unit-of-work/tenant-runtime'
import { isPrintedTimestamptz } from '../support/keyset-cursor'
import { RowValidator, onlyKeys, rowsArray, shown, validate } from '../support/validate'

/** Which rows a read sees with respect to soft delete. */
export type DeletedFilter = 'exclude' | 'include' | 'only'

/** Options of single-row reads. */
export interface FindOptions {
  /**
   * Soft-deleted rows: hidden (`'exclude'`), shown too (`'include'`), or only them (`'only'`).
   * @default 'exclude'
   */
  readonly deleted?: DeletedFilter
}

/** Options of {@link TenantRepository.findMany}. */
export interface FindManyOptions<TFilter, TSort extends string> extends FindOptions {
  /** Equality filters (an array means any of) on the repository's filterable columns. */
  readonly where?: TFilter
  /** A column of the repository's sort allow-list. */
  readonly orderBy?: TSort
  /** @default 'asc' */
  readonly direction?: 'asc' | 'desc'
  /**
   * Page size, 1–1000.
   * @default 50
   */
  readonly limit?: number
  /** The `nextCursor` of the previous page; must be used with the same `orderBy` and `direction`. */
  readonly cursor?: string
}

/** One page of {@link TenantRepository.findMany}. */
export interface Page<TRow> {
  readonly rows: TRow[]
  /** Pass as `cursor` for the next page; `null` on the last page. */
  readonly nextCursor: string | null
}

/** Options of {@link TenantRepository.createMany}. */
export interface CreateManyOptions {
  /**
   * A row whose natural key (e.g. a contact's e-mail within its production) is already live:
   * `'error'` fails the batch, `'skip'` leaves the existing row, `'update'` overwrites it with the
   * supplied columns (within the batch, the last row of a key wins).
   * @default 'error'
   */
  readonly onConflict?: 'error' | 'skip' | 'update'
  /**
   * Rows per INSERT statement, 1–100,000. The parameter count does not depend on it.
   * @default 10000
   */
  readonly chunkSize?: number
  /** Called after each chunk (inside the transaction when atomic). A throw aborts the batch. */
  readonly onProgress?: (progress: { readonly done: number; readonly total: number }) => void
  /**
   * What to return: the inserted (or updated) rows, their ids, or how many.
   * @default 'rows'
   */
  readonly returning?: 'rows' | 'ids' | 'count'
  /**
   * `false` commits chunk by chunk; a failure then throws PartialBatchError naming what committed.
   * @default true
   */
  readonly atomic?: boolean
}

const createManyOptionsSchema = z
  .object({
    onConflict: z.enum(['error', 'skip', 'update']).default('error'),
    chunkSize: z.number().int().min(1).max(100_000).default(10_000),
    onProgress: z.custom<(p: { done: number; total: number }) => void>((v) => typeof v === 'function').optional(),
    returning: z.enum(['rows', 'ids', 'count']).default('rows'),
    atomic: z.boolean().default(true),
  })
  .strict()

/** Rows an INSERT without RETURNING wrote: postgres.js gives `count`, PGlite `affectedRows`. */
function affectedRows(result: unknown): number {
  const r = result as { count?: unknown; affectedRows?: unknown }
  const n = typeof r.count === 'number' ? r.count : r.affectedRows
  return typeof n === 'number' ? n : 0
}

/** Whether a hook takes part in each statement (and so must see chunks strictly one after another). */
const writeHook = (hook: { beforeWrite?: unknown; afterWrite?: unknown }) =>
  hook.beforeWrite !== undefined || hook.afterWrite !== undefined

function lastOfEachKey(
  rows: Record<string, unknown>[],
  keyOf: (row: Record<string, unknown>) => string | undefined,
): Record<string, unknown>[] {
  const last = new Map<string, number>()
  rows.forEach((row, i) => {
    const k = keyOf(row)
    if (k !== undefined) last.set(k, i)
  })
  return rows.filter((row, i) => {
    const k = keyOf(row)
    return k === undefined || last.get(k) === i
  })
}
const MAX_LIMIT = 1000
const DEFAULT_LIMIT = 50

/** What a repository is made of. Column maps use the Drizzle (camelCase) keys. */
export interface RepositoryDefinition<TFilter, TSort extends string> {
  readonly entity: EntityName
  readonly table: PgTable
  readonly softDelete: boolean
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

interface TenantColumns {
  id: PgColumn
  organizationId: PgColumn
  deletedAt?: PgColumn
  /** The parent whose soft delete took this row along (contacts, uploads). */
  deletedWith?: PgColumn
}

/**
 * The shared vocabulary of every tenant repository: `findById`, `getById`, `findMany`, `count`,
 * `create`, `createMany`, `update`, `softDelete`, `restore`, `purge`. Every query carries
 * `organization_id = <tenant>` and runs under row-level security as the app role.
 */
export class TenantRepository<TRow extends { id: string }, TCreate, TUpdate, TFilter, TSort extends string> {
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
  async findById(id: string, options: FindOptions = {}): Promise<TRow | undefined> {
    const key = parseId(id)
    onlyKeys(options, ['deleted'], 'findById options')
    const deleted = this.deletedOption(options.deleted)
    return this.runtime.read(async (db) => {
      const rows = await db
        .select()
        .from(this.def.table)
        .where(and(this.tenantScope(), eq(this.columns.id, key), this.deletedCondition(deleted)))
        .limit(1)
      return rows[0] as TRow | undefined
    })
  }

  /**
   * The row with this id.
   * @throws NotFoundError when it does not exist for this tenant.
   * @throws ValidationError when `id` is not a UUID.
   */
  async getById(id: string, options: FindOptions = {}): Promise<TRow> {
    const row = await this.findById(id, options)
    if (!row) throw new NotFoundError(this.def.entity, id)
    return row
  }

  /**
   * A page of rows, filtered and ordered on allow-listed columns, with keyset pagination.
   * @throws ValidationError on an unknown filter or sort column, a bad limit or a tampered cursor.
   */
  async findMany(options: FindManyOptions<TFilter, TSort> = {}): Promise<Page<TRow>> {
    return this.page<TRow>(options, {})
  }

  /** findMany with extra computed columns (one query). */
  protected async page<R extends { id: string }>(
    options: FindManyOptions<TFilter, TSort>,
    extra: Record<string, SQL.Aliased | SQL>,
  ): Promise<Page<R>> {
    onlyKeys(options, ['where', 'orderBy', 'direction', 'limit', 'cursor', 'deleted'], 'findMany options')
    const sortKey = options.orderBy ?? this.def.defaultSort
    const sortColumn =
      typeof sortKey === 'string' && Object.hasOwn(this.def.sortColumns, sortKey)
        ? (this.def.sortColumns as Record<string, PgColumn>)[sortKey]
        : undefined
    if (!sortColumn) {
      throw new ValidationError(
        `cannot order ${this.def.entity} by ${shown(sortKey)}: use one of ${Object.keys(this.def.sortColumns).join(', ')}`,
        [{ path: ['orderBy'], message: 'not a sortable column' }],
      )
    }
    const direction = options.direction ?? 'asc'
    if (direction !== 'asc' && direction !== 'desc') {
      throw new ValidationError(`direction must be 'asc' or 'desc'`, [{ path: ['direction'], message: 'invalid' }])
    }
    const limit = options.limit ?? DEFAULT_LIMIT
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_LIMIT}, got ${shown(limit)}`, [
        { path: ['limit'], message: 'out of range' },
      ])
    }
    const where = this.filterConditions(options.where)
    const deleted = this.deletedOption(options.deleted)
    const after =
      options.cursor === undefined ? undefined : this.cursorCondition(options.cursor, sortKey, direction, sortColumn)
    const order =
      direction === 'asc' ? [asc(sortColumn), asc(this.columns.id)] : [desc(sortColumn), desc(this.columns.id)]
    // The cursor carries the sort value as PostgreSQL prints it: a JS Date would drop the microseconds
    // of a timestamptz and page over rows twice.
    const cursorValue = sql<string>`(${sortColumn})::text`.as('__cursor')
    const rows = (await this.runtime.read((db) =>
      db
        .select({ ...getTableColumns(this.def.table), ...extra, [CURSOR_KEY]: cursorValue })
        .from(this.def.table)
        .where(and(this.tenantScope(), this.deletedCondition(deleted), ...where, after))
        .orderBy(...order)
        .limit(limit + 1),
    )) as unknown as R[]
    const hasMore = rows.length > limit
    if (hasMore) rows.pop()
    const last = rows.at(-1) as (R & { [CURSOR_KEY]?: string }) | undefined
    const nextCursor = hasMore && last ? encodeCursor(sortKey, direction, String(last[CURSOR_KEY]), last.id) : null
    for (const row of rows) delete (row as { [CURSOR_KEY]?: string })[CURSOR_KEY]
    return { rows, nextCursor }
  }

  /**
   * How many rows match.
   * @throws ValidationError on an unknown filter.
   */
  async count(options: Pick<FindManyOptions<TFilter, TSort>, 'where' | 'deleted'> = {}): Promise<number> {
    onlyKeys(options, ['where', 'deleted'], 'count options')
    const where = this.filterConditions(options.where)
    const deleted = this.deletedOption(options.deleted)
    const [row] = await this.runtime.read((db) =>
      db
        .select({ n: count() })
        .from(this.def.table)
        .where(and(this.tenantScope(), this.deletedCondition(deleted), ...where)),
    )
    return Number(row?.n ?? 0)
  }

  /**
   * Inserts one row for this tenant.
   * @throws ValidationError on bad input (nothing is written).
   * @throws ForeignKeyViolationError when a referenced row is not this tenant's.
   * @throws UniqueViolationError when a live row already has a unique value.
   */
  async create(input: TCreate): Promise<TRow> {
    const values = this.parseCreate(input, 'input')
    return this.runtime.write(async (db, unit) => {
      const [row] = await this.insertRows(db, unit, [values], 'create')
      return row as TRow
    })
  }

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
    const opts = validate(createManyOptionsSchema, options, 'createMany options')
    const key = this.def.naturalKey
    if (opts.onConflict !== 'error' && !key) {
      throw new ValidationError(`${this.def.entity} have no natural key: onConflict must be 'error'`, [
        { path: ['onConflict'], message: 'not supported' },
      ])
    }
    if (!opts.atomic && this.runtime.active) {
      throw new ValidationError('atomic: false cannot run inside transaction(): the transaction is atomic', [
        { path: ['atomic'], message: 'inside a transaction' },
      ])
    }
    const what = `${this.def.entity} rows`
    const all = rowsArray(inputs, what)
    const hooks = this.runtime.config.hooks
    // On a server, one transaction: chunk k+1 is validated, built and sent while the server still
    // inserts chunk k. A failure in k aborts k+1 too and the whole batch rolls back; a bad row in a
    // later chunk stops the sending, every row is still validated, and the error lists them all —
    // nothing commits. Write hooks see chunks strictly in order (a beforeWrite may depend on the
    // previous afterWrite), and 'update' needs every row first (the last occurrence of a key wins).
    const pipelined = opts.atomic && this.runtime.engine.kind === 'postgres' && !hooks.some(writeHook)
    const validator = new RowValidator(this.def.createSchema, all, what)
    let rows: Record<string, unknown>[] | undefined
    if (!pipelined || opts.onConflict === 'update') {
      rows = validator.take(0, all.length) as Record<string, unknown>[] | undefined
      const invalid = validator.error()
      if (invalid || !rows) throw invalid
      // ON CONFLICT DO UPDATE cannot touch one row twice in a statement: the last occurrence of a key wins.
      if (opts.onConflict === 'update' && key) rows = lastOfEachKey(rows, key.keyOf)
    }
    const total = rows ? rows.length : all.length
    // No hook needs the ids, nor a PartialBatchError (atomic: false names the committed ids): a count is
    // the statements' row count, with no RETURNING to send and parse.
    const countOnly = opts.returning === 'count' && hooks.length === 0 && opts.atomic
    const out: Record<string, unknown>[] = []
    let inserted = 0
    const result = (): TRow[] | string[] | number =>
      opts.returning === 'count' ? inserted : opts.returning === 'ids' ? out.map((r) => String(r.id)) : (out as TRow[])
    if (total === 0) return result()

    const insertChunk = async (db: Db, unit: ActiveUnit, chunk: readonly Record<string, unknown>[]) => {
      let count = 0
      const rows = await this.runtime.hooked(
        unit,
        { entity: this.def.entity, operation: 'create', ids: [], values: chunk },
        (v) => validate(this.def.createSchema, v, `${this.def.entity} input`) as Record<string, unknown>,
        async (values) => {
          // ON CONFLICT DO UPDATE sets the same columns for every row of a statement: rows that supply
          // different columns go in separate statements (consecutive runs keep the input order).
          const runs: (readonly Record<string, unknown>[])[] = []
          if (opts.onConflict !== 'update') runs.push(values)
          else {
            let last = ''
            for (const v of values) {
              const shape = Object.keys(v)
                .filter((k) => v[k] !== undefined)
                .sort()
                .join(',')
              if (runs.length === 0 || shape !== last) runs.push([])
              ;(runs.at(-1) as Record<string, unknown>[]).push(v)
              last = shape
            }
          }
          const results: Record<string, unknown>[] = []
          for (const run of runs) {
            const written = await insertRun(db, run)
            results.push(...written.rows)
            count += written.count
          }
          return results
        },
      )
      return { rows, count }
    }
    const insertRun = async (db: Db, values: readonly Record<string, unknown>[]) => {
      const insert = db.insert(this.def.table).select(unnestSelect(this.def.table, values, this.runtime.organizationId))
      const conflict =
        opts.onConflict === 'skip' && key
          ? insert.onConflictDoNothing({ target: [...key.columns], where: key.where })
          : opts.onConflict === 'update' && key
            ? insert.onConflictDoUpdate({
                target: [...key.columns],
                targetWhere: key.where,
                set: this.excludedSet(values, key),
              })
            : insert
      if (countOnly) return { rows: [], count: affectedRows(await conflict) }
      const returned = (
        opts.returning === 'rows' ? await conflict.returning() : await conflict.returning({ id: this.columns.id })
      ) as Record<string, unknown>[]
      return { rows: returned, count: returned.length }
    }
    const chunkAt = (start: number): Record<string, unknown>[] | undefined => {
      const end = Math.min(total, start + opts.chunkSize)
      return rows ? rows.slice(start, end) : (validator.take(start, end) as Record<string, unknown>[] | undefined)
    }

    let done = 0
    const collect = (chunk: readonly unknown[], written: { rows: Record<string, unknown>[]; count: number }) => {
      out.push(...written.rows)
      inserted += written.count
      done += chunk.length
      opts.onProgress?.({ done, total })
    }
    if (pipelined) {
      await this.runtime.write(async (db, unit) => {
        // A chunk sent behind a failed one fails with "transaction aborted"; awaiting in order
        // reports the first failure, the cause.
        type Sent = { chunk: readonly unknown[]; written: Promise<{ rows: Record<string, unknown>[]; count: number }> }
        let inFlight: Sent | undefined
        for (let start = 0; start < total; start += opts.chunkSize) {
          const chunk = chunkAt(start)
          if (!chunk) continue // a bad row: validate the rest, send nothing more
          const written = insertChunk(db, unit, chunk)
          written.catch(() => undefined) // awaited below, in order
          // Let the driver write this chunk before the next one is validated and built.
          await new Promise((resolve) => setImmediate(resolve))
          if (inFlight) collect(inFlight.chunk, await inFlight.written)
          inFlight = { chunk, written }
        }
        const invalid = validator.error()
        if (invalid) throw invalid
        if (inFlight) collect(inFlight.chunk, await inFlight.written)
      })
      return result()
    }
    const chunks: Record<string, unknown>[][] = []
    for (let start = 0; start < total; start += opts.chunkSize) chunks.push(chunkAt(start) as Record<string, unknown>[])
    if (opts.atomic) {
      await this.runtime.write(async (db, unit) => {
        for (const chunk of chunks) collect(chunk, await insertChunk(db, unit, chunk))
      })
      return result()
    }
    for (const chunk of chunks) {
      let written: { rows: Record<string, unknown>[]; count: number }
      try {
        written = await this.runtime.write((db, unit) => insertChunk(db, unit, chunk))
      } catch (error) {
        throw new PartialBatchError(
          done,
          out.map((r) => String(r.id)),
          error,
        )
      }
      collect(chunk, written)
    }
    return result()
  }

  /** `SET col = excluded.col` for every supplied column but the key, the id and the tenant. */
  private excludedSet(values: readonly Record<string, unknown>[], key: NaturalKey): Record<string, SQL> {
    const keyNames = new Set(key.columns.map((c) => c.name))
    const set: Record<string, SQL> = {}
    for (const [prop, column] of Object.entries(getTableColumns(this.def.table))) {
      if (prop === 'id' || prop === 'organizationId' || keyNames.has(column.name)) continue
      if (!values.some((v) => v[prop] !== undefined)) continue
      set[prop] = sql`excluded.${sql.identifier(column.name)}`
    }
    return set
  }

  /**
   * Changes a live row.
   * @throws NotFoundError when no live row has this id for this tenant.
   * @throws ValidationError on a bad id or patch (nothing is written).
   */
  async update(id: string, patch: TUpdate): Promise<TRow> {
    const key = parseId(id)
    const values = validate(this.def.updateSchema, patch, `${this.def.entity} update`) as Record<string, unknown>
    if (Object.keys(values).length === 0) {
      throw new ValidationError('nothing to update: the patch is empty', [{ path: [], message: 'empty patch' }])
    }
    return this.runtime.write(async (db, unit) => {
      const [row] = await this.runtime.hooked(
        unit,
        { entity: this.def.entity, operation: 'update', ids: [key], values: [values] },
        (v) => validate(this.def.updateSchema, v, `${this.def.entity} update`) as Record<string, unknown>,
        async ([v]) =>
          (await db
            .update(this.def.table)
            .set(v as never)
            .where(and(this.tenantScope(), eq(this.columns.id, key), this.liveCondition()))
            .returning()) as Record<string, unknown>[],
      )
      if (!row) throw new NotFoundError(this.def.entity, id)
      return row as unknown as TRow
    })
  }

  /**
   * Soft-deletes a live row: it stays, hidden from reads, until `restore` or `purge`.
   * @throws NotFoundError when no live row has this id for this tenant.
   */
  async softDelete(id: string): Promise<TRow> {
    const key = parseId(id)
    this.requireSoftDelete()
    return this.runtime.write(async (db, unit) => {
      const row = await this.softDeleteIn(db, unit, key)
      if (!row) throw new NotFoundError(this.def.entity, id)
      return row
    })
  }

  /**
   * Brings a soft-deleted row back.
   * @throws NotFoundError when no soft-deleted row has this id for this tenant.
   * @throws ConflictError when a live row now holds one of its unique values.
   */
  async restore(id: string): Promise<TRow> {
    const key = parseId(id)
    this.requireSoftDelete()
    try {
      return await this.runtime.write(async (db, unit) => {
        const row = await this.restoreIn(db, unit, key)
        if (!row) throw new NotFoundError(this.def.entity, id)
        return row
      })
    } catch (error) {
      if (isCallsheetDbError(error, 'UNIQUE_VIOLATION')) {
        throw new ConflictError(
          `cannot restore ${this.def.entity} ${id}: a live row already has the same unique value (${error.message})`,
          {
            cause: error,
          },
        )
      }
      throw error
    }
  }

  /**
   * Deletes a row for good (live or soft-deleted).
   * @throws NotFoundError when no row has this id for this tenant.
   * @throws ForeignKeyViolationError when other rows still reference it.
   */
  async purge(id: string): Promise<void> {
    const key = parseId(id)
    await this.runtime.write(async (db, unit) => {
      const rows = await this.runtime.hooked(
        unit,
        { entity: this.def.entity, operation: 'purge', ids: [key], values: [] },
        (v) => v,
        async () =>
          (await db
            .delete(this.def.table)
            .where(and(this.tenantScope(), eq(this.columns.id, key)))
            .returning({ id: this.columns.id })) as Record<string, unknown>[],
      )
      if (rows.length === 0) throw new NotFoundError(this.def.entity, id)
    })
  }

  // ---- building blocks for the entity repositories ----

  protected parseCreate(input: unknown, what: string): Record<string, unknown> {
    return this.parseCreateWith(this.def.createSchema, input, what)
  }

  protected parseCreateWith(schema: z.ZodType, input: unknown, what: string): Record<string, unknown> {
    return validate(schema, input, `${this.def.entity} ${what}`) as Record<string, unknown>
  }

  protected async insertRows(
    db: Db,
    unit: ActiveUnit,
    rows: readonly Record<string, unknown>[],
    operation: 'create',
  ): Promise<Record<string, unknown>[]> {
    return this.runtime.hooked(
      unit,
      { entity: this.def.entity, operation, ids: [], values: rows },
      (v) => validate(this.def.createSchema, v, `${this.def.entity} input`) as Record<string, unknown>,
      async (values) =>
        (await db
          .insert(this.def.table)
          .values(values.map((v) => ({ id: newId(), ...v, organizationId: this.runtime.organizationId })) as never)
          .returning()) as Record<string, unknown>[],
    )
  }

  protected softDeleteIn(db: Db, unit: ActiveUnit, key: string): Promise<TRow | undefined> {
    return this.setDeletedIn(db, unit, key, true)
  }

  protected restoreIn(db: Db, unit: ActiveUnit, key: string): Promise<TRow | undefined> {
    return this.setDeletedIn(db, unit, key, false)
  }

  private async setDeletedIn(db: Db, unit: ActiveUnit, key: string, deleted: boolean): Promise<TRow | undefined> {
    const deletedAt = this.columns.deletedAt as PgColumn
    const [row] = await this.runtime.hooked(
      unit,
      { entity: this.def.entity, operation: deleted ? 'softDelete' : 'restore', ids: [key], values: [] },
      (v) => v,
      async () =>
        (await db
          .update(this.def.table)
          // A row deleted or restored on its own is no longer part of a parent's cascade: the tag goes, or
          // a later restore of the parent would bring back a row that was since deleted on its own.
          .set({
            deletedAt: deleted ? sql`now()` : null,
            ...(this.columns.deletedWith ? { deletedWith: null } : {}),
          } as never)
          .where(and(this.tenantScope(), eq(this.columns.id, key), deleted ? isNull(deletedAt) : isNotNull(deletedAt)))
          .returning()) as Record<string, unknown>[],
    )
    return row as TRow | undefined
  }

  /** `organization_id = <tenant>`: the repository's half of the double enforcement (RLS is the other). */
  protected tenantScope(): SQL {
    return eq(this.columns.organizationId, this.runtime.organizationId)
  }

  protected liveCondition(): SQL | undefined {
    return this.columns.deletedAt ? isNull(this.columns.deletedAt) : undefined
  }

  protected deletedCondition(deleted: DeletedFilter): SQL | undefined {
    const column = this.columns.deletedAt
    if (!column || deleted === 'include') return undefined
    return deleted === 'only' ? isNotNull(column) : isNull(column)
  }

  protected deletedOption(deleted: unknown): DeletedFilter {
    if (deleted === undefined) return 'exclude'
    if (deleted !== 'exclude' && deleted !== 'include' && deleted !== 'only') {
      throw new ValidationError(`deleted must be 'exclude', 'include' or 'only'`, [
        { path: ['deleted'], message: 'invalid' },
      ])
    }
    if (!this.def.softDelete && deleted !== 'exclude') {
      throw new ValidationError(`${this.def.entity} are not soft-deleted`, [
        { path: ['deleted'], message: 'not supported' },
      ])
    }
    return deleted
  }

  protected filterConditions(where: unknown): SQL[] {
    if (where === undefined) return []
    const filter = validate(this.def.filterSchema, where, `${this.def.entity} filter`) as Record<string, unknown>
    const conditions: SQL[] = []
    for (const [key, value] of Object.entries(filter)) {
      if (value === undefined) continue
      const column = (this.def.filterColumns as Record<string, PgColumn>)[key]
      if (!column)
        throw new ValidationError(`cannot filter ${this.def.entity} by ${key}`, [
          { path: ['where', key], message: 'not filterable' },
        ])
      if (value === null) conditions.push(isNull(column))
      // `= any($1)` with one array parameter, not `in ($1, …, $n)`: the statement text stays the same
      // whatever the list's length, so each connection prepares it once.
      else if (Array.isArray(value)) conditions.push(sql`${column} = any(${sql.param(value)})`)
      else conditions.push(eq(column, value))
    }
    return conditions
  }

  private requireSoftDelete(): void {
    if (!this.def.softDelete) {
      throw new ValidationError(`${this.def.entity} are not soft-deleted`, [{ path: [], message: 'not supported' }])
    }
  }

  private cursorCondition(cursor: unknown, sortKey: string, direction: 'asc' | 'desc', column: PgColumn): SQL {
    const decoded = decodeCursor(cursor)
    if (decoded.s !== sortKey || decoded.d !== direction) {
      throw new ValidationError('cursor belongs to a different ordering', [
        { path: ['cursor'], message: 'ordering mismatch' },
      ])
    }
    const type = column.getSQLType()
    if (!cursorValueFits(type, decoded.v)) throw badCursor()
    // The cast names the column's own SQL type (from our schema, never from input).
    const op = direction === 'asc' ? sql`>` : sql`<`
    return sql`(${column}, ${this.columns.id}) ${op} (cast(${decoded.v}::text as ${sql.raw(type)}), ${decoded.id}::uuid)`
  }
}

const CURSOR_KEY = '__cursor'

/** Checks a cursor's sort value against its column type in JS, so a tampered one never reaches SQL. */
function cursorValueFits(type: string, value: string): boolean {
  if (value.includes('\u0000')) return false
  switch (type) {
    case 'timestamp with time zone':
      return isPrintedTimestamptz(value)
    case 'integer':
      return /^-?\d{1,10}$/.test(value) && Math.abs(Number(value)) <= 2_147_483_647
    case 'text':
    case 'citext':
      return true
    default:
      return false
  }
}

interface Cursor {
  s: string
  d: 'asc' | 'desc'
  v: string
  id: string
}

function encodeCursor(sortKey: string, direction: 'asc' | 'desc', value: string, id: string): string {
  const cursor: Cursor = { s: sortKey, d: direction, v: value, id }
  return Buffer.from(JSON.stringify(cursor)).toString('base64url')
}

function decodeCursor(cursor: unknown): Cursor {
  if (typeof cursor !== 'string' || cursor.length > 2000 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw badCursor()
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw badCursor()
  }
  const c = parsed as Partial<Cursor> | null
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.s !== 'string' ||
    (c.d !== 'asc' && c.d !== 'desc') ||
    typeof c.v !== 'string' ||
    c.v.length > 1000 ||
    typeof c.id !== 'string'
  ) {
    throw badCursor()
  }
  parseId(c.id, 'cursor id')
  return c as Cursor
}

const badCursor = () =>
  new ValidationError('cursor is not one this library issued', [{ path: ['cursor'], message: 'invalid cursor' }])
