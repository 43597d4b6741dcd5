import { getTableName } from 'drizzle-orm'
import type { PgDeleteBase, PgInsertBuilder, PgQueryResultHKT, PgUpdateBuilder } from 'drizzle-orm/pg-core'
import { InvalidStateError, toLibraryError } from '../errors'
import type { Db } from '../engine/engine'
import { TENANT_TABLE, type TenantTable } from '../schema/tenant-table'
import { tableOfConstraint } from '../schema/table-names'

/**
 * A drizzle handle bound to one tenant unit (`tx.db` inside `tenant.transaction(fn)` and `tenant.read(fn)`):
 * its statements run in that unit's transaction, as the app role, with the tenant and the audit context
 * set — row-level security scopes every one of them to the tenant, and the database writes the audit
 * trail of its writes. It reads any table (the library's too); it writes only the app's `tenantTable`s —
 * the library's tables are written through their repositories, which keep their rules (validation,
 * soft-delete cascades, hooks). Writes through it do not run write hooks; `tx.table(t)` does.
 * Errors from its statements are the library's typed errors.
 */
export interface TenantDb {
  readonly select: Db['select']
  readonly selectDistinct: Db['selectDistinct']
  readonly selectDistinctOn: Db['selectDistinctOn']
  readonly $count: Db['$count']
  readonly $with: Db['$with']
  /** The library's relational queries (read-only), e.g. `tx.db.query.contacts.findMany({ with: … })`. */
  readonly query: Db['query']
  /** CTEs (from `$with`) before a select, or before a write of an app table. */
  with(
    ...queries: Parameters<Db['with']>
  ): Pick<TenantDb, 'select' | 'selectDistinct' | 'selectDistinctOn'> & Pick<TenantDb, 'insert' | 'update' | 'delete'>
  /**
   * `INSERT` into an app table; `organization_id` is set to the unit's tenant in every row of `values`
   * that leaves it out (a row naming another tenant is refused by the policy's WITH CHECK).
   * @throws InvalidStateError for a table not made by `tenantTable`, or in a `tenant.read(fn)` unit.
   */
  insert<T extends TenantTable>(table: T): PgInsertBuilder<T, PgQueryResultHKT>
  /** `UPDATE` of an app table (rows of the tenant only). @throws InvalidStateError as `insert`. */
  update<T extends TenantTable>(table: T): PgUpdateBuilder<T, PgQueryResultHKT>
  /** `DELETE` from an app table (rows of the tenant only). @throws InvalidStateError as `insert`. */
  delete<T extends TenantTable>(table: T): PgDeleteBase<T, PgQueryResultHKT>
}

/** The {@link TenantDb} of one unit. */
export function tenantDb(db: Db, organizationId: string, readOnly: boolean): TenantDb {
  const writable = (table: unknown, verb: string): void => {
    if (readOnly) throw new InvalidStateError(`tenant.read(fn) is read-only: ${verb} in tenant.transaction(fn) instead`)
    if ((table as { [TENANT_TABLE]?: unknown } | undefined)?.[TENANT_TABLE] === undefined) {
      const name = safeName(table)
      throw new InvalidStateError(
        `tx.db writes only tables made with tenantTable(): ${name} is not one` +
          (name === 'a table'
            ? ''
            : ` (the library's tables are written through their repositories, e.g. tx.contacts)`),
      )
    }
  }
  const writes = (source: Pick<Db, 'insert' | 'update' | 'delete'>) => ({
    insert<T extends TenantTable>(table: T): PgInsertBuilder<T, PgQueryResultHKT> {
      writable(table, 'insert')
      const builder = source.insert(table)
      const values = builder.values.bind(builder) as (v: unknown) => unknown
      // Every row names the unit's tenant, as the repositories' inserts do (and as Citus needs to route
      // it); a row naming another is left for the policy's WITH CHECK to refuse.
      ;(builder as { values: (v: unknown) => unknown }).values = (v: unknown) =>
        values(
          Array.isArray(v)
            ? v.map((row: object) => ({ organizationId, ...row }))
            : { organizationId, ...(v as object) },
        )
      return typedErrors(builder)
    },
    update<T extends TenantTable>(table: T): PgUpdateBuilder<T, PgQueryResultHKT> {
      writable(table, 'update')
      return typedErrors(source.update(table))
    },
    delete<T extends TenantTable>(table: T): PgDeleteBase<T, PgQueryResultHKT> {
      writable(table, 'delete')
      return typedErrors(source.delete(table))
    },
  })
  const reads = (source: Pick<Db, 'select' | 'selectDistinct' | 'selectDistinctOn'>) => {
    const wrap = <F>(method: F): F =>
      ((...args: unknown[]) => typedErrors((method as (...a: unknown[]) => unknown).apply(source, args))) as F
    return {
      select: wrap(source.select),
      selectDistinct: wrap(source.selectDistinct),
      selectDistinctOn: wrap(source.selectDistinctOn),
    }
  }
  return {
    ...reads(db),
    ...writes(db),
    $count: ((...args: Parameters<Db['$count']>) => typedErrors(db.$count(...args))) as Db['$count'],
    $with: db.$with,
    query: typedErrors(db.query),
    with: (...queries) => {
      const withCtes = db.with(...queries) as unknown as Db
      return { ...reads(withCtes), ...writes(withCtes) }
    },
  }
}

function safeName(table: unknown): string {
  try {
    return `'${getTableName(table as never)}'`
  } catch {
    return 'a table'
  }
}

/** The methods that send a drizzle query: their rejections become the library's typed errors. */
const SENDS = new Set<PropertyKey>(['then', 'catch', 'finally', 'execute'])

/**
 * `builder`, and every builder its methods return, with the query's errors mapped by `toLibraryError`
 * (a foreign key to another tenant's row → `ForeignKeyViolationError`, a row the policy refuses →
 * `InsufficientPrivilegeError`, …), as the repositories' are.
 */
function typedErrors<T>(builder: T): T {
  if (typeof builder !== 'object' || builder === null) return builder
  return new Proxy(builder, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      // Symbols and the constructor are drizzle's own (its `is()` reads the constructor): left as they are.
      if (typeof property === 'symbol' || property === 'constructor') return value
      // `db.query.contacts` is an object of query methods.
      if (typeof value !== 'function') return isQueryish(value) ? typedErrors(value) : value
      return (...args: unknown[]) => {
        if (SENDS.has(property)) {
          const execute = Reflect.get(target, 'execute', target) as ((...a: unknown[]) => Promise<unknown>) | undefined
          // `$count` is a thenable without execute(): its own then() sends it.
          const raw =
            typeof execute === 'function'
              ? execute.apply(target, property === 'execute' ? args : [])
              : new Promise((resolve, reject) => {
                  ;(Reflect.get(target, 'then', target) as PromiseLike<unknown>['then']).call(target, resolve, reject)
                })
          const sent = raw.catch((error: unknown) => {
            throw toLibraryError(error, { tableOfConstraint })
          })
          if (property === 'execute') return sent
          return (Reflect.get(sent, property) as (...a: unknown[]) => unknown).apply(sent, args)
        }
        const result = (value as (...a: unknown[]) => unknown).apply(target, args)
        return isQueryish(result) ? typedErrors(result) : result
      }
    },
  })
}

/** A drizzle builder, prepared query or relational query object: something whose methods may send a query. */
function isQueryish(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return ['execute', 'from', 'values', 'set', 'findMany'].some((method) => typeof v[method] === 'function')
}
