/**
 * One unit of work on a PostgreSQL server, in the order it happens: reserve a connection; BEGIN, the
 * settings statement and the first query of `fn` in one packet; `fn`; COMMIT (or ROLLBACK); give the
 * connection back. {@link PostgresUnit.run} reads top to bottom; each step is a method below it.
 */
import type postgres from 'postgres'
import { PostgresJsDatabase, PostgresJsSession } from 'drizzle-orm/postgres-js'
import {
  ConnectionError,
  driverErrorCode,
  InvalidStateError,
  isCallsheetDbError,
  mapDatabaseError,
  TenantProofError,
  toLibraryError,
} from '../../errors'
import { tableOfConstraint } from '../../schema/table-names'
import type { DrizzleSetup, Schema } from '../drizzle-setup'
import type { Db, UnitOptions } from '../engine'
import type { PreparedRead, UnitStatements, UnitWork } from '../prepared-read'
import type { QueryEvent } from '../engine-config'
import { COMMIT_LSN_SQL, commitLsnOf, replayedOf } from '../replica-gate'
import { settingsParams, type UnitSettings } from '../settings-statement'
import { closeUnit, openUnit, runInUnit, type OpenUnit } from '../unit-scope'
import { ClosedConnectionWatch } from '../workarounds/postgres-js-closed-connection'
import type { Lease, PostgresPool } from './pool'
import { unitConnection } from './unit-connection'

/** What every unit of one postgres engine shares (built once per engine). */
export interface PostgresUnitEngine {
  readonly owners: readonly object[]
  readonly pool: PostgresPool
  readonly prepare: boolean
  readonly statementTimeoutMs: number
  readonly drizzle: DrizzleSetup
  /** `onQuery` for this target, or undefined when unset (nothing is observed then). */
  readonly observe: ((event: Omit<QueryEvent, 'target'>) => void) | undefined
  /**
   * The settings statement's text for tenant units and organization administration (each with the
   * primary check of a read or a write unit, migration 0017), and for replica reads.
   */
  readonly settingsText: {
    readonly tenant: { readonly read: string; readonly write: string }
    readonly organization: { readonly read: string; readonly write: string }
    readonly replica: string
  }
  /** Resolves once the login has passed the privilege check (retried by the next unit after a failure). */
  checkLogin(): Promise<void>
  loginChecked(): boolean
}

/**
 * Where a unit stands. `running`: `fn` may query. `decided`: the outcome is known, nothing more may reach
 * the connection, the transaction is still open (a failure rolls it back). `closed`: a read's COMMIT is
 * sent. `committing`: a write's COMMIT is sent (if its answer is lost, the write may have committed).
 */
type Phase = 'running' | 'decided' | 'closed' | 'committing'

const afterEnd = () =>
  new InvalidStateError('a query was issued after its unit of work ended (a missing await?): not sent')

/** One unit of work on a reserved postgres.js connection. Run once. */
export class PostgresUnit<T> {
  private phase: Phase = 'running'
  private mark!: OpenUnit
  private lease!: Lease
  private conn!: postgres.ReservedSql
  private released = false
  /** A prepared read's COMMIT, sent right behind it (read-only units). */
  private committed: Promise<unknown> | undefined
  private readonly watch = new ClosedConnectionWatch()

  constructor(
    private readonly engine: PostgresUnitEngine,
    private readonly settings: UnitSettings,
    private readonly options: UnitOptions,
  ) {}

  /**
   * Runs `fn` in one transaction whose first statement applies the settings.
   * @throws InvalidStateError, before anything is sent, inside a unit of the same database; mapped errors.
   */
  async run(work: UnitWork<T, Db>): Promise<T> {
    this.mark = openUnit(this.engine.owners)
    if (this.settings.organizationId !== '' && this.settings.proof === '') throw TenantProofError.noSecret()
    if (!this.engine.loginChecked()) await this.engine.checkLogin()
    this.lease = await this.engine.pool.acquire()
    this.conn = this.lease.conn
    try {
      // BEGIN, the settings and the first query of `work` are pipelined: postgres.js writes them in one
      // packet (prepared statements only: see workarounds/drizzle-unsafe-prepare.ts); a prepared read
      // also takes its COMMIT along.
      const queries = unitConnection(this.conn, this.engine.prepare, this.refused)
      const begun = this.sendBegin()
      const applied = this.sendSettings(queries)
      const working = typeof work === 'function' ? this.startFn(work, queries) : this.sendRead(work, queries)
      await this.watch.guarded(begun)
      this.reportReplay(await this.watch.guarded(applied))
      const result = await this.watch.guarded(working)
      this.decide()
      if (this.options.readOnly) this.commitRead()
      else await this.commitWrite()
      return result
    } catch (error) {
      throw await this.fail(error)
    }
  }

