import { parseConsistency, type ReadConsistency } from '../routing/consistency'
import { parseTenantContext, type TenantContext } from '../unit-of-work/tenant-context'
import { ValidationError } from '../errors'
import { ApiKeysRepository } from '../repositories/api-keys-repository'
import { AuditLogsRepository } from '../audit/audit-logs-repository'
import { ContactsRepository } from '../repositories/contacts-repository'
import { DepartmentsRepository } from '../repositories/departments-repository'
import { ProductionsRepository } from '../repositories/productions-repository'
import { ingestValidResult } from '../ingest/extraction-ingest'
import { UploadsRepository } from '../repositories/uploads-repository'
import { UsersRepository } from '../repositories/users-repository'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import type { TenantTable } from '../schema/tenant-table'
import { tenantTableRepository, type TenantTableRepository } from '../repositories/tenant-table-repository'
import { tenantDb, type TenantDb } from './tenant-db'

/** The repositories of one tenant, inside or outside a transaction. */
export interface TenantRepositories {
  readonly users: UsersRepository
  readonly departments: DepartmentsRepository
  readonly productions: ProductionsRepository
  readonly contacts: ContactsRepository
  readonly uploads: UploadsRepository
  readonly apiKeys: ApiKeysRepository
  /** The tenant's audit trail (read-only). */
  readonly auditLogs: AuditLogsRepository
  /** The repository of an app's own tenant table (made with `tenantTable`): see {@link TenantClient.table}. */
  table<T extends TenantTable>(table: T): TenantTableRepository<T>
}

/** A tenant client bound to one transaction (inside `tenant.transaction(fn)` or `tenant.read(fn)`). */
export interface TenantTransaction extends TenantRepositories {
  readonly organizationId: string
  readonly context: Readonly<TenantContext>
  /**
   * A drizzle handle on this unit: reads of any table and writes of the app's `tenantTable`s, scoped to
   * the tenant by row-level security (see {@link TenantDb}). Only inside the unit: a statement sent after
   * `fn` returned is refused.
   */
  readonly db: TenantDb
}

/**
 * Everything one organization can do. Every operation runs as the app role with the tenant and the
 * audit context set transaction-locally; every query also filters on the organization.
 */
export class TenantClient implements TenantRepositories {
  // Repositories are made on first use: a request usually touches one or two of them, and a tenant
  // client is created per request.
  #users?: UsersRepository
  #departments?: DepartmentsRepository
  #productions?: ProductionsRepository
  #contacts?: ContactsRepository
  #uploads?: UploadsRepository
  #apiKeys?: ApiKeysRepository
  #auditLogs?: AuditLogsRepository
  #tables?: Map<TenantTable, unknown>

  /** @internal use `createTenantClient` or `db.tenant`. */
  constructor(private readonly runtime: TenantRuntime) {}

