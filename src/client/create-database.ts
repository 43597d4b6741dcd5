import { sql } from 'drizzle-orm'
import { parseId } from '../support/ids'
import { parseTenantContext, type TenantContext } from '../unit-of-work/tenant-context'
import { DatabaseClosedError, InvalidConfigurationError, mapDatabaseError } from '../errors'
import { rowsOf } from '../support/rows'
import { apiKeyOrganization, hashApiKey } from '../repositories/api-keys-repository'
import { onlyKeys } from '../support/validate'
import { OrganizationsRepository } from '../repositories/organizations-repository'
import { createMaintenance, type Maintenance } from '../audit/maintenance'
import { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { TenantClient } from './tenant-client'
import { resolveConfig, type DatabaseConfig, type ResolvedConfig } from './config'
import { createEngine } from '../engine/create-engine'
import type { Db, Engine } from '../engine/engine'
import { settingsSql } from '../engine/settings-statement'
import { WriteWatermark, parseConsistency, TokenCodec, type ReadConsistency } from '../routing/consistency'
import { pgliteRuntimeLoginView } from '../engine/pglite/runtime-login-view'
import { refusedWhen } from '../engine/refused-when'
import { Router } from '../routing/router'
import type { RoutingStats } from '../routing/routing-stats'
import { migrate, type MigrateOptions, type MigrateReport } from '../migrations/migrate'
import { distribute, type DistributeOptions, type DistributionReport } from '../distribution/distribute'
import { createMonitoring, type Monitoring } from '../monitoring'

/** What `db.apiKeys.verify` returns for a valid key. */
export interface VerifiedApiKey {
  readonly apiKeyId: string
  readonly organizationId: string
  readonly name: string
  readonly scopes: readonly string[]
}

/** Options of `db.tenant(…)` / `createTenantClient(…)` beyond the audit context. */
export interface TenantOptions {
  /**
   * Where reads may be served when the database has replicas.
   * @default 'read-your-writes'
   */
  readonly consistency?: ReadConsistency
  /**
   * A `tenant.consistencyToken` from an earlier client of the same organization (another request, a job's
   * producer): this client's replica reads then see that client's writes too. Tokens are authenticated:
   * one that was altered, made for another organization, or made by a process with another `secret`
   * (without a secret: by another `createDatabase` instance) is refused with a `ValidationError`.
   */
  readonly consistencyToken?: string
}

/** Pool and routing statistics of a database. */
export interface DatabaseStats {
  /** The primary's pool. */
  readonly pool: { readonly inUse: number; readonly waiting: number; readonly max: number }
  /** Reads per target, fallbacks to the primary and each replica's health and lag. */
  readonly routing: RoutingStats
}

/** A configured database: the tenant entry point and the operations that are not a tenant's. */
export interface Database {
  /** Which engine the primary is. */
  readonly engine: 'postgres' | 'pglite'
  /**
   * The tenants themselves. Each operation on one organization runs as the app role, scoped to that
   * organization; `list()` spans organizations and needs the owner's connection (`admin`).
   */
  readonly organizations: OrganizationsRepository
  readonly apiKeys: {
    /**
     * Checks a plaintext key before any tenant is known. Returns `null` for unknown, malformed,
     * revoked or expired keys; records the key's last use otherwise. The app role sees only the one
     * key row whose hash it presents — never other tenants' keys.
     */
    verify(plaintext: string): Promise<VerifiedApiKey | null>
  }
  /**
   * A tenant client for `organizationId`.
   * @throws ValidationError when the id is not a UUID, or the context, consistency or token is malformed.
   */
  tenant(organizationId: string, context?: TenantContext, options?: TenantOptions): TenantClient
  /**
   * Audit partition upkeep and retention. Owner's work: runs on the `admin` connection (on PGlite, on
   * the database itself).
   * @throws InvalidConfigurationError (from each method) on a server without `admin`.
   */
  readonly maintenance: Maintenance
  /** Applies the migrations, as the owner: on `admin` when given, else on the primary (see `migrate`). */
  migrate(options?: MigrateOptions): Promise<MigrateReport>
  /**
   * Distributes the schema over the Citus cluster this database's `admin` (else the primary) is the
   * coordinator of, as that owner (see `distribute`). Idempotent.
   * @throws InvalidConfigurationError on PGlite, plain PostgreSQL, or a Citus node that is not a ready coordinator.
   */
  distribute(options?: DistributeOptions): Promise<DistributionReport>
  /** Pool statistics of the primary, and replica routing counters. */
  stats(): DatabaseStats
  /** Measures each replica's replay lag now (otherwise measured on the back of reads), for `stats()`. */
  measureReplicaLag(): Promise<void>
  /**
   * Health and tuning reports: slow statements, index usage, table sizes, connections, replica lag, pool.
   * Read on the `admin` connection when there is one, else as the primary's login, which PostgreSQL shows
   * only its own sessions and statements (the app role's statement texts read `<insufficient privilege>`).
   */
  readonly monitoring: Monitoring
  /**
   * Escape hatch: Drizzle over the connecting login, outside any unit of work and tenant context. As the
   * runtime login (a NOINHERIT member of the app role) it holds no privilege on the library's tables:
   * reading one fails with `42501` (permission denied). The same on PGlite, whose `$primary` runs as such a
   * role (`callsheet_runtime`) rather than as PGlite's superuser — unless `dangerouslyAllowPrivilegedLogin`,
   * which there, as with a privileged server login, gives the superuser. For tenant data use a unit
   * (`tx.db` in `tenant.transaction(fn)`).
   */
  readonly $primary: Db
  /** Closes every connection (a PGlite passed in stays open: its owner closes it). Idempotent. */
  close(): Promise<void>
}

/**
 * Opens a database from a config: a PostgreSQL URL or postgres.js options, or a PGlite instance.
 *
 * @example
 * ```ts
 * const db = createDatabase({ primary: process.env.DATABASE_URL!, pool: { max: 20 } })
 * const tenant = db.tenant(orgId, { actorId: user.id, requestId })
 * ```
 * @throws InvalidConfigurationError naming the first bad value; nothing connects before that.
 */
export function createDatabase(config: DatabaseConfig): Database {
  const resolved: ResolvedConfig = resolveConfig(config)
  const engine: Engine = createEngine(resolved.primary, resolved)
  const router = new Router(engine, resolved)
  const tokens = new TokenCodec(resolved.secret)
  let closing: Promise<void> | undefined
  let adminEngine: Engine | undefined
  // Owner's work (organizations.findMany, maintenance): on the admin connection; on PGlite, its only user.
  // Refused inside a unit of this database (it would wait for the connection that unit holds: forever on
  // PGlite, or with pool.max 1).
  const adminDb = (operation: string): Db => {
    engine.refuseInsideUnit()
    if (resolved.primary.kind === 'pglite') return engine.db
    if (resolved.admin !== undefined) {
      // Opened on first use; never after close(), which would leave it open.
      if (closing !== undefined && adminEngine === undefined) throw new DatabaseClosedError(operation)
      adminEngine ??= createEngine(resolved.admin, resolved, { name: 'admin', checkLogin: false, max: 2 })
      return adminEngine.db
    }
    if (resolved.dangerouslyAllowPrivilegedLogin) return engine.db
    throw new InvalidConfigurationError(
      `${operation} is the owner's work and this database has no admin connection: set admin (the URL of the ` +
        'role that ran migrate) in the config of the process that runs it, or use the callsheet-db CLI with the owner URL',
    )
  }
  const organizations = new OrganizationsRepository({
    unit: (id, readOnly, fn) =>
      engine.unit(
        {
          role: resolved.appRole,
          organizationId: id,
          actorId: '',
          apiKeyId: '',
          requestId: '',
          ip: '',
          proof: engine.proofs.proof(id),
        },
        { readOnly, organizationAdmin: true },
        fn,
      ),
    admin: adminDb,
  })
  const stats = (): DatabaseStats => ({
    pool: { ...engine.stats(), max: resolved.primary.kind === 'pglite' ? 1 : resolved.pool.max },
    routing: router.stats(),
  })

  // On PGlite, as the runtime login would be (see Database.$primary); refused after close() as engine.db is.
  const pglite = resolved.primary.kind === 'pglite' ? resolved.primary.pglite : undefined
  const primaryView =
    pglite && !resolved.dangerouslyAllowPrivilegedLogin
      ? pgliteRuntimeLoginView(
          refusedWhen(pglite, () =>
            closing !== undefined || pglite.closed ? new DatabaseClosedError('a $primary query') : undefined,
          ),
        )
      : engine.db
  return {
    engine: engine.kind,
    organizations,
    apiKeys: { verify: (plaintext) => verifyApiKey(engine, resolved, plaintext) },
    maintenance: createMaintenance(() => adminDb('maintenance')),
    tenant(organizationId, context, options = {}) {
      const org = parseId(organizationId, 'organizationId')
      const parsedContext = parseTenantContext(context)
      onlyKeys(options, ['consistency', 'consistencyToken'], 'tenant options')
      const consistency = options.consistency === undefined ? 'read-your-writes' : parseConsistency(options.consistency)
      const watermark = new WriteWatermark(
        tokens,
        org,
        options.consistencyToken === undefined ? undefined : tokens.decode(org, options.consistencyToken),
      )
      return new TenantClient(new TenantRuntime(router, resolved, org, parsedContext, watermark, consistency))
    },
    async migrate(options) {
      const target = resolved.admin ?? resolved.primary
      // This database's own secret is the one to install, unless the caller names another.
      const withSecret = { ...(resolved.secret === undefined ? {} : { secret: resolved.secret }), ...options }
      if (target.kind !== 'pglite' && target.url === undefined) {
        throw new InvalidConfigurationError(
          'migrate() needs the owner (admin, else the primary) as a URL (or call migrate(url) yourself)',
        )
      }
      const report = await migrate(target.kind === 'pglite' ? target.pglite : (target.url ?? ''), withSecret)
      for (const warning of report.warnings) resolved.logger.warn?.(`migrate: ${warning}`)
      return report
    },
    async distribute(options) {
      const target = resolved.admin ?? resolved.primary
      if (target.kind === 'pglite')
        throw new InvalidConfigurationError('distribute() needs a Citus coordinator: PGlite is a single local database')
      if (target.url === undefined) {
        throw new InvalidConfigurationError(
          'distribute() needs the owner (admin, else the primary) as a URL (or call distribute(url) yourself)',
        )
      }
      return distribute(target.url, options)
    },
    stats,
    measureReplicaLag: () => router.measureLag(),
    monitoring: createMonitoring({
      kind: engine.kind,
      // The owner sees every role's statements and sessions; the runtime login only its own.
      db: () => {
        engine.refuseInsideUnit()
        return resolved.admin !== undefined ? adminDb('monitoring') : engine.db
      },
      pool: () => stats().pool,
      replicas: () => router.stats().replicas,
      measureReplicaLag: () => router.measureLag(),
    }),
    $primary: primaryView,
    close() {
      closing ??= Promise.all([router.close(), adminEngine?.close()]).then(() => undefined)
      return closing
    },
  }
}

async function verifyApiKey(engine: Engine, config: ResolvedConfig, plaintext: string): Promise<VerifiedApiKey | null> {
  // The key names its organization (csk_<org>_<secret>); a malformed key is an unknown key.
  const organizationId = apiKeyOrganization(plaintext)
  if (organizationId === null) return null
  const hash = hashApiKey(plaintext)
  const settings = {
    role: config.appRole,
    organizationId: '',
    actorId: '',
    apiKeyId: '',
    requestId: '',
    ip: '',
    proof: '',
  }
  try {
    return await engine.unit(settings, { readOnly: false }, async (db) => {
      // SECURITY DEFINER (migration 0015): the key's row, looked up by the organization the key names and
      // its hash, only when it is unrevoked, unexpired and its organization is live.
      const found = await db.execute(
        sql`select api_key_id, org_id, key_name, key_scopes from callsheet_verify_api_key(${organizationId}::uuid, ${hash})`,
      )
      const row = rowsOf<KeyRow>(found)[0]
      if (!row) return null
      // Recording the use is ordinary tenant work: enter the key's tenant, with its proof.
      const proof = engine.proofs.proof(row.org_id, '', row.api_key_id)
      await db.execute(
        settingsSql({ ...settings, organizationId: row.org_id, apiKeyId: row.api_key_id, proof }, { tenantOnly: true }),
      )
      await db.execute(
        sql`update api_keys set last_used_at = now() where organization_id = ${row.org_id} and id = ${row.api_key_id}`,
      )
      return { apiKeyId: row.api_key_id, organizationId: row.org_id, name: row.key_name, scopes: row.key_scopes }
    })
  } catch (error) {
    throw mapDatabaseError(error)
  }
}

interface KeyRow {
  api_key_id: string
  org_id: string
  key_name: string
  key_scopes: string[]
}
