import { and, asc, desc, eq, getTableColumns, sql } from 'drizzle-orm'
import { QueryBuilder } from 'drizzle-orm/pg-core'
import { z } from 'zod'
import { parseId, uuidSchema } from '../support/ids'
import { contacts } from '../schema/contacts'
import type { Contact } from '../schema/types'
import { contactInsertSchema, contactUpdateSchema } from '../schema/zod'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { idFilter, optionalIdFilter, textFilter, type OneOrMany } from './filters'
import { SoftDeleteRepository } from './soft-delete-repository'
import { validate } from '../support/validate'
import { liveCondition } from './soft-delete'
import { naturalKey } from './create-many/natural-key'
import { PreparedSelect } from './prepared-select'
import type { PreparedRead } from '../engine/engine'

export type CreateContactInput = z.input<typeof contactInsertSchema>
export type UpdateContactInput = z.input<typeof contactUpdateSchema>
export interface ContactFilter {
  readonly productionId?: OneOrMany<string>
  readonly departmentId?: OneOrMany<string> | null
  readonly uploadId?: OneOrMany<string> | null
  readonly email?: OneOrMany<string>
  readonly role?: OneOrMany<string>
}
export type ContactSort = 'createdAt' | 'updatedAt' | 'name'

/** Options of `contacts.search`. */
export interface ContactSearchOptions {
  /** Only contacts of this production. */
  readonly productionId?: string
  /**
   * At most this many results, 1–100.
   * @default 20
   */
  readonly limit?: number
  /**
   * Minimum trigram similarity, 0–1 (pg_trgm's `%` threshold for this search).
   * @default 0.3
   */
  readonly threshold?: number
}

/** A search hit: the contact and its similarity to the search text (0–1). */
export type ContactSearchHit = Contact & { readonly score: number }

const filterSchema = z
  .object({
    productionId: idFilter,
    departmentId: optionalIdFilter,
    uploadId: optionalIdFilter,
    email: textFilter(320),
    role: textFilter(200),
  })
  .strict()

const searchSchema = z
  .object({
    text: z
      .string()
      .transform((s) => s.trim())
      .pipe(z.string().min(1, 'search text must not be blank').max(200)),
    productionId: uuidSchema.optional(),
    limit: z.number().int().min(1).max(100).default(20),
    threshold: z.number().min(0).max(1).optional(),
  })
  .strict()

// Read from the schema once, not per repository (a tenant client, and so its repositories, is made per request).
const CONTACTS_NATURAL_KEY = naturalKey(contacts, 'contacts_email_live_key', (row) =>
  typeof row.email === 'string' ? `${String(row.productionId)}|${row.email.toLowerCase()}` : undefined,
)

/**
 * The search, built once per shape (with or without a production): sent as a prepared read, so BEGIN, the
 * settings, the threshold, the search (and, in its own unit, COMMIT) go in one packet and no query is built per
 * call. Its `%` takes the threshold from `pg_trgm.similarity_threshold`, set before every run of it.
 */
const searchSelects = new Map<boolean, PreparedSelect<ContactSearchHit>>()

function searchSelect(byProduction: boolean): PreparedSelect<ContactSearchHit> {
  let select = searchSelects.get(byProduction)
  if (!select) {
    const score = sql<number>`similarity(${contacts.name}, ${sql.placeholder('text')})`.mapWith(Number)
    const fields = { ...getTableColumns(contacts), score }
    const query = new QueryBuilder()
      .select(fields)
      .from(contacts)
      .where(
        and(
          eq(contacts.organizationId, sql.placeholder('organizationId')),
          liveCondition(contacts.deletedAt),
          sql`${contacts.name} % ${sql.placeholder('text')}`,
          byProduction ? eq(contacts.productionId, sql.placeholder('productionId')) : undefined,
        ),
      )
      .orderBy(desc(score), asc(contacts.id))
      .limit(sql.placeholder('limit'))
    select = new PreparedSelect<ContactSearchHit>(query, fields)
    searchSelects.set(byProduction, select)
  }
  return select
}

/** The default of `ContactSearchOptions.threshold` (pg_trgm's own default). */
const DEFAULT_THRESHOLD = 0.3

