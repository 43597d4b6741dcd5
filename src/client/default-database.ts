import { InvalidConfigurationError } from '../errors'
import { parseId } from '../support/ids'
import { parseTenantContext, type TenantContext } from '../unit-of-work/tenant-context'
import type { TenantClient } from './tenant-client'
import { createDatabase, type Database, type TenantOptions } from './create-database'

let shared: Database | undefined

/**
 * The process-wide database configured from the environment: `DATABASE_URL` (primary: the runtime
 * login), `DATABASE_REPLICA_URLS` (comma-separated) and, for processes that do the owner's work,
 * `DATABASE_ADMIN_URL` (see `DatabaseConfig.admin`). Created on first use.
 * @throws InvalidConfigurationError when `DATABASE_URL` is not set.
 */
export function getDefaultDatabase(): Database {
  if (shared) return shared
  const url = process.env.DATABASE_URL
  if (!url) {
    throw new InvalidConfigurationError(
      'DATABASE_URL is not set: set it, or pass a database: createTenantClient(orgId, context, { database })',
    )
  }
  const replicas = (process.env.DATABASE_REPLICA_URLS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const admin = process.env.DATABASE_ADMIN_URL || undefined
  shared = createDatabase({ primary: url, replicas, ...(admin === undefined ? {} : { admin }) })
  return shared
}

/**
 * Makes `database` the process-wide database — what `createTenantClient(orgId)` and
 * `getDefaultDatabase()` use — instead of one opened from `DATABASE_URL`: for tests, so that app code
 * calling `createTenantClient` runs on a test database, and for apps that configure in code.
 * `undefined` forgets it. The database it replaces is not closed (close it yourself, or first call
 * {@link closeDefaultDatabase}); `closeDefaultDatabase()` closes the one set here.
 *
 * @example
 * ```ts
 * import { createTestDatabase } from '@callsheet/db/testing'
 * const db = await createTestDatabase()
 * setDefaultDatabase(db)
 * afterAll(() => closeDefaultDatabase())
 * ```
 * @throws InvalidConfigurationError when `database` is not a library database.
 */
export function setDefaultDatabase(database: Database | undefined): void {
  if (
    database !== undefined &&
    (typeof database !== 'object' || database === null || typeof database.tenant !== 'function')
  )
    throw new InvalidConfigurationError(
      'setDefaultDatabase takes a database from createDatabase() or createTestDatabase()',
    )
  shared = database
}

/** Closes the process-wide database, if one was opened. */
export async function closeDefaultDatabase(): Promise<void> {
  const db = shared
  shared = undefined
  await db?.close()
}

/** Options of {@link createTenantClient}. */
export interface TenantClientOptions extends TenantOptions {
  /** The database to use instead of the one configured from `DATABASE_URL`. */
  readonly database?: Database
}

/**
 * A tenant client: repositories scoped to one organization, with the audit context.
 *
 * @example
 * ```ts
 * const tenant = createTenantClient(orgId, { actorId: user.id, ip, requestId })
 * const hits = await tenant.contacts.search('jon smth', { limit: 20 })
 * ```
 * @throws ValidationError when `organizationId` is not a UUID or the context is malformed.
 * @throws InvalidConfigurationError when no database is passed and `DATABASE_URL` is not set.
 */
export function createTenantClient(
  organizationId: string,
  context: TenantContext = {},
  options: TenantClientOptions = {},
): TenantClient {
  parseId(organizationId, 'organizationId')
  parseTenantContext(context)
  const { database, ...tenantOptions } = options
  return (database ?? getDefaultDatabase()).tenant(organizationId, context, tenantOptions)
}
