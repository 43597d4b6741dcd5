import { and, asc, desc, eq, getTableColumns, sql } from 'drizzle-orm'
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
   * Minimum trigram similarity, 0–1, of the hits returned.
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

/** contacts.search's default threshold: pg_trgm's default `%` threshold, which the old search used. */
const DEFAULT_SEARCH_THRESHOLD = 0.3

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
   * Live contacts whose name is similar to `text` (pg_trgm similarity), best first: the `limit` names
   * nearest to `text` (a KNN scan of the tenant's part of the GiST trigram index, which stops after them),
   * of which those scoring at least `threshold` are returned. Hits of equal score come in id order;
   * which of several equal-scoring contacts make the cut at the limit is the index's choice.
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
    const threshold = input.threshold ?? DEFAULT_SEARCH_THRESHOLD
    return this.runtime.read(async (db) => {
      // The nearest `limit` names first (ORDER BY name <-> text: the index returns them in that order and the
      // LIMIT stops the scan), the threshold applied to those only. Both together in one WHERE would make the
      // scan read on past every name under the threshold, to the end of the tenant. The top `limit` of the
      // names at or over the threshold are exactly the ones over it among the nearest `limit`, so the result
      // is the one `name % text ORDER BY similarity DESC` gave, without its candidate rechecks.
      const nearest = db
        .select({
          ...getTableColumns(contacts),
          score: sql<number>`similarity(${contacts.name}, ${input.text})`.as('score'),
        })
        .from(contacts)
        .where(
          and(
            eq(contacts.organizationId, this.runtime.organizationId),
            liveCondition(contacts.deletedAt),
            productionId === undefined ? undefined : eq(contacts.productionId, productionId),
          ),
        )
        .orderBy(sql`${contacts.name} <-> ${input.text}`)
        .limit(input.limit)
        .as('nearest')
      const rows = await db
        .select()
        .from(nearest)
        .where(sql`${nearest.score} >= ${threshold}::float8`)
        .orderBy(desc(nearest.score), asc(nearest.id))
      return rows.map((row) => ({ ...row, score: Number(row.score) }))
    })
  }
}