/**
 * The thresholds a search tries before the caller's, highest first (only those above it). The search at a
 * higher threshold is exact whenever it fills `limit`: every row of the true top `limit` then scores at least
 * that threshold, so all of them were among its candidates. Far fewer names reach the heap there (GIN admits a
 * row once its share of the query's trigrams reaches the threshold), so a common name's search stops early;
 * a search that does not fill `limit` is thrown away and the next rung runs. Rungs chosen from the search
 * bench's per-rung measurements (BENCHMARKS.md "search"): one rung at 0.6 beat 0.6 → 0.45 and 0.5.
 */
const LADDER = [0.6] as const

/**
 * Below this many query trigrams the ladder is skipped. A name reaches threshold t only if it has at most
 * (query trigrams ÷ t) trigrams of its own, so a 3–4 letter query (4–5 trigrams) fills the 0.6 rung only
 * where names of one short word abound: in the search bench it filled 7 times in 52 and the rung cost more
 * than it saved. A performance choice only: the result is exact either way.
 */
const LADDER_MIN_TRIGRAMS = 6

/** pg_trgm's count of the trigrams of `text`, near enough for {@link LADDER_MIN_TRIGRAMS}: each word of n letters gives n + 1. */
function trigramEstimate(text: string): number {
  let count = 0
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) count += [...word].length + 1
  return count
}

/**
 * `SET LOCAL pg_trgm.similarity_threshold` (migration 0016), so that on Citus it reaches the shards, where
 * `%` runs; it holds to the end of the unit (or of the caller's transaction).
 */
function thresholdRead(threshold: number): PreparedRead<void> {
  return {
    text: 'select public.callsheet_set_similarity_threshold($1)',
    params: [threshold.toFixed(6)],
    map: () => undefined,
  }
}

/** Crew and cast contacts of the tenant's productions. */
export class ContactsRepository extends SoftDeleteRepository<
  Contact,
  CreateContactInput,
  UpdateContactInput,
  ContactFilter,
  ContactSort
> {
  constructor(runtime: TenantRuntime) {
    super(runtime, {
      entity: 'contacts',
      table: contacts,
      createSchema: contactInsertSchema,
      updateSchema: contactUpdateSchema,
      filterSchema,
      filterColumns: {
        productionId: contacts.productionId,
        departmentId: contacts.departmentId,
        uploadId: contacts.uploadId,
        email: contacts.email,
        role: contacts.role,
      },
      sortColumns: { createdAt: contacts.createdAt, updatedAt: contacts.updatedAt, name: contacts.name },
      defaultSort: 'createdAt',
      naturalKey: CONTACTS_NATURAL_KEY,
    })
  }

  /**
   * Live contacts whose name is similar to `text` (pg_trgm), best first; served by the trigram index.
   *
   * @example
   * ```ts
   * const hits = await tenant.contacts.search('jon smth', { limit: 20 })
   * ```
   * @throws ValidationError on blank, over-long or NUL-bearing text, or a bad limit / threshold.
   */
  async search(text: string, options: ContactSearchOptions = {}): Promise<ContactSearchHit[]> {
    const input = validate(searchSchema, { text, ...options }, 'contact search')
    const productionId = input.productionId === undefined ? undefined : parseId(input.productionId, 'productionId')
    const threshold = input.threshold ?? DEFAULT_THRESHOLD
    const select = searchSelect(productionId !== undefined)
    const read = select.read({
      organizationId: this.runtime.organizationId,
      text: input.text,
      productionId,
      limit: input.limit,
    })
    return this.runtime.readUnit(async (unit) => {
      // Each rung is sent without waiting (one round trip per rung; the first goes with BEGIN and the
      // settings). A higher rung puts the caller's threshold back behind it, so that whatever runs after the
      // search in the unit (or the caller's transaction) sees the threshold the search was asked for.
      const runAt = async (rung: number): Promise<ContactSearchHit[]> => {
        const set = unit.readPrepared(thresholdRead(rung))
        const found = unit.readPrepared(read)
        const reset = rung === threshold ? undefined : unit.readPrepared(thresholdRead(threshold))
        set.catch(() => undefined)
        found.catch(() => undefined)
        reset?.catch(() => undefined)
        await set
        const rows = await found
        await reset
        return rows
      }
      const ladder = trigramEstimate(input.text) >= LADDER_MIN_TRIGRAMS ? LADDER : []
      for (const rung of ladder) {
        if (rung <= threshold) continue
        const rows = await runAt(rung)
        if (rows.length >= input.limit) return rows
      }
      return runAt(threshold)
    })
  }
}
