import { and, eq, getTableColumns } from 'drizzle-orm'
import type { z } from 'zod'
import type { Db } from '../engine/engine'
import { parseId } from '../support/ids'
import { NotFoundError, ValidationError, mapDatabaseError } from '../errors'
import { organizations } from '../schema/organizations'
import type { Organization } from '../schema/types'
import { organizationInsertSchema, organizationUpdateSchema } from '../schema/zod'
import { newId } from '../unit-of-work/tenant-runtime'
import { parsePageLimit } from '../support/limits'
import { validate, onlyKeys } from '../support/validate'
import { keysetPage, keysetQuery, type Page } from './keyset-page'
import {
  deletedCondition,
  liveCondition,
  parseDeletedFilter,
  restoring,
  setDeletedStatement,
  type FindOptions,
} from './soft-delete'

export type CreateOrganizationInput = z.input<typeof organizationInsertSchema>
export type UpdateOrganizationInput = z.input<typeof organizationUpdateSchema>

/** Options of `organizations.findMany`. */
export interface FindManyOrganizationsOptions extends FindOptions {
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
   * The owner's connection, for work across organizations (`findMany`).
   * @throws InvalidConfigurationError when the database has none (see `DatabaseConfig.admin`).
   */
  admin(operation: string): Db
}

/**
 * The tenants themselves, for sign-up, administration and jobs. Each operation on one organization
 * runs as the app role in a unit scoped to that organization (so the runtime login needs no privilege
 * of its own, and an organization's unit cannot reach another organization); `findMany`, which spans
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
    const values = this.parse(organizationInsertSchema, input, 'organization')
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
        .where(and(eq(organizations.id, key), deleted(options.deleted)))
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
        .where(and(eq(organizations.id, key), liveCondition(organizations.deletedAt)))
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
    return restoring(
      () => this.setDeleted(id, false),
      () => `cannot restore organization ${id}: a live organization has its slug`,
    )
  }

  /** Organizations by creation time, with keyset pagination. */
  async findMany(options: FindManyOrganizationsOptions = {}): Promise<Page<Organization>> {
    onlyKeys(options, ['deleted', 'limit', 'cursor'], 'findMany options')
    const limit = parsePageLimit(options.limit)
    const keyset = {
      sort: 'createdAt',
      column: organizations.createdAt,
      idColumn: organizations.id,
      direction: 'asc',
      limit,
      cursor: options.cursor,
    } as const
    const query = keysetQuery(keyset)
    const rows = await this.runAdmin('organizations.findMany()', (db) =>
      db
        .select({ ...getTableColumns(organizations), ...query.select })
        .from(organizations)
        .where(and(deleted(options.deleted), query.after))
        .orderBy(...query.orderBy)
        .limit(query.fetch),
    )
    return keysetPage<Organization>(keyset, rows)
  }

  private async setDeleted(id: string, deleted: boolean): Promise<Organization> {
    const key = parseId(id)
    return this.run(key, false, async (db) => {
      const [row] = await setDeletedStatement(organizations, organizations, undefined, key, deleted)(db)
      if (!row) throw new NotFoundError('organizations', id)
      return row as Organization
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

/** The read condition for a `deleted` option. */
const deleted = (filter: unknown) =>
  deletedCondition(organizations.deletedAt, parseDeletedFilter(filter, 'organizations', organizations.deletedAt))
