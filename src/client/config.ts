import type { PGlite } from '@electric-sql/pglite'
import { isPGlite } from '../engine/pglite/is-pglite'
import { z } from 'zod'
import { APP_ROLE } from '../schema/columns'
import { InvalidConfigurationError } from '../errors'
import type { DatabaseHook } from '../unit-of-work/hooks'
import type { UnitOfWorkConfig } from '../unit-of-work/tenant-runtime'
import type { RouterConfig, RoutingConfig } from '../routing/routing-config'
import type { DatabaseLogger, PostgresOptions, QueryEvent, ResolvedTarget } from '../engine/engine-config'

export type { DatabaseLogger, PostgresOptions, QueryEvent } from '../engine/engine-config'
export type { RoutingConfig } from '../routing/routing-config'

/** Where a database lives: a connection URL, postgres.js options (with an optional `url`), or a PGlite. */
export type DatabaseTarget = string | (PostgresOptions & { url?: string }) | PGlite

/** Configuration of {@link createDatabase}. */
export interface DatabaseConfig {
  /** The primary: a URL, postgres.js options, or a PGlite instance (the caller keeps ownership of a PGlite). */
  readonly primary: DatabaseTarget
  /**
   * Streaming replicas of the primary (URLs or postgres.js options). Tenant reads run on a healthy one
   * in a READ ONLY transaction, with read-your-writes by WAL position (see `routing`); writes and
   * `transaction(fn)` always run on the primary. Not allowed with a PGlite primary.
   * @default []
   */
  readonly replicas?: readonly (string | (PostgresOptions & { url?: string }))[]
  /** How reads are routed across the replicas. */
  readonly routing?: RoutingConfig
  /**
   * The owner's connection (the role that ran `migrate`), used only for the operations that are no
   * tenant's and need it: `organizations.findMany()` (across tenants), `maintenance` (audit partitions) and
   * `migrate()`. Give it to the processes that run those (admin tools, jobs); a process that only serves
   * tenants leaves it out. One connection, opened on first use. PostgreSQL server only.
   * Without it those operations fail with `InvalidConfigurationError` on a server (unless
   * `dangerouslyAllowPrivilegedLogin` is set: they then run on the primary's login).
   */
  readonly admin?: string | (PostgresOptions & { url?: string })
  /**
   * Serve requests even when the primary's (or a replica's) login is privileged: a superuser, BYPASSRLS,
   * CREATEROLE, or (a member of) the owner of the library's tables. Dangerous: SQL injected into a tenant
   * unit can then `RESET ROLE` and read, change or truncate every tenant's rows, audit log included.
   * For development only. Without it `createDatabase` checks the login once, before its first unit of
   * work, and refuses a privileged one with `PrivilegedLoginError` (code `PRIVILEGED_LOGIN`).
   * PGlite is exempt: its only user is a superuser, so there SQL injected into a unit can `RESET ROLE`.
   * @default false
   */
  readonly dangerouslyAllowPrivilegedLogin?: boolean
  readonly pool?: {
    /**
     * Connections per server.
     * @default 10
     */
    readonly max?: number
    /**
     * How long an operation waits for a free connection before failing with `AcquireTimeoutError`
     * (postgres.js itself queues without bound).
     * @default 10000
     */
    readonly acquireTimeoutMs?: number
    /**
     * Seconds an idle connection stays open.
     * @default 30
     */
    readonly idleTimeoutSeconds?: number
  }
  /**
   * `statement_timeout` for every statement, in ms; 0 disables it. PostgreSQL server only.
   * @default 30000
   */
  readonly statementTimeoutMs?: number
  /**
   * The role tenant work runs as. Must be the role the migrations created and granted.
   * @default 'callsheet_app'
   */
  readonly appRole?: string
  /**
   * Use prepared statements. Set `false` behind PgBouncer in transaction mode.
   * @default true
   */
  readonly prepare?: boolean
  /** Log sink; nothing is logged by default. */
  readonly logger?: DatabaseLogger
  /**
   * Write hooks, run in array order.
   * @default []
   */
  readonly hooks?: readonly DatabaseHook[]
  /** Receives errors thrown by `afterCommit` hooks (they never undo a commit). Defaults to `logger.error`. */
  readonly onHookError?: (error: unknown, hook: DatabaseHook) => void
  /**
   * Called after every query of a tenant unit of work (not the unit's own BEGIN/settings/COMMIT), with
   * its duration: for slow-query logs and metrics. A throw is ignored. Nothing is measured without it.
   */
  readonly onQuery?: (event: QueryEvent) => void
  /**
   * The deployment's secret (at least 32 characters). It authenticates each unit's tenant to the database,
   * so that SQL injected into a unit cannot switch to another tenant, and it signs consistency tokens.
   * Every process of one deployment, and `migrate()`, must use the same secret. Keep it out of the
   * database's reach: only its keyed hash is stored there, readable by the owner alone.
   * @default process.env.CALLSHEET_SECRET; on PGlite, a random secret per database when neither is set
   */
  readonly secret?: string
}

