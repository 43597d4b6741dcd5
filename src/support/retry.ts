import { isCallsheetDbError, type CallsheetDbError } from '../errors'

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /**
   * Total time budget in milliseconds, counted from the first call of `fn`: no retry is started after it
   * (the last delay is shortened to end at the deadline), and the last error is thrown. An attempt already
   * running is not cut short (the statement and acquire timeouts bound it). The default outlasts an automatic
   * failover: a `pg_auto_failover` switchover or a promotion after the primary died takes 10–50 s, a
   * restart 1.5–3.5 s. Lower it where a caller would rather fail fast (an interactive request with its own
   * timeout); `Infinity` only together with a finite `retries`.
   * @default 30_000
   */
  readonly deadlineMs?: number
  /**
   * How many times at most to retry after the first attempt (so at most `retries + 1` calls of `fn`): an
   * integer ≥ 0, or `Infinity` to let `deadlineMs` alone bound the retries.
   * @default Infinity
   */
  readonly retries?: number
  /**
   * Delay ceiling before the first retry; doubled for each further one up to `maxDelayMs`.
   * @default 50
   */
  readonly baseDelayMs?: number
  /**
   * Ceiling of any one delay. Small on purpose: while a server restarts, an attempt fails at once
   * (connection refused), so a short ceiling costs little, and once the server answers again the next attempt
   * starts within this delay — the operation ends at most about `maxDelayMs` + one attempt after the outage.
   * @default 250
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
 * shard that a concurrent split or move replaced under the statement), with capped exponential backoff and
 * jitter, until it succeeds, `retries` are used up or the `deadlineMs` budget (30 s by default: long enough
 * for a restart or an automatic failover) would be exceeded. Any other error — and a retryable one when no
 * retry is left — is thrown unchanged, at once.
 *
 * `fn` must be the whole unit of work: a `tenant.transaction(...)` or a single repository call, never
 * the inside of a transaction (an error inside one has already aborted it). Inside a transaction, a
 * call through the outer client fails at once with a non-retryable `InvalidStateError` (a nested unit),
 * so it is not retried either; `withRetry` itself is allowed there, for another database's units.
 *
 * When a retry is safe: a retryable error means the unit did not commit — with one exception a retry
 * cannot see: a connection lost while its `COMMIT` was in flight may have committed. Reads and updates
 * that set values are safe to repeat. A `create` is safe when the caller chooses its `id` before the first
 * attempt: a retried create whose first attempt committed returns the committed row (no duplicate, no
 * `UNIQUE_VIOLATION`). `createMany` is safe with natural keys and `onConflict: 'skip'`. Anything else that
 * must not happen twice (a counter increment, a create without an id) needs an idempotency key of your own.
 *
 * @throws RangeError when an option is out of range (before `fn` is called).
 * @example
 * ```ts
 * import { randomUUID } from 'node:crypto'
 * import { withRetry } from '@callsheet/db'
 *
 * const id = randomUUID() // chosen once, before the first attempt: a retried create cannot duplicate the row
 * const contact = await withRetry(
 *   () =>
 *     tenant.transaction(async (tx) => {
 *       const production = await tx.productions.getById(productionId)
 *       return tx.contacts.create({ id, productionId: production.id, name: 'Jon Smith' })
 *     }),
 *   { deadlineMs: 10_000, onRetry: (error, attempt) => log.warn({ code: error.code, attempt }) },
 * )
 * ```
 */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { retries, deadlineMs, baseDelayMs, maxDelayMs, jitter } = resolveRetryOptions(options)
  const deadline = performance.now() + deadlineMs

  for (let attempt = 0; ; attempt++) {
    try {
      return await fn()
    } catch (error) {
      if (!isCallsheetDbError(error) || !error.retryable || attempt >= retries || options.signal?.aborted) throw error
      const remainingMs = deadline - performance.now()
      if (remainingMs <= 0) throw error
      // The exponent is capped: with unbounded retries, 2 ** attempt would reach Infinity (and 0 × Infinity NaN).
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 30))
      const delayMs = Math.min(jitter ? Math.random() * ceiling : ceiling, remainingMs)
      options.onRetry?.(error, attempt + 1, delayMs)
      await sleep(delayMs, options.signal)
    }
  }
}

interface ResolvedRetryOptions {
  readonly retries: number
  readonly deadlineMs: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly jitter: boolean
}

function resolveRetryOptions(options: RetryOptions): ResolvedRetryOptions {
  const retries = options.retries ?? Infinity
  const deadlineMs = options.deadlineMs ?? 30_000
  const baseDelayMs = options.baseDelayMs ?? 50
  const maxDelayMs = options.maxDelayMs ?? 250
  const jitter = options.jitter ?? true
  if (!(Number.isInteger(retries) || retries === Infinity) || retries < 0) {
    throw new RangeError(`retries must be an integer ≥ 0 or Infinity, got ${retries}`)
  }
  if (!(deadlineMs >= 0)) throw new RangeError(`deadlineMs must be ≥ 0, got ${deadlineMs}`)
  if (retries === Infinity && deadlineMs === Infinity) {
    throw new RangeError('retries and deadlineMs cannot both be Infinity: one of them must bound the retries')
  }
  if (!Number.isFinite(baseDelayMs) || baseDelayMs < 0) {
    throw new RangeError(`baseDelayMs must be a finite number ≥ 0, got ${baseDelayMs}`)
  }
  if (!(maxDelayMs >= 0)) throw new RangeError(`maxDelayMs must be ≥ 0, got ${maxDelayMs}`)
  return { retries, deadlineMs, baseDelayMs, maxDelayMs, jitter }
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
