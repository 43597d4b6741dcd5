import type { PGlite } from '@electric-sql/pglite'
import { createTableRelationsHelpers, extractTablesRelationalConfig, type Logger } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { PgDialect } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite, PgliteDatabase, PgliteSession } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres, PostgresJsDatabase, PostgresJsSession } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import * as schema from '../schema/drizzle-schema'
import {
  AcquireTimeoutError,
  InvalidStateError,
  PrivilegedLoginError,
  isCallsheetDbError,
  mapDatabaseError,
  TenantProofError,
  toLibraryError,
} from '../errors'
import type { EngineConfig, QueryEvent, ResolvedTarget } from './engine-config'
import { closeUnit, openUnit, refuseInsideUnit, runInUnit } from './unit-scope'
import {
  LOGIN_PRIVILEGES_SQL,
  loginPrivilegeProblems,
  loginPrivilegesParams,
  type LoginPrivileges,
} from './login-check'
import { installKeyStatements, pgliteSecret, TenantProofs } from './tenant-proof'

/** The Drizzle schema the library queries with (tables + relations). */
export type Schema = typeof schema

/** A Drizzle database or transaction over the library's schema, on either engine. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>

/** The transaction-local settings of a unit of work, in the order of {@link SETTINGS_SQL}'s parameters. */
export interface UnitSettings {
  readonly role: string
  readonly organizationId: string
  readonly actorId: string
  readonly apiKeyId: string
  readonly requestId: string
  readonly ip: string
  /** `app.tenant_proof` for `organizationId` (see tenant-proof.ts); '' with no tenant. */
  readonly proof: string
}

// One statement sets everything, transaction-locally (never session SET: it would leak through
// PgBouncer transaction pooling). The text is constant, so it is prepared once per connection.
// statement_timeout is set here too, transaction-locally: PgBouncer (1.18) refuses it as a startup
// parameter, and a unit must not depend on what the last user of a pooled server connection set.
// search_path is pinned with pg_temp last, so that no temp table (one left on a pooled connection, or
// a session-level SET search_path) can shadow the library's tables; the statement itself names its
// functions' schemas. callsheet_enter_tenant (migration 0012) comes last: it sets the tenant and its
// proof, and refuses the unit (bad proof, deleted organization, foreign actor) before any row is read.
const SETTINGS_HEAD =
  "select pg_catalog.set_config('role', $1, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), " +
  "pg_catalog.set_config('app.actor_id', $3, true), pg_catalog.set_config('app.api_key_id', $4, true), " +
  "pg_catalog.set_config('app.request_id', $5, true), pg_catalog.set_config('app.ip', $6, true), "
const ENTER_TENANT = 'public.callsheet_enter_tenant($2, $8, $3, $4)'

const SETTINGS_SQL = `${SETTINGS_HEAD}pg_catalog.set_config('statement_timeout', $7, true), ${ENTER_TENANT}`

// An organization's own administration (db.organizations: create, restore, reads of a deleted one): the
// same, but the organization need not exist or be live (callsheet_enter_organization, migration 0014,
// checks the proof only). Never used for tenant work, so a deleted organization's tenant units still fail.
const ENTER_ORGANIZATION = 'public.callsheet_enter_organization($2, $8, $3, $4)'
const ORGANIZATION_SETTINGS_SQL = `${SETTINGS_HEAD}pg_catalog.set_config('statement_timeout', $7, true), ${ENTER_ORGANIZATION}`
const PGLITE_ORGANIZATION_SETTINGS_SQL = `${SETTINGS_HEAD}$7::text, ${ENTER_ORGANIZATION}`

// PGlite: the same without statement_timeout ($7 is sent and unused, so the numbering stays).
const PGLITE_SETTINGS_SQL = `${SETTINGS_HEAD}$7::text, ${ENTER_TENANT}`

const settingsParams = (s: UnitSettings, statementTimeoutMs: number) => [
  s.role,
  s.organizationId,
  s.actorId,
  s.apiKeyId,
  s.requestId,
  s.ip,
  String(statementTimeoutMs),
  s.proof,
]

