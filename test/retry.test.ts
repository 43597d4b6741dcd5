import { beforeAll, describe, expect, inject, it } from 'vitest'
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
// backoff; retries stop after `retries`. The database cases use real SQLSTATEs through the library's own
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
    expect(calls).toBe(0)
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
