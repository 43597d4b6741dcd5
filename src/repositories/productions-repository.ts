import { and, asc, count, eq, sql } from 'drizzle-orm'
import { z } from 'zod'
import { parseId } from '../support/ids'
import { contacts } from '../schema/contacts'
import { PRODUCTION_STATUSES, productions, type ProductionStatus } from '../schema/productions'
import type { Contact, Production } from '../schema/types'
import { uploads } from '../schema/uploads'
import { productionInsertSchema, productionUpdateSchema } from '../schema/zod'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { oneOrMany, optionalIdFilter, textFilter, type OneOrMany } from './filters'
import type { FindManyOptions, Page } from './keyset-page'
import { SoftDeleteRepository } from './soft-delete-repository'
import { liveCondition } from './soft-delete'
import { naturalKey } from './create-many/natural-key'

export type CreateProductionInput = z.input<typeof productionInsertSchema>
export type UpdateProductionInput = z.input<typeof productionUpdateSchema>
export interface ProductionFilter {
  readonly status?: OneOrMany<ProductionStatus>
  readonly code?: OneOrMany<string>
  readonly createdBy?: OneOrMany<string> | null
}
export type ProductionSort = 'createdAt' | 'updatedAt' | 'title' | 'status'

/** A production with its live contacts. */
export type ProductionWithContacts = Production & { readonly contacts: Contact[] }
/** A production with the number of its live contacts. */
export type ProductionWithContactCount = Production & { readonly contactCount: number }

const filterSchema = z
  .object({ status: oneOrMany(z.enum(PRODUCTION_STATUSES)), code: textFilter(50), createdBy: optionalIdFilter })
  .strict()

// Read from the schema once, not per repository (a tenant client, and so its repositories, is made per request).
const PRODUCTIONS_NATURAL_KEY = naturalKey(productions, 'productions_code_live_key', (row) =>
  typeof row.code === 'string' ? row.code : undefined,
)

/** Productions of the tenant. Soft-deleting one soft-deletes its contacts and uploads with it. */
export class ProductionsRepository extends SoftDeleteRepository<
  Production,
  CreateProductionInput,
  UpdateProductionInput,
  ProductionFilter,
  ProductionSort
> {
  constructor(runtime: TenantRuntime) {
    super(runtime, {
      entity: 'productions',
      table: productions,
      createSchema: productionInsertSchema,
      updateSchema: productionUpdateSchema,
      filterSchema,
      filterColumns: { status: productions.status, code: productions.code, createdBy: productions.createdBy },
      sortColumns: {
        createdAt: productions.createdAt,
        updatedAt: productions.updatedAt,
        title: productions.title,
        status: productions.status,
      },
      defaultSort: 'createdAt',
      naturalKey: PRODUCTIONS_NATURAL_KEY,
    })
  }

  /**
   * Soft-deletes the production and, in the same transaction, its live contacts and uploads — tagged,
   * so that `restore` brings back exactly those and not rows deleted earlier on their own.
   * @throws NotFoundError when no live production has this id for this tenant.
   */
  override async softDelete(id: string): Promise<Production> {
    return super.softDelete(id)
  }

  /**
   * Restores the production and exactly the contacts and uploads its soft delete took along.
   * @throws NotFoundError when no soft-deleted production has this id for this tenant.
   * @throws ConflictError when a live production now has the same code.
   */
  override async restore(id: string): Promise<Production> {
    return super.restore(id)
  }

  /**
   * Soft-deletes the production's live contacts and uploads, tagging them with it (`deleted_with`), or
   * restores exactly the ones so tagged.
   */
  protected override async cascade(bound: TenantRuntime, key: string, deleted: boolean): Promise<void> {
    for (const child of [contacts, uploads] as const) {
      await bound.write({
        entity: child === contacts ? 'contacts' : 'uploads',
        operation: deleted ? 'soft_delete' : 'restore',
        ids: [],
        values: [],
        statement: (db) =>
          db
            .update(child)
            .set(deleted ? { deletedAt: sql`now()`, deletedWith: key } : { deletedAt: null, deletedWith: null })
            .where(
              and(
                eq(child.organizationId, bound.organizationId),
                eq(child.productionId, key),
                deleted ? liveCondition(child.deletedAt) : eq(child.deletedWith, key),
              ),
            )
            .returning({ id: child.id }),
      })
    }
  }

  /**
   * A live production with its live contacts (ordered by name), in one query; `undefined` when it
   * does not exist for this tenant.
   * @throws ValidationError when `id` is not a UUID.
   */
  async findWithContacts(id: string): Promise<ProductionWithContacts | undefined> {
    const key = parseId(id)
    return this.runtime.read(async (db) => {
      const row = await db.query.productions.findFirst({
        where: and(
          eq(productions.organizationId, this.runtime.organizationId),
          eq(productions.id, key),
          liveCondition(productions.deletedAt),
        ),
        with: {
          contacts: {
            where: and(eq(contacts.organizationId, this.runtime.organizationId), liveCondition(contacts.deletedAt)),
            orderBy: [asc(contacts.name), asc(contacts.id)],
          },
        },
      })
      return row
    })
  }

  /**
   * A page of productions, each with its number of live contacts, in one query.
   * @throws ValidationError as `findMany`.
   */
  async findManyWithContactCounts(
    options: FindManyOptions<ProductionFilter, ProductionSort> = {},
  ): Promise<Page<ProductionWithContactCount>> {
    const contactCount = sql<number>`(${this.countContacts()})`.mapWith(Number).as('contact_count')
    return this.page<ProductionWithContactCount>(options, { contactCount })
  }

  private countContacts() {
    return sql`select ${count()} from ${contacts} where ${contacts.organizationId} = ${productions.organizationId} and ${contacts.productionId} = ${productions.id} and ${liveCondition(contacts.deletedAt)}`
  }
}
