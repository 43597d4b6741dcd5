/**
 * WORKAROUND for postgres.js 3.4.9, porsager/postgres#1208: it never tells the holder of a reserved
 * connection that the server closed it. The next query on it is written to a null socket (an uncaught
 * TypeError from a timer) and never settles, and release() would put the dead connection back in the
 * pool's open queue.
 *
 * The unit hands {@link ClosedConnectionWatch.onexecute} to its BEGIN as `onexecute` (the hook
 * sql.begin() itself uses to reach the connection), learns of the close the way sql.begin() does, fails
 * the await in progress, and neither writes to nor releases a lost connection.
 *
 * Delete when a postgres.js release fixes #1208: a query on a reserved connection whose server closed it
 * rejects (CONNECTION_CLOSED), and releasing such a connection does not return it to the open queue.
 * Check with test/faults.test.ts and the killed-backend cases of test/batch-insert.test.ts, which
 * reproduce it.
 */

/** The part of a postgres.js pooled connection the watch touches (not in postgres.js's types). */
interface PooledConnection {
  onclose?: ((error: unknown) => void) | null
  terminate?: () => void
}

/** Watches one reserved connection for the length of one unit. */
export class ClosedConnectionWatch {
  /** The close (or connection error) the unit's connection suffered; undefined while it is alive. */
  lost: unknown = undefined
  /** The library closed the connection itself ({@link drop}), because of the server it reached. */
  dropped = false
  // The one await in progress, to be failed if the connection goes. A guard per await (rather than
  // racing every await against one never-settling promise) drops its reference as soon as the await
  // settles, so results are not kept alive until the unit ends (measured: +10 % CPU, half of it GC).
  private abort: ((error: unknown) => void) | undefined = undefined
  private pooled: PooledConnection | undefined = undefined

  /** BEGIN's `onexecute`: receives the pooled connection and hooks its close. */
  readonly onexecute = (connection: PooledConnection): boolean => {
    this.pooled = connection
    connection.onclose = (error) => {
      this.lost = error ?? new Error('connection closed')
      this.abort?.(this.lost)
    }
    return true
  }

  /** `work`, failed at once if the connection is (or becomes) lost before it settles. */
  guarded<T>(work: PromiseLike<T>): Promise<T> {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the driver's error, typed unknown
    if (this.lost !== undefined) return Promise.reject(this.lost)
    return new Promise<T>((resolve, reject) => {
      this.abort = reject
      work.then(
        (value) => {
          this.abort = undefined
          resolve(value)
        },
        (error: unknown) => {
          this.abort = undefined
          reject(error)
        },
      )
    })
  }

  /**
   * Closes the connection (it reached a server that must not take this work: a standby): it is `lost`
   * from now on, so the unit neither writes to it nor gives it back, and `dropped` tells the pool to give
   * the slot a client that tries the next host of a multi-host URL. Not a driver workaround: postgres.js
   * has no public way to close one reserved connection; `terminate` is the pooled connection's own close.
   */
  drop(reason: unknown): void {
    this.dropped = true
    if (this.lost === undefined) this.lost = reason
    this.pooled?.terminate?.()
  }

  /** Stops watching (the connection goes back to the pool, or is already in its closed queue). */
  detach(): void {
    if (this.pooled) this.pooled.onclose = null
  }
}