// On a replica the same statement also passes the read-your-writes gate (migration 0009): it returns
// the replay position once it has reached $9, or fails with ZR001 after $10 ms. The unit's queries are
// pipelined behind it and run after it, so they see every write up to $9.
const REPLICA_SETTINGS_SQL =
  `${SETTINGS_HEAD}pg_catalog.set_config('statement_timeout', $7, true), ` +
  `public.callsheet_wait_for_replay($9::pg_lsn, $10::int)::text as replayed, ${ENTER_TENANT}`

// Sent right behind a write's COMMIT (same packet, no extra round trip): the position a replica must
// have replayed to show this write. A commit with synchronous_commit on (or local, remote_*) has flushed
// its record, so the flush position covers it without pointing at other sessions' unflushed WAL (which
// a replica cannot have yet); with it off, only the insert position is sure to be past the commit.
const COMMIT_LSN_SQL =
  "select (case when current_setting('synchronous_commit') = 'off' then pg_current_wal_insert_lsn() " +
  'else pg_current_wal_flush_lsn() end)::text as lsn'

/** How one unit of work runs. */
export interface UnitOptions {
  readonly readOnly: boolean
  /**
   * `fn` runs the app's code (a `transaction(fn)` or `read(fn)` callback, write hooks): its async context
   * is marked, so that a unit it starts on the same database fails at once instead of waiting for a
   * second connection (forever, on PGlite). Units that run only the library's code are not marked
   * (marking costs Node CPU on every promise while a marked unit is open); they are still checked.
   */
  readonly appCode?: boolean
  /**
   * The organization's own administration (`db.organizations`): its proof is checked, but it need not
   * exist yet or be live. Primary only.
   */
  readonly organizationAdmin?: boolean
  /**
   * A write on a primary that has replicas: receives the WAL position read right after COMMIT, or
   * `undefined` when the commit succeeded but the position could not be read.
   */
  readonly onCommitted?: (lsn: string | undefined) => void
  /** A read on a replica: the read-your-writes gate and where the replica's replay stands. */
  readonly replica?: {
    /** `pg_lsn` text the replica must have replayed (`0/0` for none). */
    readonly waitFor: string
    /** How long the replica may wait for it before the unit fails with SQLSTATE ZR001. */
    readonly waitMs: number
    readonly onReplayed: (lsn: string) => void
  }
}

/** A database engine: where units of work run. */
export interface Engine {
  readonly kind: 'postgres' | 'pglite'
  /**
   * The database this engine belongs to (shared by a database's primary and replicas): a unit started
   * while a unit of the same database is running in the same async context is refused.
   */
  readonly scope: object
  /** Drizzle over the connecting (owner) role, outside any tenant context. */
  readonly db: Db
  /** The proofs of this database's tenants (PGlite: for the secret this engine installs). */
  readonly proofs: TenantProofs
  /**
   * Throws InvalidStateError when called from inside a unit of this engine's database: for statements
   * that run outside units ({@link db}), which would wait for the connection that unit holds.
   */
  refuseInsideUnit(): void
  /**
   * Runs `fn` in one transaction whose first statement applies `settings`. Driver errors are mapped
   * to library errors; a throw rolls everything back.
   * @throws InvalidStateError, before anything is sent, when called from inside a unit of the same scope.
   */
  unit<T>(settings: UnitSettings, options: UnitOptions, fn: (db: Db) => Promise<T>): Promise<T>
  /** One statement as the connecting role, outside any unit (health and lag probes). postgres only. */
  probe<T extends Record<string, unknown>>(text: string): Promise<T[]>
  close(): Promise<void>
  /** Pool statistics (postgres only). */
  stats(): { readonly inUse: number; readonly waiting: number }
}

function queryLogger(config: EngineConfig): Logger | undefined {
  const debug = config.logger.debug
  if (!debug) return undefined
  return { logQuery: (query, params) => debug.call(config.logger, 'query', { sql: query, params }) }
}

