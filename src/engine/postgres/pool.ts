import postgres from 'postgres'
import { AcquireTimeoutError, mapDatabaseError } from '../../errors'
import type { EngineConfig, ResolvedTarget } from '../engine-config'
import { isStaleConnectionError } from '../workarounds/postgres-js-stale-connection-error'
import { releaseWhenReserved } from '../workarounds/postgres-js-uncancellable-reserve'

/** A postgres.js client and the connections units reserve from it, with the counts `stats()` reports. */
export class PostgresPool {
  readonly client: postgres.Sql
  /** Connections reserved by units. */
  inUse = 0
  /** Units waiting for a connection. */
  waiting = 0
  readonly #acquireTimeoutMs: number
  readonly #retries: number
  readonly #drained: (() => void)[] = []

  constructor(
    target: Extract<ResolvedTarget, { kind: 'postgres' }>,
    config: EngineConfig,
    max: number,
    acquireTimeoutMs: number,
  ) {
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
    this.client = target.url === undefined ? postgres(options) : postgres(target.url, options)
    this.#acquireTimeoutMs = acquireTimeoutMs
    this.#retries = config.pool.max
  }

  /**
   * A connection for one unit (counted in `inUse` until {@link release}).
   * @throws AcquireTimeoutError when none is free within the acquire timeout; mapped driver errors.
   */
  async acquire(): Promise<postgres.ReservedSql> {
    for (let attempt = 0; ; attempt++) {
      this.waiting++
      let timer: NodeJS.Timeout | undefined
      let timedOut = false
      const reserving = this.client.reserve()
      try {
        const conn = await Promise.race([
          reserving,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              timedOut = true
              reject(new AcquireTimeoutError(this.#acquireTimeoutMs))
            }, this.#acquireTimeoutMs)
          }),
        ])
        this.inUse++
        return conn
      } catch (error) {
        if (timedOut) releaseWhenReserved(reserving)
        if (!isStaleConnectionError(error, attempt, this.#retries)) throw mapDatabaseError(error)
      } finally {
        clearTimeout(timer)
        this.waiting--
      }
    }
  }

  /** Gives `conn` back; a `lost` one is not (postgres.js has it in its closed queue already). */
  release(conn: postgres.ReservedSql, lost: boolean): void {
    this.inUse--
    if (!lost) conn.release()
    if (this.inUse === 0) for (const done of this.#drained.splice(0)) done()
  }

  /**
   * Resolves once no unit holds a connection, or after `maxMs`. A read unit answers before its COMMIT is
   * through and gives its connection back after (postgres-unit.ts `commitRead`); postgres.js's `end()`
   * called in between waits its whole timeout for the reserved connection (seen: `db.close()` took 5 s
   * right after a read on Citus, whose COMMIT also ends the worker transaction). So close drains first.
   */
  async drain(maxMs: number): Promise<void> {
    if (this.inUse === 0) return
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve) => {
      this.#drained.push(resolve)
      timer = setTimeout(resolve, maxMs)
    })
    clearTimeout(timer)
  }
}
