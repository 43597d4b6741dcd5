import { isCallsheetDbError, type CallsheetDbError } from '../errors'

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /**
   * How many times to retry after the first attempt (so at most `retries + 1` calls of `fn`).
   * @default 3
   */
  readonly retries?: number
  /**
   * Delay before the first retry; doubled for each further one.
   * @default 20
   */
  readonly baseDelayMs?: number
  /**
   * Ceiling of any one delay.
   * @default 1000
   */
  readonly maxDelayMs?: number
  /**
   * "Full jitter": each delay is a random value between 0 and the exponential delay, so that clients that
   * failed together do not retry together.
   * @default true
   */
  readonly jitter?: boolean
  /** Called before each retry with the error that caused it, the retry's number (1-based) and the delay. */
  readonly onRetry?: (error: CallsheetDbError, attempt: number, delayMs: number) => void
  /** Stops waiting and retrying when aborted; the last error (or the abort reason while waiting) is thrown. */
  readonly signal?: AbortSignal
}

/**
 * Runs `fn`, and runs it again when it fails with a library error marked `retryable` (a serialization
 * failure or deadlock, a lost connection, no free pooled connection, a statement timeout, on Citus a
 * shard that a concurrent split or move replaced under the statement), with
 * exponential backoff and jitter. Any other error — and a retryable one after the last retry — is thrown
 * unchanged, at once.
 *
 * `fn` must be the whole unit of work: a `tenant.transaction(...)` or a single repository call, never
 * the inside of a transaction (an error inside one has already aborted it). Inside a transaction, a
 * call through the outer client fails at once with a non-retryable `InvalidStateError` (a nested unit),
 * so it is not retried either; `withRetry` itself is allowed there, for another database's units. A retryable error means the
 * unit did not commit — with one exception a retry cannot see: a connection lost while its `COMMIT`
 * was in flight may have committed. Make such writes idempotent (natural keys with
 * `onConflict: 'skip'`, or ids chosen before the first attempt) when a duplicate would matter.
 *
 * @example
 * ```ts
 * import { withRetry } from '@callsheet/db'
 *
 * const contact = await withRetry(
 *   () =>
 *     tenant.transaction(async (tx) => {
 *       const production = await tx.productions.getById(productionId)
 *       return tx.contacts.create({ productionId: production.id, name: 'Jon Smith' })
 *     }),
 *   { retries: 5, onRetry: (error, attempt) => log.warn({ code: error.code, attempt }) },
 * )
 * ```
 */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const retries = options.retries ?? 3
  const baseDelayMs = options.baseDelayMs ?? 20
  const maxDelayMs = options.maxDelayMs ?? 1000
  const jitter = options.jitter ?? true
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError(`retries must be an integer ≥ 0, got ${retries}`)
  if (!Number.isFinite(baseDelayMs) || baseDelayMs < 0) {
    throw new RangeError(`baseDelayMs must be a finite number ≥ 0, got ${baseDelayMs}`)
  }
  if (!(maxDelayMs >= 0)) throw new RangeError(`maxDelayMs must be ≥ 0, got ${maxDelayMs}`)

  for (let attempt = 0; ; attempt++) {
    try {
      return await fn()
    } catch (error) {
      if (!isCallsheetDbError(error) || !error.retryable || attempt >= retries || options.signal?.aborted) throw error
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt)
      const delayMs = jitter ? Math.random() * ceiling : ceiling
      options.onRetry?.(error, attempt + 1, delayMs)
      await sleep(delayMs, options.signal)
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