/** `conn` with every `unsafe()` call prepared (or not) as configured, whatever the caller asked. */
function withPrepare(
  conn: postgres.ReservedSql,
  prepare: boolean,
  lost: () => unknown,
  observe?: (event: Omit<QueryEvent, 'target'>) => void,
): postgres.ReservedSql {
  return new Proxy(conn, {
    get(target, property, receiver) {
      if (property !== 'unsafe') return Reflect.get(target, property, receiver) as unknown
      return (query: string, params?: postgres.ParameterOrJSON<never>[], options?: postgres.UnsafeQueryOptions) => {
        // Never write to a connection the server closed (see unit()).
        const error = lost()
        if (error !== undefined) throw error
        const pending = refusedWhenRun(target.unsafe(query, params, { ...options, prepare }), lost)
        return observe ? timed(pending, query, params ?? [], observe) : pending
      }
    },
  })
}

/**
 * A postgres.js query that is refused again when it is run, not only when it is built. drizzle builds a
 * query and runs it (its first `then`) a few microtasks later: a query built in the same turn as the
 * unit's last result could run after the unit decided its outcome, and postgres.js would write it behind
 * the COMMIT — outside the transaction, as the login role, without the tenant settings (reproduced).
 * Checked when run, it is queued before any COMMIT sent after the check: postgres.js queues queries in
 * the order they are run.
 */
function refusedWhenRun<T extends PromiseLike<unknown>>(query: T, refused: () => unknown): T {
  let ran = false
  const wrapper: T = new Proxy(query, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (!ran && RUNS_A_QUERY.has(property)) {
          const error = refused()
          if (error !== undefined) {
            if (property === 'execute') throw error
            const rejected = Promise.reject(error)
            return (Reflect.get(rejected, property) as (...a: unknown[]) => unknown).apply(rejected, args)
          }
          ran = true
        }
        const result = (value as (...a: unknown[]) => unknown).apply(target, args)
        return result === target ? wrapper : result
      }
    },
  })
  return wrapper
}

/** The postgres.js query methods that send it. */
const RUNS_A_QUERY = new Set<PropertyKey>(['then', 'catch', 'finally', 'execute'])

/**
 * A postgres.js query that reports its duration. The query is lazy: it runs on its first `then`
 * (drizzle awaits it, possibly after `.values()`), so the clock starts there. Methods that return the
 * query itself return this wrapper, so the caller's `await` still goes through it.
 */
function timed<T extends PromiseLike<unknown>>(
  query: T,
  sql: string,
  params: readonly unknown[],
  observe: (event: Omit<QueryEvent, 'target'>) => void,
): T {
  const wrapper: T = new Proxy(query, {
    get(target, property) {
      if (property === 'then') {
        return (onFulfilled?: (value: unknown) => unknown, onRejected?: (reason: unknown) => unknown) => {
          const started = performance.now()
          return target.then(
            (value) => {
              const rowCount = Array.isArray(value) ? value.length : undefined
              observe({
                sql,
                params,
                durationMs: performance.now() - started,
                ...(rowCount === undefined ? {} : { rowCount }),
              })
              return onFulfilled ? onFulfilled(value) : value
            },
            (error: unknown) => {
              observe({ sql, params, durationMs: performance.now() - started, error })
              if (onRejected) return onRejected(error)
              throw error
            },
          )
        }
      }
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args)
        return result === target ? wrapper : result
      }
    },
  })
  return wrapper
}

/** Opens the engine for a resolved target. */
export function createEngine(
  target: ResolvedTarget,
  config: EngineConfig,
  overrides: {
    readonly acquireTimeoutMs?: number
    readonly name?: string
    readonly scope?: object
    /** Refuse a privileged login before the first unit (see `dangerouslyAllowPrivilegedLogin`). @default true */
    readonly checkLogin?: boolean
    readonly max?: number
  } = {},
): Engine {
  const scope = overrides.scope ?? {}
  return target.kind === 'pglite'
    ? pgliteEngine(target.pglite, config, scope)
    : postgresEngine(
        target,
        config,
        overrides.acquireTimeoutMs ?? config.pool.acquireTimeoutMs,
        overrides.name ?? 'primary',
        scope,
        (overrides.checkLogin ?? true) && !config.dangerouslyAllowPrivilegedLogin,
        overrides.max ?? config.pool.max,
      )
}

