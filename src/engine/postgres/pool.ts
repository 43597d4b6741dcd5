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

/** A URL's host list (`postgres://u@h1:p1,h2:p2/db`) rotated left by `n`: the first host tried is `n` on. */
function rotatedUrl(url: string, n: number): string {
  const match = /^([a-z]+:\/\/(?:[^@/]*@)?)([^/?#]*)(.*)$/i.exec(url)
  if (!match || n === 0) return url
  const hosts = (match[2] ?? '').split(',')
  if (hosts.length < 2) return url
  const k = n % hosts.length
  return `${match[1]}${[...hosts.slice(k), ...hosts.slice(0, k)].join(',')}${match[3]}`
}

/** The same for options that list hosts (`host: ['h1', 'h2']`, `port: [p1, p2]`). */
function rotatedOptions<O extends postgres.Options<Record<string, postgres.PostgresType>>>(options: O, n: number): O {
  const { host, port } = options as { host?: unknown; port?: unknown }
  if (n === 0 || !Array.isArray(host) || host.length < 2) return options
  const k = n % host.length
  const rotate = <T>(xs: T[]): T[] => [...xs.slice(k), ...xs.slice(0, k)]
  return {
    ...options,
    host: rotate(host),
    ...(Array.isArray(port) && port.length === host.length ? { port: rotate(port) } : {}),
  }
}

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
    const open = (o: postgres.Options<Record<string, postgres.PostgresType>>, rotation = 0): postgres.Sql => {
      const client =
        target.url === undefined ? postgres(rotatedOptions(o, rotation)) : postgres(rotatedUrl(target.url, rotation), o)
      onClient(client)
      return client
    }
    this.client = open(options(Math.min(max, OUTSIDE_UNITS_MAX)))
    this.#slots = Array.from(
      { length: max },
      () => new Slot((onclose, rotation) => open(options(1, onclose), rotation)),
    )
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

  /**
   * Gives the lease back; a `lost` connection is not (postgres.js has it in its closed queue already), and
   * its slot gets a fresh client (the driver's state after a lost reserved connection is suspect, see
   * Slot) — one that tries the next host of a multi-host URL first when the library `dropped` it itself
   * (it reached a standby).
   */
  release(lease: Lease, lost: boolean, dropped = false): void {
    this.inUse--
    if (!lost) lease.conn.release()
    else lease.slot.replace(dropped)
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