  /** Refuses the queries of `fn` once the connection is lost or the unit has ended. */
  private readonly refused = (): unknown => this.watch.lost ?? (this.phase !== 'running' ? afterEnd() : undefined)

  private readonly release = (): void => {
    if (this.released) return
    this.released = true
    this.watch.detach()
    this.engine.pool.release(this.lease, this.watch.lost !== undefined, this.watch.dropped)
  }

  private sendBegin(): Promise<unknown> {
    const begun = this.conn
      .unsafe(this.options.readOnly ? 'begin read only' : 'begin', [], {
        onexecute: this.watch.onexecute,
      } as postgres.UnsafeQueryOptions)
      .execute()
    begun.catch(() => undefined) // awaited through guarded(), which does not subscribe once the connection is lost
    return begun
  }

  private sendSettings(queries: postgres.ReservedSql): Promise<unknown> {
    const { replica, organizationAdmin } = this.options
    const { settingsText, statementTimeoutMs } = this.engine
    const kind = this.options.readOnly ? 'read' : 'write'
    const text = replica
      ? settingsText.replica
      : organizationAdmin
        ? settingsText.organization[kind]
        : settingsText.tenant[kind]
    const applied = queries.unsafe(text, settingsParams(this.settings, statementTimeoutMs, replica)).execute()
    applied.catch(() => undefined) // as BEGIN's
    return applied
  }

  /** The unit's own queries, observed when onQuery is set (BEGIN, settings and COMMIT are not). */
  private own(queries: postgres.ReservedSql): postgres.ReservedSql {
    const { prepare, observe } = this.engine
    return observe ? unitConnection(this.conn, prepare, this.refused, observe) : queries
  }

  private startFn(fn: (db: Db, statements: UnitStatements) => Promise<T>, queries: postgres.ReservedSql): Promise<T> {
    const { drizzle } = this.engine
    const own = this.own(queries)
    const session = new PostgresJsSession(
      own,
      drizzle.dialect,
      drizzle.relational,
      drizzle.logger ? { logger: drizzle.logger } : {},
    )
    const db = new PostgresJsDatabase<Schema>(drizzle.dialect, session, drizzle.relational) as unknown as Db
    const statements: UnitStatements = { read: (read) => sendPrepared(own, read, drizzle) }
    // Promise.resolve adopts a drizzle query (a lazy thenable) with exactly one then(): calling
    // .catch on it directly would execute it a second time.
    const work = Promise.resolve(
      this.options.appCode ? runInUnit(this.mark, (d: Db) => fn(d, statements), db) : fn(db, statements),
    )
    work.catch(() => undefined) // reported by run(), after the settings' own errors
    return work
  }

  /**
   * A prepared read as the whole unit: no Drizzle session. In a read-only unit its COMMIT is queued right
   * behind it (same packet): the unit has nothing else to send, and a COMMIT after a failed statement
   * ends the transaction as a ROLLBACK would.
   */
  private sendRead(read: PreparedRead<T>, queries: postgres.ReservedSql): Promise<T> {
    const work = sendPrepared(this.own(queries), read, this.engine.drizzle)
    work.catch(() => undefined) // as startFn's
    if (this.options.readOnly) {
      const committed = this.conn.unsafe('commit').execute()
      committed.catch(() => undefined) // awaited through guarded() by commitRead or fail()
      this.committed = committed
    }
    return work
  }

  private reportReplay(applied: unknown): void {
    this.options.replica?.onReplayed(replayedOf(applied))
  }

