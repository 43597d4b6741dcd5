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
 * The search at the default threshold, built once per shape (with or without a production): sent as a prepared
 * read, so BEGIN, the settings, the search and its COMMIT go in one packet and no query is built per call. Through
 * Drizzle in a function unit, the COMMIT waited for the result: one more round trip per search, and under CPU
 * contention each costs a scheduling wait of the backend and of Node (the search bench's 2.5× over the hand SQL).
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
    if (input.threshold === undefined) {
      const select = searchSelect(productionId !== undefined)
      return this.runtime.readPrepared(
        select.read({
          organizationId: this.runtime.organizationId,
          text: input.text,
          productionId,
          limit: input.limit,
        }),
      )
    }
    return this.runtime.read(async (db) => {
      // The threshold is a SET LOCAL (migration 0016), so that on Citus it reaches the shards, where % runs.
      // The search is pipelined behind it (one round trip): once the driver has taken the SET (the next
      // macrotask), the search is sent; awaiting the SET first reports its failure, not the aborted search.
      let threshold: Promise<unknown> | undefined
      if (input.threshold !== undefined) {
        threshold = Promise.resolve(
          db.execute(sql`select public.callsheet_set_similarity_threshold(${input.threshold.toFixed(6)})`),
        )
        threshold.catch(() => undefined)
        await new Promise((resolve) => setImmediate(resolve))
      }
      const score = sql<number>`similarity(${contacts.name}, ${input.text})`.mapWith(Number)
      const rows = db
        .select({ ...getTableColumns(contacts), score })
        .from(contacts)
        .where(
          and(
            eq(contacts.organizationId, this.runtime.organizationId),
            liveCondition(contacts.deletedAt),
            sql`${contacts.name} % ${input.text}`,
            productionId === undefined ? undefined : eq(contacts.productionId, productionId),
          ),
        )
        .orderBy(desc(score), asc(contacts.id))
        .limit(input.limit)
      const found = Promise.resolve(rows)
      found.catch(() => undefined)
      await threshold
      return found
    })
  }
}
