import postgres from 'postgres'
import { AcquireTimeoutError } from '../../errors'
import type { EngineConfig, ResolvedTarget } from '../engine-config'
import { reserveSlot, Slot } from '../workarounds/postgres-js-stranded-reserve'

/** A connection a unit holds, and the slot it came from (given back with {@link PostgresPool.release}). */
export interface Lease {
  readonly conn: postgres.ReservedSql
  readonly slot: Slot
}

/** Statements outside units (`$primary`, probes, the login check) share at most this many connections. */
const OUTSIDE_UNITS_MAX = 2

/**
 * Reconnect delays (seconds) after failed connection attempts: 20 ms, doubled per consecutive failure,
 * at most 250 ms, with jitter. postgres.js's own default grows to 20 s, so a unit queued across a
 * restart could wait long after the server was back; attempts are made only while a unit waits.
 */
const reconnectBackoff = (failures: number): number => Math.min(0.02 * 2 ** failures, 0.25) * (0.5 + Math.random() / 2)

interface Waiter {
  readonly resolve: (slot: Slot) => void
  readonly reject: (error: unknown) => void
  readonly timer: NodeJS.Timeout
}

/**
 * The connections of one target, with the counts `stats()` reports: `max` slots (each a postgres.js client
 * of one connection, see workarounds/postgres-js-stranded-reserve.ts for why), a FIFO of units waiting
 * for one, and a separate client for statements outside units.
 */
export class PostgresPool {
  /** Statements outside units (`$primary`, probes, the login check): at most {@link OUTSIDE_UNITS_MAX} connections. */
  readonly client: postgres.Sql
  /** Connections reserved by units. */
  inUse = 0
  /** Units waiting for a connection (for a free slot, or for the server to answer). */
  waiting = 0
  readonly #acquireTimeoutMs: number
  readonly #waitForServer: boolean
  readonly #slots: readonly Slot[]
  readonly #free: Slot[] = []
  readonly #waiters: Waiter[] = []
  readonly #drained: (() => void)[] = []

  /**
   * @param waitForServer  a unit waits (within the acquire timeout) for a server that is down or
   *   restarting (the primary); false: a failure to connect fails the unit at once (a replica, whose read
   *   then goes to the primary).
   * @param onClient  called with every postgres.js client made (setup such as drizzle's type parsers).
   */
  constructor(
    target: Extract<ResolvedTarget, { kind: 'postgres' }>,
    config: EngineConfig,
    max: number,
    acquireTimeoutMs: number,
    waitForServer: boolean,
    onClient: (client: postgres.Sql) => void,
  ) {
    const options = (
      connections: number,
      onclose?: () => void,
    ): postgres.Options<Record<string, postgres.PostgresType>> => ({
      onnotice: () => {},
      backoff: reconnectBackoff,
      ...target.options,
      max: connections,
      idle_timeout: config.pool.idleTimeoutSeconds,
      prepare: config.prepare,
      ...(onclose ? { onclose } : {}),
      connection: {
        application_name: 'callsheet-db',
        ...target.options.connection,
        // Also for the statements outside units (db.organizations, $primary). Not as a startup parameter
        // when prepare is off (PgBouncer, which refuses it): units still set it themselves.
        ...(config.statementTimeoutMs > 0 && config.prepare ? { statement_timeout: config.statementTimeoutMs } : {}),
      },
    })
    const open = (o: postgres.Options<Record<string, postgres.PostgresType>>): postgres.Sql => {
      const client = target.url === undefined ? postgres(o) : postgres(target.url, o)
      onClient(client)
      return client
    }
    this.client = open(options(Math.min(max, OUTSIDE_UNITS_MAX)))
    this.#slots = Array.from({ length: max }, () => new Slot((onclose) => open(options(1, onclose))))
    this.#free.push(...[...this.#slots].reverse())
    this.#acquireTimeoutMs = acquireTimeoutMs
    this.#waitForServer = waitForServer
  }

  /**
   * A connection for one unit (counted in `inUse` until {@link release}).
   * @throws AcquireTimeoutError when none is ready within the acquire timeout; mapped driver errors.
   */
  async acquire(): Promise<Lease> {
    this.waiting++
    const started = performance.now()
    try {
      const slot = this.#free.pop() ?? (await this.#queue())
      try {
        const left = Math.max(1, this.#acquireTimeoutMs - (performance.now() - started))
        const conn = await reserveSlot(slot, left, this.#waitForServer, this.#acquireTimeoutMs)
        this.inUse++
        return { conn, slot }
      } catch (error) {
        this.#give(slot)
        throw error
      }
    } finally {
      this.waiting--
    }
  }

  /** Gives the lease back; a `lost` connection is not (postgres.js has it in its closed queue already). */
  release(lease: Lease, lost: boolean): void {
    this.inUse--
    if (lost)
      lease.slot.replace() // the driver's state after a lost reserved connection is suspect (see Slot)
    else lease.conn.release()
    this.#give(lease.slot)
    if (this.inUse === 0) for (const done of this.#drained.splice(0)) done()
  }

  /** Every client: the slots' and the one outside units. */
  clients(): postgres.Sql[] {
    return [this.client, ...this.#slots.map((slot) => slot.sql)]
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

  /** Waits (FIFO, within the acquire timeout) for a slot another unit gives back. */
  #queue(): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.#waiters.indexOf(waiter)
          if (at >= 0) this.#waiters.splice(at, 1)
          reject(new AcquireTimeoutError(this.#acquireTimeoutMs))
        }, this.#acquireTimeoutMs),
      }
      this.#waiters.push(waiter)
    })
  }

  /** A slot is free again: to the longest waiting unit, or to the free list. */
  #give(slot: Slot): void {
    const waiter = this.#waiters.shift()
    if (waiter === undefined) {
      this.#free.push(slot)
      return
    }
    clearTimeout(waiter.timer)
    waiter.resolve(slot)
  }
}
