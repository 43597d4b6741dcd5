import { parseTenantContext, type TenantContext } from '../database/tenant-context'
import { ApiKeysRepository } from '../repositories/api-keys-repository'
import { AuditLogsRepository } from '../repositories/audit-logs-repository'
import { ContactsRepository } from '../repositories/contacts-repository'
import { DepartmentsRepository } from '../repositories/departments-repository'
import { ProductionsRepository } from '../repositories/productions-repository'
import { UploadsRepository } from '../repositories/uploads-repository'
import { UsersRepository } from '../repositories/users-repository'
import type { TenantRuntime } from './runtime'

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
}

/** A tenant client bound to one transaction (inside `tenant.transaction(fn)`). */
export interface TenantTransaction extends TenantRepositories {
  readonly organizationId: string
  readonly context: Readonly<TenantContext>
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
    return (this.#uploads ??= new UploadsRepository(this.runtime))
  }
  get apiKeys(): ApiKeysRepository {
    return (this.#apiKeys ??= new ApiKeysRepository(this.runtime))
  }
  /** The tenant's audit trail (read-only). */
  get auditLogs(): AuditLogsRepository {
    return (this.#auditLogs ??= new AuditLogsRepository(this.runtime))
  }

  /** The tenant's organization id. */
  get organizationId(): string {
    return this.runtime.organizationId
  }

  /** The audit context: who acts, from where, in which request. */
  get context(): Readonly<TenantContext> {
    return this.runtime.context
  }

  /**
   * Runs `fn` in one transaction spanning any repositories: all of it commits, or none of it. A throw
   * rolls back and rethrows. An error from a statement aborts the transaction: let it propagate.
   *
   * @example
   * ```ts
   * await tenant.transaction(async (tx) => {
   *   const p = await tx.productions.create({ title: 'The Long Night' })
   *   await tx.contacts.create({ productionId: p.id, name: 'Jon Smith' })
   * })
   * ```
   */
  transaction<T>(fn: (tx: TenantTransaction) => Promise<T>): Promise<T> {
    return this.runtime.transaction((bound) => fn(new TenantClient(bound)))
  }

  /**
   * A copy with the audit context changed (merged over the current one); this client is unchanged.
   * @throws ValidationError on a bad context value.
   */
  withContext(context: Partial<TenantContext>): TenantClient {
    const merged = parseTenantContext({ ...stripUndefined(this.runtime.context), ...stripUndefined(context) })
    return new TenantClient(this.runtime.withContext(merged))
  }
}

function stripUndefined(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined))
}