// Connection failures that a second attempt at once cannot fix (postgres.js would only wait out its
// reconnect backoff): the server is not there, or refuses us.
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'CONNECT_TIMEOUT', 'ETIMEDOUT', '57P03'])

function driverCode(error: unknown): string | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && code !== '') return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

function postgresEngine(
  target: Extract<ResolvedTarget, { kind: 'postgres' }>,
  config: EngineConfig,
  acquireTimeoutMs: number,
  targetName: string,
  scope: object,
  checkLogin: boolean,
  max: number,
): Engine {
  const owners = [scope]
  const options: postgres.Options<Record<string, postgres.PostgresType>> = {
    onnotice: () => {},
    ...target.options,
    max,
    idle_timeout: config.pool.idleTimeoutSeconds,
    prepare: config.prepare,
    connection: {
      application_name: 'callsheet-db',
      ...target.options.connection,
      // Also for the statements outside units (db.organizations, $primary). Not as a startup parameter
      // when prepare is off (PgBouncer, which refuses it): units still set it themselves.
      ...(config.statementTimeoutMs > 0 && config.prepare ? { statement_timeout: config.statementTimeoutMs } : {}),
    },
  }
  const client = target.url === undefined ? postgres(options) : postgres(target.url, options)
  const logger = queryLogger(config)
  // drizzle() installs its type parsers on the client's shared options, so reserved connections
  // (which reuse the pool's connections) parse the same way.
  const db = drizzlePostgres(client, { schema, ...(logger ? { logger } : {}) }) as unknown as Db
  const dialect = new PgDialect()
  const tables = extractTablesRelationalConfig(schema, createTableRelationsHelpers)
  const relational = { fullSchema: schema, schema: tables.tables, tableNamesMap: tables.tableNamesMap }
  let waiting = 0
  let inUse = 0
  // The login is checked once, before the first unit; units after a passed check pay nothing. A failed
  // check (refused, or the server unreachable) is tried again by the next unit.
  let loginChecked = !checkLogin
  let checkingLogin: Promise<void> | undefined
  const checkTheLogin = async (): Promise<void> => {
    const [row] = (await client.unsafe(LOGIN_PRIVILEGES_SQL, loginPrivilegesParams())) as unknown as LoginPrivileges[]
    const problems = row ? loginPrivilegeProblems(row) : []
    if (row && problems.length > 0) throw new PrivilegedLoginError(row.login, problems)
    loginChecked = true
  }

  async function acquire(): Promise<postgres.ReservedSql> {
    waiting++
    let timer: NodeJS.Timeout | undefined
    let timedOut = false
    const reserving = client.reserve()
    try {
      return await Promise.race([
        reserving,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true
            reject(new AcquireTimeoutError(acquireTimeoutMs))
          }, acquireTimeoutMs)
        }),
      ])
    } catch (error) {
      // postgres.js cannot cancel a queued reservation: hand the connection straight back when it comes.
      if (timedOut)
        reserving.then(
          (c) => c.release(),
          () => undefined,
        )
      throw error
    } finally {
      clearTimeout(timer)
      waiting--
    }
  }

  return {
    kind: 'postgres',
    scope,
    db,
    refuseInsideUnit: () => void refuseInsideUnit(owners),
    proofs: new TenantProofs(config.secret),
    stats: () => ({ inUse, waiting }),
    async probe<T extends Record<string, unknown>>(text: string): Promise<T[]> {
      try {
        return (await client.unsafe(text)) as unknown as T[]
      } catch (error) {
        throw mapDatabaseError(error)
      }
    },
    async unit(settings, { readOnly, onCommitted, replica, appCode, organizationAdmin }, fn) {
      const mark = openUnit(owners)
      if (settings.organizationId !== '' && settings.proof === '') throw TenantProofError.noSecret()
      if (!loginChecked) {
        checkingLogin ??= checkTheLogin().catch((error: unknown) => {
          checkingLogin = undefined
          throw mapDatabaseError(error)
        })
        await checkingLogin
      }
      let conn: postgres.ReservedSql
      try {
        // postgres.js (3.4.9) keeps the fatal error of a connection the server closed mid-statement and
        // hands it to the first reservation of the reconnected connection, once. Nothing was sent for
        // this unit yet, so trying again (at most once per pooled connection) is safe.
        for (let attempt = 0; ; attempt++) {
          try {
            conn = await acquire()
            break
          } catch (error) {
            if (
              attempt >= config.pool.max ||
              !isCallsheetDbError(mapDatabaseError(error), 'CONNECTION_ERROR') ||
              CONNECT_FAILURES.has(driverCode(error) ?? '')
            )
              throw error
          }
        }
      } catch (error) {
        throw mapDatabaseError(error)
      }
      inUse++
      // postgres.js (3.4.9, porsager/postgres#1208) never tells the holder of a reserved connection that
      // the server closed it: the next query on it is written to a null socket (an uncaught TypeError
      // from a timer) and never settles, and release() would put the dead connection back in the pool.
      // BEGIN's `onexecute` (the hook sql.begin() itself uses) hands us the connection, so the unit
      // learns of the close the way sql.begin() does.
      let lost: unknown
      // The one await in progress, to be failed if the connection goes. A guard per await (rather than
      // racing every await against one never-settling promise) drops its reference as soon as the await
      // settles, so results are not kept alive until the unit ends (measured: +10 % CPU, half of it GC).
      let abort: ((error: unknown) => void) | undefined
      const guarded = <T>(work: PromiseLike<T>): Promise<T> =>
        lost !== undefined
          ? Promise.reject(lost)
          : new Promise<T>((resolve, reject) => {
              abort = reject
              work.then(
                (value) => {
                  abort = undefined
                  resolve(value)
                },
                (error: unknown) => {
                  abort = undefined
                  reject(error)
                },
              )
            })
      let pooled: { onclose?: ((error: unknown) => void) | null } | undefined
      const watch = (c: { onclose?: ((error: unknown) => void) | null }) => {
        pooled = c
        c.onclose = (error) => {
          lost = error ?? new Error('connection closed')
          abort?.(lost)
        }
        return true
      }
      let released = false
      const release = () => {
        if (released) return
        released = true
        inUse--
        if (pooled) pooled.onclose = null
        // A lost connection is already back in postgres.js's "closed" queue (it reconnects on demand);
        // releasing it would put a socket-less connection in the open queue.
        if (lost === undefined) conn.release()
      }
      let open = true
      // Set once the unit's outcome is decided. A query `fn` issues after that (it kept going after an
      // error, or did not await) must never reach the connection: released, it may already be running
      // another tenant's transaction.
      let ended = false
      const refused = () =>
        lost ??
        (ended
          ? new InvalidStateError('a query was issued after its unit of work ended (a missing await?): not sent')
          : undefined)
      let commitSent = false
      try {
        // BEGIN, the settings and the first query of `fn` are pipelined: postgres.js writes them in one
        // packet. That needs prepared statements: postgres.js sends an unprepared statement that has
        // parameters "describe first" (a round trip of its own, and nothing pipelines behind it), and
        // drizzle asks it to prepare named queries only.
        const prepared = withPrepare(conn, config.prepare, refused)
        // The unit's own queries, observed when onQuery is set (BEGIN, settings and COMMIT are not).
        const observed = config.onQuery
          ? withPrepare(conn, config.prepare, refused, (event) => config.onQuery?.({ ...event, target: targetName }))
          : prepared
        const begin = conn
          .unsafe(readOnly ? 'begin read only' : 'begin', [], { onexecute: watch } as postgres.UnsafeQueryOptions)
          .execute()
        const settingsApplied = replica
          ? prepared
              .unsafe(REPLICA_SETTINGS_SQL, [
                ...settingsParams(settings, config.statementTimeoutMs),
                replica.waitFor,
                replica.waitMs,
              ])
              .execute()
          : prepared
              .unsafe(
                organizationAdmin ? ORGANIZATION_SETTINGS_SQL : SETTINGS_SQL,
                settingsParams(settings, config.statementTimeoutMs),
              )
              .execute()
        // Awaited below through guarded(), which does not subscribe once the connection is lost.
        begin.catch(() => undefined)
        settingsApplied.catch(() => undefined)
        const session = new PostgresJsSession(observed, dialect, relational as never, logger ? { logger } : {})
        const txDb = new PostgresJsDatabase<Schema>(dialect, session, relational as never) as unknown as Db
        // Promise.resolve adopts a drizzle query (a lazy thenable) with exactly one then(): calling
        // .catch on it directly would execute it a second time.
        const work = Promise.resolve(appCode ? runInUnit(mark, fn, txDb) : fn(txDb))
        work.catch(() => undefined) // reported below, after the settings' own errors
        await guarded(begin)
        const applied = await guarded(settingsApplied)
        if (replica) replica.onReplayed(String((applied as unknown as { replayed: string }[])[0]?.replayed))
        const result = await guarded(work)
        ended = true
        closeUnit(mark)
        open = false
        if (readOnly) {
          // A read-only transaction has nothing to make durable: answer now, and give the connection
          // back once its COMMIT is through — never before, or the next unit on this connection would be
          // written into this transaction.
          conn.unsafe('commit').then(release, release)
          return result
        }
        commitSent = true
        if (!onCommitted) {
          await guarded(conn.unsafe('commit'))
          release()
          return result
        }
        const committed = conn.unsafe('commit').execute()
        let position: Promise<postgres.RowList<postgres.Row[]>> | undefined
        try {
          position = conn.unsafe(COMMIT_LSN_SQL, [], { prepare: config.prepare }).execute()
          position.catch(() => undefined) // read below, once the commit is known
        } catch {
          position = undefined
        }
        await guarded(committed)
        let lsn: string | undefined
        try {
          if (position) lsn = String((await guarded(position))[0]?.lsn)
        } catch {
          lsn = undefined // committed, but where is unknown: the caller keeps this client on the primary
        }
        release()
        onCommitted(lsn)
        return result
      } catch (error) {
        ended = true
        closeUnit(mark)
        // COMMIT was sent and its answer lost: the write may have committed, at an unknown position.
        if (commitSent) onCommitted?.(undefined)
        const mapped = toLibraryError(error)
        // The server rolls back a transaction whose connection is gone: nothing to send on it.
        if (isCallsheetDbError(mapped, 'CONNECTION_ERROR') && lost === undefined) lost = mapped
        if (open && lost === undefined) await guarded(conn.unsafe('rollback')).catch(() => undefined)
        release()
        throw lost !== undefined && !isCallsheetDbError(mapped, 'CONNECTION_ERROR') ? mapDatabaseError(lost) : mapped
      }
    },
    async close() {
      await client.end({ timeout: 5 })
    },
  }
}