  get users(): UsersRepository {
    return (this.#users ??= new UsersRepository(this.runtime))
  }
  get departments(): DepartmentsRepository {
    return (this.#departments ??= new DepartmentsRepository(this.runtime))
  }
  get productions(): ProductionsRepository {
    return (this.#productions ??= new ProductionsRepository(this.runtime))
  }
  get contacts(): ContactsRepository {
    return (this.#contacts ??= new ContactsRepository(this.runtime))
  }
  get uploads(): UploadsRepository {
    return (this.#uploads ??= new UploadsRepository(this.runtime, ingestValidResult))
  }
  get apiKeys(): ApiKeysRepository {
    return (this.#apiKeys ??= new ApiKeysRepository(this.runtime))
  }
  /** The tenant's audit trail (read-only). */
  get auditLogs(): AuditLogsRepository {
    return (this.#auditLogs ??= new AuditLogsRepository(this.runtime))
  }

  /**
   * The repository of an app's own tenant table (made with `tenantTable` and registered by its migration):
   * the same vocabulary, validation (the table's drizzle-zod schemas), hooks (the entity is the table
   * name), audit and isolation as the library's repositories. Made on first use, then kept.
   *
   * @example
   * ```ts
   * const call = await tenant.table(callTimes).create({ contactId, callAt: new Date() })
   * ```
   * @throws InvalidConfigurationError when `table` was not made by `tenantTable`.
   */
  table<T extends TenantTable>(table: T): TenantTableRepository<T> {
    this.#tables ??= new Map()
    let repository = this.#tables.get(table)
    if (!repository) {
      repository = tenantTableRepository(this.runtime, table)
      this.#tables.set(table, repository)
    }
    return repository as TenantTableRepository<T>
  }

  /** The tenant's organization id. */
  get organizationId(): string {
    return this.runtime.organizationId
  }

  /** The audit context: who acts, from where, in which request. */
  get context(): Readonly<TenantContext> {
    return this.runtime.context
  }

  /** Where this client's reads may be served: `'read-your-writes'` (default), `'eventual'` or `'primary'`. */
  get consistency(): ReadConsistency {
    return this.runtime.consistency
  }

  /**
   * The WAL position of this client's last committed write, as an opaque, authenticated string
   * (`v2.` + 22 characters: encrypted, bound to this organization); `undefined` before any write, or when
   * the database has no replicas. Hand it to another client of the same organization — a later request
   * in a cookie, a job in its payload — with `db.tenant(orgId, context, { consistencyToken })`: that
   * client's replica reads then wait for this write too. Another process reads it only when it has the
   * same `secret`; without one, only this database instance does.
   */
  get consistencyToken(): string | undefined {
    return this.runtime.watermark.token
  }

  /**
   * Runs read-only work in one READ ONLY transaction: all of `fn`'s reads see one consistent state of
   * the database. With replicas it runs on one that has replayed this client's writes (else on the
   * primary). Writes inside it are refused with `InvalidStateError` before anything is sent.
   * `fn` may run a second time, on the primary, when the replica fails under it: keep it free of other
   * side effects. Inside `fn`, read through its argument: this client (or any other unit of the same
   * database) used there is refused with `InvalidStateError`.
   *
   * @example
   * ```ts
   * const [production, crew] = await tenant.read(async (r) => [await r.productions.getById(id), await r.contacts.count({ productionId: id })])
   * ```
   */
  async read<T>(
    fn: (tx: TenantTransaction) => Promise<T>,
    options: { readonly consistency?: ReadConsistency } = {},
  ): Promise<T> {
    const runtime =
      options.consistency === undefined
        ? this.runtime
        : this.runtime.withConsistency(parseConsistency(options.consistency))
    return runtime.readUnit((bound) => fn(new UnitTenantClient(bound)))
  }

  /**
   * A copy whose reads follow `consistency`; it shares this client's consistency token.
   * @throws ValidationError on an unknown level.
   */
  withConsistency(consistency: ReadConsistency): TenantClient {
    return new TenantClient(this.runtime.withConsistency(parseConsistency(consistency)))
  }

  /**
   * Runs `fn` in one transaction spanning any repositories: all of it commits, or none of it. A throw
   * rolls back and rethrows. An error from a statement aborts the transaction: let it propagate.
   * Inside `fn`, use `tx` only: this client, another `db.tenant(…)` client, `db.organizations` or
   * `db.apiKeys.verify` called there would be a second unit of the same database (a second connection
   * that does not see `tx`'s writes; on PGlite, a wait forever) and fails at once instead.
   *
   * @example
   * ```ts
   * await tenant.transaction(async (tx) => {
   *   const p = await tx.productions.create({ title: 'The Long Night' })
   *   await tx.contacts.create({ productionId: p.id, name: 'Jon Smith' })
   * })
   * ```
   * @throws InvalidStateError (from inside `fn`) when a unit of the same database is started there.
   */
  transaction<T>(fn: (tx: TenantTransaction) => Promise<T>): Promise<T> {
    return this.runtime.transaction((bound) => fn(new UnitTenantClient(bound)))
  }

  /**
   * A copy with the audit context changed (merged over the current one); this client is unchanged.
   * @throws ValidationError on a bad context value.
   */
  withContext(context: Partial<TenantContext>): TenantClient {
    if (typeof context !== 'object' || context === null || Array.isArray(context)) {
      throw new ValidationError('context must be an object', [{ path: [], message: 'not an object' }])
    }
    const merged = parseTenantContext({ ...stripUndefined(this.runtime.context), ...stripUndefined(context) })
    return new TenantClient(this.runtime.withContext(merged))
  }
}

/** The client `transaction(fn)` and `read(fn)` hand to `fn`: a {@link TenantClient} with the unit's `db`. */
class UnitTenantClient extends TenantClient implements TenantTransaction {
  #db?: TenantDb

  constructor(private readonly bound: TenantRuntime) {
    super(bound)
  }

  get db(): TenantDb {
    const unit = this.bound.unit
    if (!unit) throw new TypeError('a unit client without a unit') // not reachable: made only by read/transaction
    return (this.#db ??= tenantDb(unit.db, this.bound.organizationId, unit.readOnly === true))
  }
}

function stripUndefined(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined))
}
