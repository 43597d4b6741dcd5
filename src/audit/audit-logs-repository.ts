import { and, eq, getTableColumns, gte, lt, type SQL } from 'drizzle-orm'
import { z } from 'zod'
import { parseId, uuidSchema } from '../support/ids'
import { ValidationError } from '../errors'
import {
  AUDIT_ACTIONS,
  AUDITED_TABLE_NAME_PATTERN,
  auditLogs,
  type AuditAction,
  type AuditedTableName,
} from '../schema/audit-logs'
import type { AuditLog } from '../schema/types'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { keysetPage, keysetQuery, type Page } from '../repositories/keyset-page'
import { pageLimitSchema } from '../support/limits'
import { validate } from '../support/validate'

/** Options of `auditLogs.history`. */
export interface AuditHistoryOptions {
  /** @default 50, at most 1000 */
  readonly limit?: number
  readonly cursor?: string
}

/** Options of `auditLogs.findMany`: a time range (required, so only the months it covers are read) and filters. */
export interface AuditFindManyOptions extends AuditHistoryOptions {
  /** Inclusive start. */
  readonly from: Date
  /** Exclusive end. @default now */
  readonly to?: Date
  readonly actorId?: string
  readonly apiKeyId?: string
  /** A library table (`'contacts'`) or a registered app table (`'call_times'`). */
  readonly entityType?: AuditedTableName
  readonly action?: AuditAction
}

// The library's tables and any app table registered with callsheet_register_tenant_table: any table name
// (the trail is the tenant's own under row-level security, whatever the name asked for).
const entityTypeSchema = z.string().regex(AUDITED_TABLE_NAME_PATTERN, 'must be a lower-case table name')

const pageSchema = z.object({
  limit: pageLimitSchema,
  cursor: z.string().optional(),
})
const findManySchema = pageSchema
  .extend({
    from: z.date(),
    to: z.date().optional(),
    actorId: uuidSchema.optional(),
    apiKeyId: uuidSchema.optional(),
    entityType: entityTypeSchema.optional(),
    action: z.enum(AUDIT_ACTIONS).optional(),
  })
  .strict()
  .refine((o) => !Number.isNaN(o.from.getTime()) && (o.to === undefined || o.to > o.from), {
    message: 'to must be after from',
    path: ['to'],
  })

/**
 * The tenant's audit trail, read-only and newest first. Rows are written by the database itself, in
 * the transaction of each change; the app role can read them and nothing more.
 */
export class AuditLogsRepository {
  constructor(private readonly runtime: TenantRuntime) {}

  /**
   * Every recorded change of one row, newest first.
   *
   * @example
   * ```ts
   * const { rows } = await tenant.auditLogs.history('contacts', contact.id)
   * const callTime = await tenant.auditLogs.history('call_times', callTimeId) // a registered app table
   * ```
   * @throws ValidationError on a bad entity type, id, limit or cursor.
   */
  async history(
    entityType: AuditedTableName,
    entityId: string,
    options: AuditHistoryOptions = {},
  ): Promise<Page<AuditLog>> {
    if (typeof entityType !== 'string' || !AUDITED_TABLE_NAME_PATTERN.test(entityType)) {
      throw new ValidationError('entityType must be a lower-case table name (a library or registered app table)', [
        { path: ['entityType'], message: 'not a table name' },
      ])
    }
    const id = parseId(entityId, 'entityId')
    const { limit, cursor } = validate(pageSchema.strict(), options, 'audit history options')
    return this.page([eq(auditLogs.entityType, entityType), eq(auditLogs.entityId, id)], limit, cursor)
  }

  /**
   * Changes in a time range, optionally by one actor, API key, entity type or action, newest first.
   * Only the monthly partitions the range covers are read.
   * @throws ValidationError on a bad range or filter.
   */
  async findMany(options: AuditFindManyOptions): Promise<Page<AuditLog>> {
    const o = validate(findManySchema, options, 'audit findMany options')
    const conditions: (SQL | undefined)[] = [
      gte(auditLogs.createdAt, o.from),
      lt(auditLogs.createdAt, o.to ?? new Date()),
      o.actorId === undefined ? undefined : eq(auditLogs.userId, o.actorId),
      o.apiKeyId === undefined ? undefined : eq(auditLogs.apiKeyId, o.apiKeyId),
      o.entityType === undefined ? undefined : eq(auditLogs.entityType, o.entityType),
      o.action === undefined ? undefined : eq(auditLogs.action, o.action),
    ]
    return this.page(conditions, o.limit, o.cursor)
  }

  private async page(
    conditions: (SQL | undefined)[],
    limit: number,
    cursor: string | undefined,
  ): Promise<Page<AuditLog>> {
    const keyset = {
      sort: 'createdAt',
      column: auditLogs.createdAt,
      idColumn: auditLogs.id,
      direction: 'desc',
      limit,
      cursor,
    } as const
    const query = keysetQuery(keyset)
    const rows = await this.runtime.read((db) =>
      db
        .select({ ...getTableColumns(auditLogs), ...query.select })
        .from(auditLogs)
        .where(and(eq(auditLogs.organizationId, this.runtime.organizationId), ...conditions, query.after))
        .orderBy(...query.orderBy)
        .limit(query.fetch),
    )
    return keysetPage<AuditLog>(keyset, rows)
  }
}