/** {@link DatabaseConfig} with every default filled in and every value checked; each layer reads its part. */
export interface ResolvedConfig extends RouterConfig, UnitOfWorkConfig {
  readonly primary: ResolvedTarget
  readonly replicas: readonly ResolvedTarget[]
  /** The owner's connection for admin work (`admin`), if given. */
  readonly admin: Extract<ResolvedTarget, { kind: 'postgres' }> | undefined
  readonly dangerouslyAllowPrivilegedLogin: boolean
  readonly routing: Required<RoutingConfig>
  readonly pool: { readonly max: number; readonly acquireTimeoutMs: number; readonly idleTimeoutSeconds: number }
  readonly statementTimeoutMs: number
  readonly appRole: string
  readonly prepare: boolean
  readonly logger: DatabaseLogger
  readonly hooks: readonly DatabaseHook[]
  readonly onHookError: (error: unknown, hook: DatabaseHook) => void
  readonly onQuery: ((event: QueryEvent) => void) | undefined
  /** `secret` or `CALLSHEET_SECRET`; undefined when neither is set (see {@link DatabaseConfig.secret}). */
  readonly secret: string | undefined
}

const poolSchema = z
  .object({
    max: z.number().int().min(1).max(1000).default(10),
    acquireTimeoutMs: z.number().int().min(1).max(600_000).default(10_000),
    idleTimeoutSeconds: z.number().min(0).max(86_400).default(30),
  })
  .strict()

const routingSchema = z
  .object({
    readYourWritesWaitMs: z.number().int().min(0).max(60_000).default(20),
    maxLagMs: z.number().int().min(0).max(86_400_000).default(10_000),
    lagCheckIntervalMs: z.number().int().min(10).max(3_600_000).default(1000),
    backoffMs: z.number().int().min(1).max(3_600_000).default(500),
    maxBackoffMs: z.number().int().min(1).max(86_400_000).default(30_000),
    replicaConnectTimeoutSeconds: z.number().min(0.1).max(600).default(3),
  })
  .strict()
  .refine((r) => r.maxBackoffMs >= r.backoffMs, { message: 'maxBackoffMs must be ≥ backoffMs', path: ['maxBackoffMs'] })

const scalarSchema = z
  .object({
    statementTimeoutMs: z.number().int().min(0).max(86_400_000).default(30_000),
    appRole: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a plain lower-case role name')
      .default(APP_ROLE),
    prepare: z.boolean().default(true),
    secret: z
      .string()
      .min(32, 'must be at least 32 characters')
      .max(1024)
      .regex(/^[\x21-\x7E]+$/, 'must be printable ASCII without spaces')
      .optional(),
  })
  .strict()

function resolveTarget(target: unknown, where: string): ResolvedTarget {
  if (isPGlite(target)) return { kind: 'pglite', pglite: target }
  if (typeof target === 'string') {
    if (!/^postgres(ql)?:\/\//.test(target)) {
      throw new InvalidConfigurationError(
        `${where} must be a postgres:// URL, postgres.js options or a PGlite instance`,
      )
    }
    return { kind: 'postgres', url: target, options: {} }
  }
  if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
    const { url, ...options } = target as PostgresOptions & { url?: unknown }
    if (url !== undefined && typeof url !== 'string')
      throw new InvalidConfigurationError(`${where}.url must be a string`)
    return { kind: 'postgres', url, options }
  }
  throw new InvalidConfigurationError(`${where} must be a postgres:// URL, postgres.js options or a PGlite instance`)
}

