import { and, asc, eq, getTableColumns, isNotNull, isNull, sql, type SQL } from 'drizzle-orm'
import type { z } from 'zod'
import type { Db } from '../engine/engine'
import { parseId } from '../support/ids'
import { ConflictError, NotFoundError, ValidationError, isCallsheetDbError, mapDatabaseError } from '../errors'
import { organizations } from '../schema/organizations'
import type { Organization } from '../schema/types'
import { organizationInsertSchema, organizationUpdateSchema } from '../schema/zod'
import { newId } from '../unit-of-work/tenant-runtime'
import type { DeletedFilter, FindOptions, Page } from './tenant-repository'
import { decodeTimeCursor, encodeTimeCursor } from '../support/keyset-cursor'
import { validate, onlyKeys, shown } from '../support/validate'

export type CreateOrganizationInput = z.input<typeof organizationInsertSchema>
export type UpdateOrganizationInput = z.input<typeof organizationUpdateSchema>

/** Options of `organizations.list`. */
export interface ListOrganizationsOptions extends FindOptions {
  /** @default 50, at most 1000 */
  readonly limit?: number
  readonly cursor?: string
}

/** Where the organizations repository runs its statements. */
export interface OrganizationsAccess {
  /**
   * Runs `fn` in a unit of work as the app role, scoped to the organization `id` itself: the
   * organizations policy (`id` = the unit's tenant) then shows and lets it change that one row only.
   */
  unit<T>(id: string, readOnly: boolean, fn: (db: Db) => Promise<T>): Promise<T>
  /**
   * The owner's connection, for work across organizations (`list`).
   * @throws InvalidConfigurationError when the database has none (see `DatabaseConfig.admin`).
   */
  admin(operation: string): Db
}

/**
 * The tenants themselves, for sign-up, administration and jobs. Each operation on one organization
 * runs as the app role in a unit scoped to that organization (so the runtime login needs no privilege
 * of its own, and an organization's unit cannot reach another organization); `list`, which spans
 * organizations, runs on the owner's `admin` connection.
 */
export class OrganizationsRepository {
  constructor(private readonly access: OrganizationsAccess) {}

  /**
   * Creates an organization.
   * @throws UniqueViolationError when a live organization has the slug.
   * @throws ValidationError on bad input.
   */
  async create(input: CreateOrganizationInput): Promise<Organization> {
    const values = this.parse(organizationInsertSchema, input, 'organization') as z.output<
      typeof organizationInsertSchema
    >
    const id = values.id ?? newId()
    return this.run(id, false, async (db) => {
      const [row] = await db
        .insert(organizations)
        .values({ ...values, id })
        .returning()
      return row as Organization
    })
  }

  /** The organization, or `undefined`. @throws ValidationError when `id` is not a UUID. */
  async findById(id: string, options: FindOptions = {}): Promise<Organization | undefined> {
    const key = parseId(id)
    return this.run(key, true, async (db) => {
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
    return this.run(key, false, async (db) => {
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
    const rows = await this.runAdmin('organizations.list()', (db) =>
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
    return this.run(key, false, async (db) => {
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

  private async run<T>(id: string, readOnly: boolean, fn: (db: Db) => Promise<T>): Promise<T> {
    try {
      return await this.access.unit(id, readOnly, fn)
    } catch (error) {
      throw mapDatabaseError(error)
    }
  }

  private async runAdmin<T>(operation: string, fn: (db: Db) => Promise<T>): Promise<T> {
    const db = this.access.admin(operation)
    try {
      return await fn(db)
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
