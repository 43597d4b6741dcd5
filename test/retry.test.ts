import { afterEach, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest'
import { withRetry } from '../src'
import type { Database } from '../src/client/create-database'
import {
  ConnectionError,
  NotFoundError,
  SerializationError,
  isCallsheetDbError,
  type CallsheetDbError,
} from '../src/errors'
import type { TenantClient } from '../src/client/tenant-client'
import { describeEachDatabase, openEngine, type TestEngine } from './harness/engines'
import { createDatabase } from '../src/client/create-database'
import type { SqlRunner } from './harness/sql-runner'

// withRetry (src/support/retry.ts): only library errors marked retryable are retried, with capped exponential
// backoff; retries stop after `retries` or when the next one would start after `deadlineMs`. The timing
// cases run on fake timers (performance.now and setTimeout are both faked), never on the wall clock. The database cases use real SQLSTATEs through the library's own
// path: a trigger raising 40001 on both engines, and a real deadlock (40P01) between two tenant
// transactions on the server.

const rejection = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${JSON.stringify(value)}`)
    },
    (error: unknown) => error,
  )

describe('withRetry without a database', () => {
  it('delays double from baseDelayMs up to maxDelayMs (no jitter), then the last error is thrown', async () => {
    const delays: number[] = []
    let calls = 0
    const last = new ConnectionError('gone 4')
    const error = await rejection(
      withRetry(
        () => {
          calls++
          return Promise.reject(calls === 4 ? last : new ConnectionError(`gone ${calls}`))
        },
        { retries: 3, baseDelayMs: 5, maxDelayMs: 12, jitter: false, onRetry: (_e, _n, ms) => delays.push(ms) },
      ),
    )
    expect(calls).toBe(4)
    expect(delays).toEqual([5, 10, 12])
    expect(error).toBe(last)
  })

  it('with jitter, every delay lies between 0 and its exponential ceiling', async () => {
    const delays: number[] = []
    let calls = 0
    const value = await withRetry(
      () => (++calls < 6 ? Promise.reject(new SerializationError('conflict')) : Promise.resolve('done')),
      { retries: 5, baseDelayMs: 4, maxDelayMs: 20, onRetry: (_e, _n, ms) => delays.push(ms) },
    )
    expect(value).toBe('done')
    const ceilings = [4, 8, 16, 20, 20]
    expect(delays).toHaveLength(5)
    delays.forEach((ms, i) => {
      expect(ms).toBeGreaterThanOrEqual(0)
      expect(ms).toBeLessThanOrEqual(ceilings[i]!)
    })
  })

  it('does not retry non-retryable library errors, foreign errors, or anything with retries: 0', async () => {
    for (const thrown of [new NotFoundError('contacts', 'x'), new Error('app bug'), 'a string']) {
      let calls = 0
      const error = await rejection(
        withRetry(() => {
          calls++
          return Promise.reject(thrown)
        }),
      )
      expect(error).toBe(thrown)
      expect(calls).toBe(1)
    }
    let calls = 0
    await rejection(withRetry(() => (calls++, Promise.reject(new ConnectionError('x'))), { retries: 0 }))
    expect(calls).toBe(1)
  })

  it('does not retry an object that merely looks retryable (not a library error)', async () => {
    let calls = 0
    const fake = Object.assign(new Error('fake'), { retryable: true, code: 'CONNECTION_ERROR' })
    expect(await rejection(withRetry(() => (calls++, Promise.reject(fake))))).toBe(fake)
    expect(calls).toBe(1)
  })

  it('refuses bad options before calling fn', async () => {
    let calls = 0
    const fn = () => (calls++, Promise.resolve(1))
    await expect(withRetry(fn, { retries: -1 })).rejects.toThrow(RangeError)
    await expect(withRetry(fn, { retries: 1.5 })).rejects.toThrow(RangeError)
    await expect(withRetry(fn, { baseDelayMs: Number.NaN })).rejects.toThrow(RangeError)
    await expect(withRetry(fn, { baseDelayMs: Infinity })).rejects.toThrow(RangeError)
    await expect(withRetry(fn, { maxDelayMs: Number.NaN })).rejects.toThrow(RangeError)
    await expect(withRetry(fn, { maxDelayMs: -1 })).rejects.toThrow(RangeError)
    await expect(withRetry(fn, { deadlineMs: -1 })).rejects.toThrow(/deadlineMs must be ≥ 0, got -1/)
    await expect(withRetry(fn, { deadlineMs: Number.NaN })).rejects.toThrow(RangeError)
    await expect(withRetry(fn, { retries: -Infinity })).rejects.toThrow(RangeError)
    // Nothing would bound the retries.
    await expect(withRetry(fn, { retries: Infinity, deadlineMs: Infinity })).rejects.toThrow(/cannot both be Infinity/)
    await expect(withRetry(fn, { deadlineMs: Infinity })).rejects.toThrow(/cannot both be Infinity/)
    expect(calls).toBe(0)
    // Either bound alone is accepted.
    expect(await withRetry(fn, { retries: Infinity })).toBe(1)
    expect(await withRetry(fn, { retries: 2, deadlineMs: Infinity })).toBe(1)
    expect(await withRetry(fn, { deadlineMs: 0 })).toBe(1)
  })

  it('an aborted signal stops the wait and the retries', async () => {
    const controller = new AbortController()
    let calls = 0
    const pending = withRetry(() => (calls++, Promise.reject(new ConnectionError('x'))), {
      retries: 10,
      baseDelayMs: 5_000,
      jitter: false,
      signal: controller.signal,
    })
    setTimeout(() => controller.abort(new Error('shutting down')), 20)
    // The abort's reason, after one call: the 5 s wait was cut short (its end would have made a 2nd call).
    expect(((await rejection(pending)) as Error).message).toBe('shutting down')
    expect(calls).toBe(1)
  })
})

describe('withRetry deadline and defaults (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  /** `fn` failing with a retryable error every time, recording when each call started. */
  const alwaysFailing = () => {
    const starts: number[] = []
    const fn = (): Promise<never> => {
      starts.push(performance.now())
      return Promise.reject(new ConnectionError(`gone ${starts.length}`))
    }
    return { starts, fn }
  }

  it('defaults: delays 50, 100, 200 ms then 250 ms each, until the 30 s deadline; the last error is thrown', async () => {
    const { starts, fn } = alwaysFailing()
    const delays: number[] = []
    const t0 = performance.now()
    const outcome = rejection(withRetry(fn, { jitter: false, onRetry: (_e, _n, ms) => delays.push(ms) }))
    await vi.runAllTimersAsync()
    const error = (await outcome) as Error
    expect(delays.slice(0, 5)).toEqual([50, 100, 200, 250, 250])
    expect(Math.max(...delays)).toBe(250)
    // The last delay is shortened to end at the deadline: no attempt starts after it, none is wasted before it.
    expect(delays.reduce((sum, ms) => sum + ms, 0)).toBe(30_000)
    expect(delays.at(-1)).toBe(150)
    expect(starts.at(-1)! - t0).toBe(30_000)
    expect(starts.every((at) => at - t0 <= 30_000)).toBe(true)
    // 50 + 100 + 200 + 118 × 250 + 150 = 30,000 ms: 122 retries, 123 calls.
    expect(starts).toHaveLength(123)
    expect(error.message).toBe('gone 123')
  })

  it('with the default jitter, every delay lies within 0..250 ms and no attempt starts after 30 s', async () => {
    const { starts, fn } = alwaysFailing()
    const delays: number[] = []
    const t0 = performance.now()
    const outcome = rejection(withRetry(fn, { onRetry: (_e, _n, ms) => delays.push(ms) }))
    await vi.runAllTimersAsync()
    await outcome
    expect(delays.every((ms) => ms >= 0 && ms <= 250)).toBe(true)
    expect(starts.every((at) => at - t0 <= 30_000)).toBe(true)
    // Full jitter averages half the ceiling: far more than the old 4 attempts, bounded by the deadline.
    expect(starts.length).toBeGreaterThan(120)
  })

  it('after an outage ends, the next attempt starts within maxDelayMs (250 ms by default)', async () => {
    let up = false
    let calls = 0
    const t0 = performance.now()
    setTimeout(() => (up = true), 12_345)
    const pending = withRetry(() => {
      calls++
      return up ? Promise.resolve(performance.now() - t0) : Promise.reject(new ConnectionError('refused'))
    })
    await vi.runAllTimersAsync()
    const answeredAt = await pending
    expect(answeredAt).toBeGreaterThanOrEqual(12_345)
    expect(answeredAt).toBeLessThanOrEqual(12_345 + 250)
    expect(calls).toBeGreaterThan(1)
  })

  it('a deadline counts the attempts’ own time too: no retry starts after it', async () => {
    const starts: number[] = []
    const t0 = performance.now()
    // Each attempt takes 1 s before it fails (e.g. a connect timeout).
    const fn = async (): Promise<never> => {
      starts.push(performance.now() - t0)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      throw new ConnectionError('slow failure')
    }
    const outcome = rejection(withRetry(fn, { deadlineMs: 2_500, baseDelayMs: 100, jitter: false }))
    await vi.runAllTimersAsync()
    expect(isCallsheetDbError(await outcome, 'CONNECTION_ERROR')).toBe(true)
    // 0 → fails at 1000, waits 100; 1100 → fails at 2100, waits min(200, 400 left); 2300 → fails at 3300: over.
    expect(starts).toEqual([0, 1_100, 2_300])
  })

  it('retries caps the attempts before the deadline does; deadlineMs: 0 means one attempt', async () => {
    const capped = alwaysFailing()
    const outcome = rejection(withRetry(capped.fn, { retries: 2, baseDelayMs: 10 }))
    await vi.runAllTimersAsync()
    await outcome
    expect(capped.starts).toHaveLength(3)

    const once = alwaysFailing()
    const single = rejection(withRetry(once.fn, { deadlineMs: 0 }))
    await vi.runAllTimersAsync()
    expect(((await single) as Error).message).toBe('gone 1')
    expect(once.starts).toHaveLength(1)
  })

  it('an abort during the default deadline ends the retries at once with the abort reason', async () => {
    const { starts, fn } = alwaysFailing()
    const controller = new AbortController()
    const outcome = rejection(withRetry(fn, { signal: controller.signal }))
    await vi.advanceTimersByTimeAsync(5_000)
    const before = starts.length
    expect(before).toBeGreaterThan(1)
    controller.abort(new Error('shutting down'))
    expect(((await outcome) as Error).message).toBe('shutting down')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(starts).toHaveLength(before)
  })
})

/** Installs, as the owner, a trigger that makes department inserts with code `FLAKY-<n>-…` fail with 40001 on the first n attempts. */
async function installFlakyTrigger(admin: SqlRunner): Promise<void> {
  // A sequence counts attempts: nextval is not rolled back with the failing transaction.
  await admin.exec(`
    create sequence retry_attempts;
    create function retry_flaky() returns trigger language plpgsql security definer set search_path = public as $$
    begin
      if new.code like 'FLAKY-%' and nextval('retry_attempts') <= split_part(new.code, '-', 2)::int then
        raise exception 'simulated serialization failure' using errcode = '40001';
      end if;
      return new;
    end $$;
    create trigger departments_retry_flaky before insert on departments for each row execute function retry_flaky();
  `)
}

async function departmentsWritten(admin: SqlRunner, orgId: string, code: string) {
  const [row] = await admin.query<{ rows: number; audit: number }>(
    `select (select count(*)::int from departments where organization_id = $1 and code = $2) as rows,
            (select count(*)::int from audit_logs where organization_id = $1 and entity_type = 'departments'
               and action = 'insert' and new_values->>'code' = $2) as audit`,
    [orgId, code],
  )
  return row!
}

describeEachDatabase('withRetry on the library path', (ctx) => {
  let tenant: TenantClient
  let orgId: string
  const admin = () => ctx().engine.admin
  const resetAttempts = () => admin().exec(`select setval('retry_attempts', 1, false)`)

  beforeAll(async () => {
    await installFlakyTrigger(admin())
    const org = await ctx().db.organizations.create({ name: 'Retry', slug: `retry-${Date.now().toString(36)}` })
    orgId = org.id
    tenant = ctx().db.tenant(org.id, { requestId: 'retry' })
  })

  it('a SERIALIZATION_FAILURE twice, then success: three attempts, one row, one audit row', async () => {
    await resetAttempts()
    const seen: CallsheetDbError[] = []
    const created = await withRetry(() => tenant.departments.create({ name: 'Flaky', code: 'FLAKY-2-a' }), {
      baseDelayMs: 1,
      onRetry: (error) => seen.push(error),
    })
    expect(created.code).toBe('FLAKY-2-a')
    expect(seen.map((e) => e.code)).toEqual(['SERIALIZATION_FAILURE', 'SERIALIZATION_FAILURE'])
    expect(seen.every((e) => e.retryable)).toBe(true)
    expect(await departmentsWritten(admin(), orgId, 'FLAKY-2-a')).toEqual({ rows: 1, audit: 1 })
  })

  it('retries stop after `retries`: 1 + 3 attempts, the last SERIALIZATION_FAILURE thrown, nothing written', async () => {
    await resetAttempts()
    let attempts = 0
    const error = await rejection(
      withRetry(
        () => {
          attempts++
          return tenant.transaction(async (tx) => {
            await tx.departments.create({ name: 'Before', code: 'BEFORE-FLAKY' })
            return tx.departments.create({ name: 'Flaky', code: 'FLAKY-99-b' })
          })
        },
        { retries: 3, baseDelayMs: 1 },
      ),
    )
    expect(isCallsheetDbError(error, 'SERIALIZATION_FAILURE')).toBe(true)
    expect(attempts).toBe(4)
    expect(await departmentsWritten(admin(), orgId, 'FLAKY-99-b')).toEqual({ rows: 0, audit: 0 })
    expect(await departmentsWritten(admin(), orgId, 'BEFORE-FLAKY')).toEqual({ rows: 0, audit: 0 })
  })

  it('a non-retryable database error (UNIQUE_VIOLATION) is thrown after one attempt', async () => {
    await tenant.departments.create({ name: 'Once', code: 'ONCE' })
    let attempts = 0
    const error = await rejection(
      withRetry(() => (attempts++, tenant.departments.create({ name: 'Twice', code: 'ONCE' })), { baseDelayMs: 1 }),
    )
    expect(isCallsheetDbError(error, 'UNIQUE_VIOLATION')).toBe(true)
    expect(attempts).toBe(1)
    expect(await departmentsWritten(admin(), orgId, 'ONCE')).toEqual({ rows: 1, audit: 1 })
  })
})

const server = inject('postgresServer')

describe.runIf(server)('withRetry and a real deadlock [postgres]', () => {
  let engine: TestEngine
  let db: Database
  beforeAll(async () => {
    engine = await openEngine('postgres')
    // deadlock_timeout is a superuser setting: lowered for this database only, so detection takes ~100 ms.
    await engine.admin.exec(`alter database "${new URL(engine.url!).pathname.slice(1)}" set deadlock_timeout = '100ms'`)
    db = createDatabase({ primary: engine.url!, pool: { max: 4 } })
    return async () => {
      await db.close()
      await engine.close()
    }
  })

  it('two transactions locking two rows in opposite orders: one deadlocks (40P01), is retried, both commit once', async () => {
    const org = await db.organizations.create({ name: 'Deadlock', slug: `deadlock-${Date.now().toString(36)}` })
    const tenant = db.tenant(org.id, { requestId: 'deadlock' })
    const first = await tenant.departments.create({ name: 'First', code: 'FIRST' })
    const second = await tenant.departments.create({ name: 'Second', code: 'SECOND' })

    // Both transactions take their first lock before either asks for its second: a deadlock for sure.
    let arrived = 0
    let release!: () => void
    const bothHoldOne = new Promise<void>((resolve) => (release = resolve))
    const meet = async () => {
      if (++arrived === 2) release()
      await bothHoldOne
    }
    const retried: string[] = []
    const attempts = { a: 0, b: 0 }
    const run = (label: 'a' | 'b', order: [string, string]) =>
      withRetry(
        () => {
          attempts[label]++
          return tenant.transaction(async (tx) => {
            await tx.departments.update(order[0], { name: `locked by ${label}` })
            await meet()
            await tx.departments.update(order[1], { name: `locked by ${label}` })
          })
        },
        { baseDelayMs: 10, onRetry: (error) => retried.push(`${label}:${error.code}`) },
      )
    await Promise.all([run('a', [first.id, second.id]), run('b', [second.id, first.id])])

    expect(retried).toHaveLength(1)
    expect(retried[0]).toMatch(/^[ab]:SERIALIZATION_FAILURE$/)
    expect(attempts.a + attempts.b).toBe(3)
    // Exactly once each: two committed transactions × two updates = four update audit rows, no more.
    const [audit] = await engine.admin.query<{ n: number }>(
      `select count(*)::int as n from audit_logs where organization_id = $1 and entity_type = 'departments' and action = 'update'`,
      [org.id],
    )
    expect(audit?.n).toBe(4)
    // The one retried committed last, so it wrote both rows' final value.
    const winner = retried[0]!.slice(0, 1)
    const rows = await engine.admin.query<{ name: string }>('select name from departments where id in ($1, $2)', [
      first.id,
      second.id,
    ])
    expect(rows.map((r) => r.name)).toEqual([`locked by ${winner}`, `locked by ${winner}`])
  })
})
