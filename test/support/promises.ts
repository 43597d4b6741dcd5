/** The rejection of `promise`; fails the test when it resolves. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${JSON.stringify(value)?.slice(0, 200)}`)
    },
    (error: unknown) => error,
  )
}

/** `promise`, or a rejection naming `what` when it has not settled after `ms` (a hang is a failure, not a timeout). */
export async function settledWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} had not settled after ${ms} ms (hung)`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Polls `condition` until it holds; rejects naming `what` after `timeoutMs`. For waiting on an event the
 * test cannot be told of directly (a replica back, reads routed again) instead of sleeping a guessed
 * time: the bound is a hang detector, generous because a busy machine is many times slower.
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 60_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
