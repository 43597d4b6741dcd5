import { sql } from 'drizzle-orm'
import type { Db } from '../engine/engine'
import { ValidationError, mapDatabaseError } from '../errors'
import { rowsOf } from '../support/rows'

/** Operations on the database as a whole, run as the connecting (owner) role. */
export interface Maintenance {
  /**
   * Creates the monthly audit-log partitions from `from`'s month through `monthsAhead` months later,
   * moving any rows that landed in the DEFAULT partition into their month. Idempotent; `migrate()`
   * runs it for the current month and three ahead. Returns the partitions created.
   * @throws ValidationError when `monthsAhead` is not an integer from 0 to 120.
   */
  ensureAuditPartitions(options?: { readonly monthsAhead?: number; readonly from?: Date }): Promise<string[]>
  /**
   * Retention: detaches and drops every monthly audit partition that ends on or before `before`.
   * Returns the partitions dropped. The DEFAULT partition is kept.
   * @throws ValidationError when `before` is not a valid date.
   */
  dropAuditPartitionsBefore(before: Date): Promise<string[]>
}

export function createMaintenance(db: () => Db): Maintenance {
  const names = (result: unknown): string[] => rowsOf<{ name: unknown }>(result).map((r) => String(r.name))
  return {
    async ensureAuditPartitions(options = {}) {
      const monthsAhead = options.monthsAhead ?? 3
      if (!Number.isInteger(monthsAhead) || monthsAhead < 0 || monthsAhead > 120) {
        throw new ValidationError(`monthsAhead must be an integer from 0 to 120, got ${String(monthsAhead)}`, [
          { path: ['monthsAhead'], message: 'out of range' },
        ])
      }
      const from = options.from ?? new Date()
      if (!(from instanceof Date) || Number.isNaN(from.getTime())) {
        throw new ValidationError('from must be a valid Date', [{ path: ['from'], message: 'invalid date' }])
      }
      const day = from.toISOString().slice(0, 10)
      try {
        return names(
          await db().execute(sql`select callsheet_ensure_audit_partitions(${monthsAhead}, ${day}::date) as name`),
        )
      } catch (error) {
        throw mapDatabaseError(error)
      }
    },
    async dropAuditPartitionsBefore(before) {
      if (!(before instanceof Date) || Number.isNaN(before.getTime())) {
        throw new ValidationError('before must be a valid Date', [{ path: ['before'], message: 'invalid date' }])
      }
      try {
        return names(
          await db().execute(
            sql`select callsheet_drop_audit_partitions_before(${before.toISOString()}::timestamptz) as name`,
          ),
        )
      } catch (error) {
        throw mapDatabaseError(error)
      }
    },
  }
}