function pgliteEngine(pg: PGlite, config: EngineConfig, scope: object): Engine {
  // PGlite is one session: a unit inside any unit on the same instance (another database over it too)
  // would wait for that unit forever.
  const owners = [scope, pg]
  const logger = queryLogger(config)
  const db = drizzlePglite(pg, { schema, ...(logger ? { logger } : {}) }) as unknown as Db
  const dialect = new PgDialect()
  const tables = extractTablesRelationalConfig(schema, createTableRelationsHelpers)
  const relational = { fullSchema: schema, schema: tables.tables, tableNamesMap: tables.tableNamesMap }
  // PGlite's login is a superuser: the database installs its own key (a random secret when none is
  // configured), once, before its first unit. A failure (not migrated yet) is not kept: the next unit
  // tries again, and meanwhile units fail on their own.
  const secret = pgliteSecret(pg, config.secret)
  let installed: Promise<void> | undefined
  let keyReady = false
  const install = async () => {
    for (const statement of installKeyStatements(secret)) await pg.query(statement.text, statement.params)
    keyReady = true
  }
  const ensureKey = () => {
    if (!installed) {
      const attempt = install()
      installed = attempt
      attempt.catch(() => {
        if (installed === attempt) installed = undefined
      })
    }
    return installed.catch(() => undefined)
  }
  return {
    kind: 'pglite',
    scope,
    db,
    refuseInsideUnit: () => void refuseInsideUnit(owners),
    proofs: new TenantProofs(secret),
    stats: () => ({ inUse: 0, waiting: 0 }),
    probe() {
      return Promise.reject(new Error('probe() is for PostgreSQL servers'))
    },
    async unit(settings, { readOnly, appCode, organizationAdmin }, fn) {
      const mark = openUnit(owners)
      try {
        if (!keyReady) await ensureKey()
        // PGlite is one session: its transaction() serialises units. The setup statements go straight
        // to PGlite so that the query log shows only the unit's own queries, as on the server.
        return await pg.transaction(async (tx) => {
          if (readOnly) await tx.query('set transaction read only')
          // PGlite has no statement timeout (no signals in WebAssembly): the setting is left alone.
          await tx.query(
            organizationAdmin ? PGLITE_ORGANIZATION_SETTINGS_SQL : PGLITE_SETTINGS_SQL,
            settingsParams(settings, 0),
          )
          // PGlite refuses a query on an ended transaction itself, but with a plain Error: refuse it here
          // first with the same typed error as the server engine.
          let ended = false
          const own = refusedAfterEnd(tx, () => ended)
          const session = new PgliteSession(
            config.onQuery ? observedPglite(own, config.onQuery) : own,
            dialect,
            relational as never,
            logger ? { logger } : {},
          )
          const txDb = new PgliteDatabase<Schema>(dialect, session, relational as never) as unknown as Db
          try {
            return await (appCode ? runInUnit(mark, fn, txDb) : fn(txDb))
          } finally {
            ended = true
            closeUnit(mark)
          }
        })
      } catch (error) {
        throw toLibraryError(error)
      } finally {
        closeUnit(mark)
      }
    },
    // The caller owns the PGlite instance it passed in.
    async close() {},
  }
}

