import { and, asc, eq, getTableColumns, isNotNull, isNull, sql, type SQL } from 'drizzle-orm'
import type { z } from 'zod'
import type { Db } from '../database/engine'
import { parseId } from '../database/tenant-context'
import { ConflictError, NotFoundError, ValidationError, isCallsheetDbError, mapDatabaseError } from '../errors'
import { organizations } from '../schema/organizations'
import type { Organization } from '../schema/types'
import { organizationInsertSchema, organizationUpdateSchema } from '../schema/zod'
import { newId } from '../tenant/runtime'
import type { DeletedFilter, FindOptions, Page } from './tenant-repository'
import { decodeTimeCursor, encodeTimeCursor } from './time-cursor'
import { validate, onlyKeys, shown } from './validate'

export type CreateOrganizationInput = z.input<typeof organizationInsertSchema>
export type UpdateOrganizationInput = z.input<typeof organizationUpdateSchema>

/** Options of `organizations.list`. */
export interface ListOrganizationsOptions extends FindOptions {
  /** @default 50, at most 1000 */
  readonly limit?: number
  readonly cursor?: string
}

/**
 * The tenants themselves — the one repository outside any tenant: it runs as the connecting (owner)
 * role, for sign-up, administration and jobs.
 */
export class OrganizationsRepository {
  constructor(private readonly db: () => Db) {}

  /**
   * Creates an organization.
   * @throws UniqueViolationError when a live organization has the slug.
   * @throws ValidationError on bad input.
   */
  async create(input: CreateOrganizationInput): Promise<Organization> {
    const values = this.parse(organizationInsertSchema, input, 'organization')
    return this.run(async (db) => {
      const [row] = await db
        .insert(organizations)
        .values({ id: newId(), ...(values as z.output<typeof organizationInsertSchema>) })
        .returning()
      return row as Organization
    })
  }

  /** The organization, or `undefined`. @throws ValidationError when `id` is not a UUID. */
  async findById(id: string, options: FindOptions = {}): Promise<Organization | undefined> {
    const key = parseId(id)
    return this.run(async (db) => {
      const [row] = await db
        .select()
        .from(organizations)
        .where(and(eq(organizations.id, key), deletedCondition(options.deleted)))
      return row
    })
  }

  /** The organization. @throws NotFoundError when it does not exist. */
  async getById(id: string, options: FindOptions = {}): Promise<Organization> {
    const row = await this.findById(id, options)
    if (!row) throw new NotFoundError('organizations', id)
    return row
  }

  /** Changes a live organization. @throws NotFoundError, ValidationError, UniqueViolationError. */
  async update(id: string, patch: UpdateOrganizationInput): Promise<Organization> {
    const key = parseId(id)
    const values = this.parse(organizationUpdateSchema, patch, 'organization update')
    if (Object.keys(values).length === 0)
      throw new ValidationError('nothing to update: the patch is empty', [{ path: [], message: 'empty patch' }])
    return this.run(async (db) => {
      const [row] = await db
        .update(organizations)
        .set(values)
        .where(and(eq(organizations.id, key), isNull(organizations.deletedAt)))
        .returning()
      if (!row) throw new NotFoundError('organizations', id)
      return row
    })
  }

  /** Soft-deletes an organization (its tenant data stays). @throws NotFoundError. */
  async softDelete(id: string): Promise<Organization> {
    return this.setDeleted(id, true)
  }

  /** Restores a soft-deleted organization. @throws NotFoundError, ConflictError when its slug is taken. */
  async restore(id: string): Promise<Organization> {
    try {
      return await this.setDeleted(id, false)
    } catch (error) {
      if (isCallsheetDbError(error, 'UNIQUE_VIOLATION')) {
        throw new ConflictError(`cannot restore organization ${id}: a live organization has its slug`, { cause: error })
      }
      throw error
    }
  }

  /** Organizations by creation time, with keyset pagination. */
  async list(options: ListOrganizationsOptions = {}): Promise<Page<Organization>> {
    onlyKeys(options, ['deleted', 'limit', 'cursor'], 'list options')
    const limit = options.limit ?? 50
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError(`limit must be an integer from 1 to 1000, got ${shown(limit)}`, [
        { path: ['limit'], message: 'out of range' },
      ])
    }
    let after: SQL | undefined
    if (options.cursor !== undefined) {
      const [at, id] = decodeTimeCursor(options.cursor)
      after = sql`(${organizations.createdAt}, ${organizations.id}) > (${at}::timestamptz, ${id}::uuid)`
    }
    // The cursor keeps created_at as PostgreSQL prints it (microseconds), not as a JS Date (milliseconds).
    const rows = await this.run((db) =>
      db
        .select({ ...getTableColumns(organizations), cursorAt: sql<string>`${organizations.createdAt}::text` })
        .from(organizations)
        .where(and(deletedCondition(options.deleted), after))
        .orderBy(asc(organizations.createdAt), asc(organizations.id))
        .limit(limit + 1),
    )
    const hasMore = rows.length > limit
    if (hasMore) rows.pop()
    const last = rows.at(-1)
    const nextCursor = hasMore && last ? encodeTimeCursor(last.cursorAt, last.id) : null
    return { rows: rows.map(({ cursorAt: _, ...row }) => row), nextCursor }
  }

  private async setDeleted(id: string, deleted: boolean): Promise<Organization> {
    const key = parseId(id)
    return this.run(async (db) => {
      const [row] = await db
        .update(organizations)
        .set({ deletedAt: deleted ? sql`now()` : null })
        .where(
          and(
            eq(organizations.id, key),
            deleted ? isNull(organizations.deletedAt) : isNotNull(organizations.deletedAt),
          ),
        )
        .returning()
      if (!row) throw new NotFoundError('organizations', id)
      return row
    })
  }

  private parse<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
    return validate(schema, input, what)
  }

  private async run<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    try {
      return await fn(this.db())
    } catch (error) {
      throw mapDatabaseError(error)
    }
  }
}

function deletedCondition(deleted: DeletedFilter | undefined): SQL | undefined {
  const mode = deleted ?? 'exclude'
  if (mode !== 'exclude' && mode !== 'include' && mode !== 'only') {
    throw new ValidationError(`deleted must be 'exclude', 'include' or 'only'`, [
      { path: ['deleted'], message: 'invalid' },
    ])
  }
  if (mode === 'include') return undefined
  return mode === 'only' ? isNotNull(organizations.deletedAt) : isNull(organizations.deletedAt)
}