  private decide(): void {
    if (this.phase === 'running') this.phase = 'decided'
    closeUnit(this.mark)
  }

  /**
   * A read-only transaction has nothing to make durable: answer now, and give the connection back once
   * its COMMIT is through — never before, or the next unit on this connection would be written into it.
   */
  private commitRead(): void {
    this.phase = 'closed'
    ;(this.committed ?? this.conn.unsafe('commit')).then(this.release, this.release)
  }

  /** COMMIT; with replicas, the commit's WAL position read in the same packet (see replica-gate.ts). */
  private async commitWrite(): Promise<void> {
    this.phase = 'committing'
    const { onCommitted } = this.options
    if (!onCommitted) {
      await this.watch.guarded(this.conn.unsafe('commit'))
      this.release()
      return
    }
    const committed = this.conn.unsafe('commit').execute()
    let position: Promise<postgres.RowList<postgres.Row[]>> | undefined
    try {
      position = this.conn.unsafe(COMMIT_LSN_SQL, [], { prepare: this.engine.prepare }).execute()
      position.catch(() => undefined) // read below, once the commit is known
    } catch {
      position = undefined
    }
    await this.watch.guarded(committed)
    let lsn: string | undefined
    try {
      if (position) lsn = commitLsnOf(await this.watch.guarded(position))
    } catch {
      lsn = undefined // committed, but where is unknown: the caller keeps this client on the primary
    }
    this.release()
    onCommitted(lsn)
  }

  /**
   * The unit reached a server that must not take it (migration 0017's check, CS005, or a write refused as
   * read-only, 25006, on the primary target): the connection is dropped, its slot's next client tries the
   * next host of a multi-host URL first (pool.ts `release`), and the unit fails with a retryable
   * CONNECTION_ERROR. Nothing of it ran: the check is the first statement, and a read-only server committed
   * nothing.
   */
  private notThePrimary(error: unknown): ConnectionError | undefined {
    if (this.options.replica) return undefined
    const code = driverErrorCode(error)
    if (code !== 'CS005' && !(code === '25006' && !this.options.readOnly)) return undefined
    const mapped = new ConnectionError(
      code === 'CS005' ? mapDatabaseError(error).message : `not the primary: ${mapDatabaseError(error).message}`,
      { cause: error, sqlState: code },
    )
    this.watch.drop(mapped)
    return mapped
  }

  /** Rolls back what can be, gives the connection back, and returns the error to throw. */
  private async fail(error: unknown): Promise<unknown> {
    this.decide()
    // COMMIT was sent and its answer lost: the write may have committed, at an unknown position.
    if (this.phase === 'committing') this.options.onCommitted?.(undefined)
    const mapped = this.notThePrimary(error) ?? toLibraryError(error, { tableOfConstraint })
    // The server rolls back a transaction whose connection is gone: nothing to send on it.
    if (isCallsheetDbError(mapped, 'CONNECTION_ERROR') && this.watch.lost === undefined) this.watch.lost = mapped
    const { lost } = this.watch
    if (this.phase === 'decided' && lost === undefined)
      await this.watch.guarded(this.committed ?? this.conn.unsafe('rollback')).catch(() => undefined)
    this.release()
    return lost !== undefined && !isCallsheetDbError(mapped, 'CONNECTION_ERROR') ? mapDatabaseError(lost) : mapped
  }
}

/**
 * Sends a prepared read now (queued ahead of anything sent after this call) and maps its rows, as Drizzle's
 * own select would: array mode, the same parsers, the same logger call.
 */
function sendPrepared<T>(conn: postgres.ReservedSql, read: PreparedRead<T>, drizzle: DrizzleSetup): Promise<T> {
  try {
    drizzle.logger?.logQuery(read.text, read.params as unknown[])
    // Sent now (execute), so that a COMMIT sent after this call is queued behind it.
    const query = conn
      .unsafe(read.text, read.params as postgres.ParameterOrJSON<never>[])
      .values()
      .execute()
    return Promise.resolve(query).then((rows) => read.map(rows as unknown as unknown[][]))
  } catch (error) {
    return Promise.reject(error)
  }
}
