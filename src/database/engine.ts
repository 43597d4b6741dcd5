import type { PGlite } from '@electric-sql/pglite'
import { createTableRelationsHelpers, extractTablesRelationalConfig, type Logger } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { PgDialect } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite, PgliteDatabase, PgliteSession } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres, PostgresJsDatabase, PostgresJsSession } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import * as schema from '../schema/drizzle-schema'
import { AcquireTimeoutError, isCallsheetDbError, mapDatabaseError, toLibraryError } from '../errors'
import type { ResolvedConfig, ResolvedTarget } from './config'

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
}

// One statement sets everything, transaction-locally (never session SET: it would leak through
// PgBouncer transaction pooling). The text is constant, so it is prepared once per connection.
const SETTINGS_SQL =
  "select set_config('role', $1, true), set_config('app.organization_id', $2, true), " +
  "set_config('app.actor_id', $3, true), set_config('app.api_key_id', $4, true), " +
  "set_config('app.request_id', $5, true), set_config('app.ip', $6, true)"

const settingsParams = (s: UnitSettings) => [s.role, s.organizationId, s.actorId, s.apiKeyId, s.requestId, s.ip]

/** A database engine: where units of work run. */
export interface Engine {
  readonly kind: 'postgres' | 'pglite'
  /** Drizzle over the connecting (owner) role, outside any tenant context. */
  readonly db: Db
  /**
   * Runs `fn` in one transaction whose first statement applies `settings`. Driver errors are mapped
   * to library errors; a throw rolls everything back.
   */
  unit<T>(settings: UnitSettings, options: { readonly readOnly: boolean }, fn: (db: Db) => Promise<T>): Promise<T>
  close(): Promise<void>
  /** Pool statistics (postgres only). */
  stats(): { readonly inUse: number; readonly waiting: number }
}

function queryLogger(config: ResolvedConfig): Logger | undefined {
  const debug = config.logger.debug
  if (!debug) return undefined
  return { logQuery: (query, params) => debug.call(config.logger, 'query', { sql: query, params }) }
}

/** `conn` with every `unsafe()` call prepared (or not) as configured, whatever the caller asked. */
function withPrepare(conn: postgres.ReservedSql, prepare: boolean, lost: () => unknown): postgres.ReservedSql {
  return new Proxy(conn, {
    get(target, property, receiver) {
      if (property !== 'unsafe') return Reflect.get(target, property, receiver) as unknown
      return (query: string, params?: postgres.ParameterOrJSON<never>[], options?: postgres.UnsafeQueryOptions) => {
        // Never write to a connection the server closed (see unit()).
        const error = lost()
        if (error !== undefined) throw error
        return target.unsafe(query, params, { ...options, prepare })
      }
    },
  })
}

/** Opens the engine for a resolved target. */
export function createEngine(target: ResolvedTarget, config: ResolvedConfig): Engine {
  return target.kind === 'pglite' ? pgliteEngine(target.pglite, config) : postgresEngine(target, config)
}

function postgresEngine(target: Extract<ResolvedTarget, { kind: 'postgres' }>, config: ResolvedConfig): Engine {
  const options: postgres.Options<Record<string, postgres.PostgresType>> = {
    onnotice: () => {},
    ...target.options,
    max: config.pool.max,
    idle_timeout: config.pool.idleTimeoutSeconds,
    prepare: config.prepare,
    connection: {
      application_name: 'callsheet-db',
      ...target.options.connection,
      ...(config.statementTimeoutMs > 0 ? { statement_timeout: config.statementTimeoutMs } : {}),
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
            reject(new AcquireTimeoutError(config.pool.acquireTimeoutMs))
          }, config.pool.acquireTimeoutMs)
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
    db,
    stats: () => ({ inUse, waiting }),
    async unit(settings, { readOnly }, fn) {
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
            if (attempt >= config.pool.max || !isCallsheetDbError(mapDatabaseError(error), 'CONNECTION_ERROR'))
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
      try {
        // BEGIN, the settings and the first query of `fn` are pipelined: postgres.js writes them in one
        // packet. That needs prepared statements: postgres.js sends an unprepared statement that has
        // parameters "describe first" (a round trip of its own, and nothing pipelines behind it), and
        // drizzle asks it to prepare named queries only.
        const prepared = withPrepare(conn, config.prepare, () => lost)
        const begin = conn
          .unsafe(readOnly ? 'begin read only' : 'begin', [], { onexecute: watch } as postgres.UnsafeQueryOptions)
          .execute()
        const settingsApplied = prepared.unsafe(SETTINGS_SQL, settingsParams(settings)).execute()
        const session = new PostgresJsSession(prepared, dialect, relational as never, logger ? { logger } : {})
        const txDb = new PostgresJsDatabase<Schema>(dialect, session, relational as never) as unknown as Db
        // Promise.resolve adopts a drizzle query (a lazy thenable) with exactly one then(): calling
        // .catch on it directly would execute it a second time.
        const work = Promise.resolve(fn(txDb))
        work.catch(() => undefined) // reported below, after the settings' own errors
        await guarded(begin)
        await guarded(settingsApplied)
        const result = await guarded(work)
        open = false
        if (readOnly) {
          // A read-only transaction has nothing to make durable: answer now, and give the connection
          // back once its COMMIT is through — never before, or the next unit on this connection would be
          // written into this transaction.
          conn.unsafe('commit').then(release, release)
          return result
        }
        await guarded(conn.unsafe('commit'))
        release()
        return result
      } catch (error) {
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

function pgliteEngine(pg: PGlite, config: ResolvedConfig): Engine {
  const logger = queryLogger(config)
  const db = drizzlePglite(pg, { schema, ...(logger ? { logger } : {}) }) as unknown as Db
  const dialect = new PgDialect()
  const tables = extractTablesRelationalConfig(schema, createTableRelationsHelpers)
  const relational = { fullSchema: schema, schema: tables.tables, tableNamesMap: tables.tableNamesMap }
  return {
    kind: 'pglite',
    db,
    stats: () => ({ inUse: 0, waiting: 0 }),
    async unit(settings, { readOnly }, fn) {
      try {
        // PGlite is one session: its transaction() serialises units. The setup statements go straight
        // to PGlite so that the query log shows only the unit's own queries, as on the server.
        return await pg.transaction(async (tx) => {
          if (readOnly) await tx.query('set transaction read only')
          await tx.query(SETTINGS_SQL, settingsParams(settings))
          const session = new PgliteSession(tx, dialect, relational as never, logger ? { logger } : {})
          return fn(new PgliteDatabase<Schema>(dialect, session, relational as never) as unknown as Db)
        })
      } catch (error) {
        throw toLibraryError(error)
      }
    },
    // The caller owns the PGlite instance it passed in.
    async close() {},
  }
}
