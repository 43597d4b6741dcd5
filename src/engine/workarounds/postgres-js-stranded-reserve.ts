/**
 * WORKAROUND for postgres.js 3.4.9, whose queue of reservations loses them when connections die
 * (seen under restarts, issue 17: units waited the whole acquire timeout although the server was back
 * within 0.1–2 s):
 * - porsager/postgres#1195 (open): a queued `reserve()` is stranded forever when the connection it waits
 *   for closes: the driver's `onclose` hands it to the reconnect as its `initial` query, and a successful
 *   reconnect drops a reservation given that way instead of resolving it.
 * - A reservation rejected while it is still in the queue (its connect attempt failed, or — #1215, open —
 *   a reconnected connection handed it the previous life's fatal error) stays there, and the next
 *   connection to open is handed to that settled promise and never used again: a pooled connection lost
 *   for the life of the process, and every later reservation on it stranded (reproduced by
 *   test/faults.test.ts "backend terminated mid-batch").
 *
 * What keeps every reservation of ours alive (postgres/pool.ts): each pooled connection is its own
 * postgres.js client with `max: 1` (a {@link Slot}), reserved by at most one unit at a time. Whenever the
 * driver's state of a slot may hold a lost or stranded reservation — a reservation rejected with a
 * connection error, the connection closed while a reservation waits, a unit's connection lost — the slot
 * gets a fresh client ({@link Slot.replace}: cheap, the old one is ended and its sockets closed), and the
 * waiting unit asks the fresh one, after a short backoff when the server could not be reached.
 *
 * Delete when a postgres.js release resolves (or rejects) a reservation handed to a reconnect, removes a
 * rejected reservation from its queue and resets a reconnected connection's error state (#1195, #1215 or
 * their equivalents): then one client of `max` connections may serve all units again. test/faults.test.ts
 * and test/failover.test.ts reproduce both.
 */
import type postgres from 'postgres'
import {
  AcquireTimeoutError,
  driverErrorCode,
  isCallsheetDbError,
  mapDatabaseError,
  type CallsheetDbError,
} from '../../errors'

type Client = postgres.Sql

/** One pooled connection: a postgres.js client of one connection, replaced whenever its state is suspect. */
export class Slot {
  #sql: Client
  /** Set while a unit waits for this slot's connection: told when the driver reports it closed. */
  onClose: (() => void) | undefined = undefined
  #rotation = 0

  /**
   * `open` makes a client of one connection that calls the given `onclose` when its connection closes,
   * to the hosts of a multi-host URL rotated by `rotation` (so the first one tried is the next host).
   */
  constructor(private readonly open: (onclose: () => void, rotation: number) => Client) {
    this.#sql = this.#fresh()
  }

  get sql(): Client {
    return this.#sql
  }

  /**
   * A fresh client from now on; the old one is ended (its connection closed, its queue rejected).
   * `nextHost`: the connection reached a server that must not take the work (a standby): the fresh client
   * tries the next host of a multi-host URL first. A dropped connection is never reconnected by its own
   * client: postgres.js 3.4.9 keeps a closed connection's unsent bytes and a cleared write timer, and the
   * reconnected connection then never writes (its startup hangs; seen when dropping a unit's connection).
   */
  replace(nextHost = false): void {
    if (nextHost) this.#rotation++
    const old = this.#sql
    this.#sql = this.#fresh()
    old.end({ timeout: 0 }).catch(() => undefined)
  }

  #fresh(): Client {
    // Deferred: postgres.js calls onclose in the middle of its own close handling, and a reservation made
    // there would connect the connection a second time. A replaced client's closes are not ours any more.
    const box: { client?: Client } = {}
    box.client = this.open(() => {
      setImmediate(() => {
        if (box.client === this.#sql) this.onClose?.()
      })
    }, this.#rotation)
    return box.client
  }
}

// The server is not there, is starting up or shutting down: it may come back.
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'CONNECT_TIMEOUT', 'ETIMEDOUT'])
const SERVER_NOT_READY = new Set(['57P01', '57P02', '57P03'])
const unreachable = (error: unknown): boolean => {
  const code = driverErrorCode(error) ?? ''
  return CONNECT_FAILURES.has(code) || SERVER_NOT_READY.has(code)
}

/** Delay before asking again after `failures` consecutive failures to reach the server: 20 ms doubled, ≤ 250 ms, jittered. */
const retryDelayMs = (failures: number): number => Math.min(20 * 2 ** failures, 250) * (0.5 + Math.random() / 2)

/**
 * A reserved connection of `slot` within `timeoutMs` (what is left of the unit's `acquireTimeoutMs`).
 * With `waitForServer`, a server that is down or restarting is waited for, so a unit queued across a
 * restart gets a connection as soon as the server answers; without (a replica), a failure to reach it
 * fails the unit at once.
 * @throws AcquireTimeoutError (with the last connection error as its cause) when none came in time;
 *   a mapped error when the server refused for another reason (authentication, a missing database).
 */
export function reserveSlot(
  slot: Slot,
  timeoutMs: number,
  waitForServer: boolean,
  acquireTimeoutMs: number,
): Promise<postgres.ReservedSql> {
  return new Promise((resolve, reject) => {
    let settled = false
    let latest: Promise<postgres.ReservedSql> | undefined
    let lastError: unknown
    let failures = 0
    let retry: NodeJS.Timeout | undefined
    const finish = (error: CallsheetDbError | undefined, conn?: postgres.ReservedSql): void => {
      settled = true
      clearTimeout(timer)
      clearTimeout(retry)
      slot.onClose = undefined
      if (error) reject(error)
      else resolve(conn as postgres.ReservedSql)
    }
    const ask = (): void => {
      retry = undefined
      if (settled) return
      const reserving = slot.sql.reserve()
      latest = reserving
      reserving.then(
        (conn) => {
          // The first to resolve wins; one resolved after that goes straight back.
          if (settled) conn.release()
          else finish(undefined, conn)
        },
        (error: unknown) => {
          if (settled || reserving !== latest) return
          lastError = error
          // The rejected reservation may still sit in the driver's queue: never ask that client again.
          slot.replace()
          const connectionError = isCallsheetDbError(mapDatabaseError(error), 'CONNECTION_ERROR')
          if (!connectionError || (!waitForServer && unreachable(error))) {
            finish(mapDatabaseError(error))
            return
          }
          retry = setTimeout(ask, unreachable(error) ? retryDelayMs(failures++) : 0)
        },
      )
    }
    // A close while we wait may have stranded our reservation (#1195): ask a fresh client at once.
    slot.onClose = () => {
      if (settled || retry !== undefined) return
      slot.replace()
      ask()
    }
    const timer = setTimeout(() => finish(new AcquireTimeoutError(acquireTimeoutMs, lastError)), timeoutMs)
    ask()
  })
}