/** A PGlite transaction whose methods refuse to run once `ended()` (a query issued after its unit). */
function refusedAfterEnd<T extends object>(tx: T, ended: () => boolean): T {
  return new Proxy(tx, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) =>
        ended()
          ? Promise.reject(
              new InvalidStateError('a query was issued after its unit of work ended (a missing await?): not sent'),
            )
          : (value as (...a: unknown[]) => unknown).apply(target, args)
    },
  })
}

/** A PGlite transaction whose `query` calls report their duration. */
function observedPglite<T extends { query: (...args: never[]) => Promise<unknown> }>(
  tx: T,
  onQuery: (event: QueryEvent) => void,
): T {
  return new Proxy(tx, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      if (property !== 'query') return (value as (...a: unknown[]) => unknown).bind(target)
      return async (sql: string, params?: unknown[], options?: unknown) => {
        const started = performance.now()
        const base = { sql, params: params ?? [], target: 'primary' }
        try {
          const result = (await (value as (...a: unknown[]) => Promise<{ rows?: unknown[] }>).call(
            target,
            sql,
            params,
            options,
          )) as { rows?: unknown[] }
          onQuery({ ...base, durationMs: performance.now() - started, rowCount: result.rows?.length ?? 0 })
          return result
        } catch (error) {
          onQuery({ ...base, durationMs: performance.now() - started, error })
          throw error
        }
      }
    },
  })
}