/**
 * Fills defaults and validates; nothing downstream sees a partial config.
 * @throws InvalidConfigurationError naming the first bad value.
 */
export function resolveConfig(config: DatabaseConfig): ResolvedConfig {
  if (typeof config !== 'object' || config === null) throw new InvalidConfigurationError('config must be an object')
  if (config.primary === undefined) throw new InvalidConfigurationError('primary is required')
  const primary = resolveTarget(config.primary, 'primary')
  const replicasInput = config.replicas ?? []
  if (!Array.isArray(replicasInput)) throw new InvalidConfigurationError('replicas must be an array')
  const replicas = replicasInput.map((r, i) => resolveTarget(r, `replicas[${i}]`))
  if (replicas.some((r) => r.kind === 'pglite'))
    throw new InvalidConfigurationError('replicas must be PostgreSQL servers, not PGlite')
  if (primary.kind === 'pglite' && replicas.length > 0) {
    throw new InvalidConfigurationError('replicas cannot be used with a PGlite primary: PGlite has no replication')
  }
  let admin: Extract<ResolvedTarget, { kind: 'postgres' }> | undefined
  if (config.admin !== undefined) {
    const resolved = resolveTarget(config.admin, 'admin')
    if (resolved.kind === 'pglite' || primary.kind === 'pglite')
      throw new InvalidConfigurationError(
        'admin is for PostgreSQL servers: on PGlite every operation already runs as its only (superuser) user',
      )
    admin = resolved
  }
  const dangerous = config.dangerouslyAllowPrivilegedLogin ?? false
  if (typeof dangerous !== 'boolean')
    throw new InvalidConfigurationError('dangerouslyAllowPrivilegedLogin must be a boolean')
  const pool = poolSchema.safeParse(config.pool ?? {})
  if (!pool.success) throw new InvalidConfigurationError(`pool.${describe(pool.error)}`)
  const routing = routingSchema.safeParse(config.routing ?? {})
  if (!routing.success) throw new InvalidConfigurationError(`routing.${describe(routing.error)}`)
  const scalars = scalarSchema.safeParse({
    statementTimeoutMs: config.statementTimeoutMs,
    appRole: config.appRole,
    prepare: config.prepare,
    secret: config.secret ?? (process.env.CALLSHEET_SECRET || undefined),
  })
  if (!scalars.success) throw new InvalidConfigurationError(describe(scalars.error))
  const hooks = config.hooks ?? []
  if (!Array.isArray(hooks)) throw new InvalidConfigurationError('hooks must be an array')
  hooks.forEach((hook: DatabaseHook, i) => {
    if (typeof hook !== 'object' || hook === null || typeof hook.name !== 'string' || hook.name === '') {
      throw new InvalidConfigurationError(`hooks[${i}] must be an object with a non-empty name`)
    }
    for (const key of ['beforeWrite', 'afterWrite', 'afterCommit'] as const) {
      if (hook[key] !== undefined && typeof hook[key] !== 'function') {
        throw new InvalidConfigurationError(`hooks[${i}].${key} must be a function`)
      }
    }
  })
  const logger = config.logger ?? {}
  return {
    primary,
    replicas,
    admin,
    dangerouslyAllowPrivilegedLogin: dangerous,
    routing: routing.data,
    pool: pool.data,
    ...scalars.data,
    secret: scalars.data.secret,
    logger,
    hooks,
    onQuery: resolveOnQuery(config.onQuery),
    onHookError:
      config.onHookError ??
      ((error, hook) => logger.error?.(`afterCommit hook ${hook.name} failed`, { error: String(error) })),
  }
}

function resolveOnQuery(onQuery: unknown): ((event: QueryEvent) => void) | undefined {
  if (onQuery === undefined) return undefined
  if (typeof onQuery !== 'function') throw new InvalidConfigurationError('onQuery must be a function')
  const listener = onQuery as (event: QueryEvent) => void
  return (event) => {
    try {
      listener(event)
    } catch {
      // An observer must never fail the query it observes.
    }
  }
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid configuration'
  return `${issue.path.join('.')}: ${issue.message}`
}
