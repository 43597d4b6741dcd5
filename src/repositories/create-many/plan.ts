import type { PgColumn, PgTable } from 'drizzle-orm/pg-core'
import { z } from 'zod'
import { InvalidStateError, ValidationError } from '../../errors'
import { RowValidator, rowsArray, validate } from '../../support/validate'
import type { EntityName } from '../../unit-of-work/hooks'
import type { TenantRuntime } from '../../unit-of-work/tenant-runtime'
import type { NaturalKey } from './batch-insert'

/** Options of `createMany`. */
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

const optionsSchema = z
  .object({
    onConflict: z.enum(['error', 'skip', 'update']).default('error'),
    chunkSize: z.number().int().min(1).max(100_000).default(10_000),
    onProgress: z.custom<(p: { done: number; total: number }) => void>((v) => typeof v === 'function').optional(),
    returning: z.enum(['rows', 'ids', 'count']).default('rows'),
    atomic: z.boolean().default(true),
  })
  .strict()

/** `createMany`'s options with their defaults. */
export type CreateManySettings = z.output<typeof optionsSchema>

/** What a batch is inserted into. */
export interface CreateManyTarget {
  readonly entity: EntityName
  readonly table: PgTable
  readonly idColumn: PgColumn
  readonly createSchema: z.ZodType
  /** The live-unique key `onConflict` resolves conflicts on; none means 'error' only. */
  readonly naturalKey?: NaturalKey | undefined
}

/**
 * How a batch is sent:
 * - `pipelined`: on a server, one transaction; chunk k+1 is validated, built and sent while the server
 *   still inserts chunk k.
 * - `atomic`: one transaction, every row validated first, chunks one after another.
 * - `chunked` (`atomic: false`): one transaction per chunk.
 */
type CreateManyStrategy = 'pipelined' | 'atomic' | 'chunked'

/** A checked batch: its settings, its strategy, and its rows chunk by chunk. */
export interface CreateManyPlan {
  readonly settings: CreateManySettings
  readonly strategy: CreateManyStrategy
  /** Rows to insert (after folding duplicate keys for `onConflict: 'update'`). */
  readonly total: number
  /** No hook needs the ids and no PartialBatchError must name them: count rows, return none. */
  readonly countOnly: boolean
  /** Where each chunk starts. */
  readonly starts: readonly number[]
  /** The validated rows of the chunk starting at `start`; `undefined` once any row so far was bad. */
  chunkAt(start: number): Record<string, unknown>[] | undefined
  /** The error naming every bad row seen so far, if any. */
  invalid(): ValidationError | undefined
}

/** Whether a hook takes part in each statement (and so must see chunks strictly one after another). */
const writeHook = (hook: { beforeWrite?: unknown; afterWrite?: unknown }) =>
  hook.beforeWrite !== undefined || hook.afterWrite !== undefined

/**
 * Checks the options and (unless pipelined) every row, and picks the strategy.
 * @throws ValidationError on any bad option, or on any bad row when not pipelined (nothing is written).
 */
export function planCreateMany(
  target: CreateManyTarget,
  runtime: TenantRuntime,
  inputs: unknown,
  options: unknown,
): CreateManyPlan {
  const settings = validate(optionsSchema, options, 'createMany options')
  const key = target.naturalKey
  if (settings.onConflict !== 'error' && !key) {
    throw new ValidationError(`${target.entity} have no natural key: onConflict must be 'error'`, [
      { path: ['onConflict'], message: 'not supported' },
    ])
  }
  if (!settings.atomic && runtime.inUnit) {
    throw new ValidationError('atomic: false cannot run inside transaction(): the transaction is atomic', [
      { path: ['atomic'], message: 'inside a transaction' },
    ])
  }
  const what = `${target.entity} rows`
  const all = rowsArray(inputs, what)
  const hooks = runtime.config.hooks
  // A failure in chunk k aborts k+1 too and the whole batch rolls back; a bad row in a later chunk
  // stops the sending, every row is still validated, and the error lists them all — nothing commits.
  // Write hooks see chunks strictly in order (a beforeWrite may depend on the previous afterWrite), and
  // 'update' needs every row first (the last occurrence of a key wins).
  const strategy: CreateManyStrategy = !settings.atomic
    ? 'chunked'
    : runtime.engine.kind === 'postgres' && !hooks.some(writeHook)
      ? 'pipelined'
      : 'atomic'
  const validator = new RowValidator(target.createSchema, all, what)
  let rows: Record<string, unknown>[] | undefined
  if (strategy !== 'pipelined' || settings.onConflict === 'update') {
    rows = validator.take(0, all.length) as Record<string, unknown>[] | undefined
    const invalid = validator.error()
    if (invalid) throw invalid
    if (!rows) throw new InvalidStateError(`${what}: row validation returned no rows and no error`)
    // ON CONFLICT DO UPDATE cannot touch one row twice in a statement: the last occurrence of a key wins.
    if (settings.onConflict === 'update' && key) rows = lastOfEachKey(rows, key.keyOf)
  }
  const total = rows ? rows.length : all.length
  const starts: number[] = []
  for (let start = 0; start < total; start += settings.chunkSize) starts.push(start)
  return {
    settings,
    strategy,
    total,
    countOnly: settings.returning === 'count' && hooks.length === 0 && settings.atomic,
    starts,
    chunkAt: (start) => {
      const end = Math.min(total, start + settings.chunkSize)
      return rows ? rows.slice(start, end) : (validator.take(start, end) as Record<string, unknown>[] | undefined)
    },
    invalid: () => validator.error(),
  }
}

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
