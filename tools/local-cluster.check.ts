/**
 * Self-check of the private-cluster and PgBouncer harness: `npx tsx tools/local-cluster.check.ts`.
 *
 * Starts a private primary + streaming replica, checks replication, a replica apply delay, a
 * replica stop/start, and 50 concurrent transactions through PgBouncer (transaction pooling, pool
 * size 2), then stops everything and prints timings. Needs local PostgreSQL binaries and
 * pgbouncer; exits 1 (loudly) when either is missing.
 */
import postgres from 'postgres'
import { localBinariesAvailable, startLocalCluster, type LocalClusterHandle } from './local-cluster.js'
import { pgbouncerAvailable, startPgBouncer, type PgBouncerHandle } from './pgbouncer.js'
import { createScratchDatabase, withDatabase } from './postgres-server.js'
import { checkSteps } from './check-steps.js'

const APPLY_DELAY_MS = 500
const CONCURRENT_TRANSACTIONS = 50
const BOUNCER_POOL_SIZE = 2

// `check` is bound for its assertion signature (TypeScript needs an explicitly typed name to narrow).
const steps = checkSteps()
const lap = steps.lap
const check: (condition: boolean, message: string) => asserts condition = steps.check
const log = (line: string): void => console.log(`  [harness] ${line}`)
const connect = (url: string, extra: postgres.Options<Record<string, never>> = {}): postgres.Sql =>
  postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5, ...extra })

const binaries = await localBinariesAvailable()
const bouncerCheck = await pgbouncerAvailable()
if (!binaries.ok || !bouncerCheck.ok) {
  if (!binaries.ok) console.error(`FAIL: no local PostgreSQL binaries: ${binaries.reason}`)
  if (!bouncerCheck.ok) console.error(`FAIL: no pgbouncer: ${bouncerCheck.reason}`)
  process.exit(1)
}
lap('availability checks')

let failed = false
let cluster: LocalClusterHandle | undefined
let bouncer: PgBouncerHandle | undefined
try {
  cluster = await startLocalCluster({ log })
  lap('start primary + replica')
  console.log(`cluster: ${cluster.description}`)

  const scratch = await createScratchDatabase(cluster.adminUrl, 'cs_cluster_check')
  const primary = connect(scratch.url)
  const replicaUrl = withDatabase(cluster.replicaUrl, scratch.name)
  try {
    await primary`create table harness_check (id int primary key, note text not null)`
    await primary`insert into harness_check values (1, 'before the delay')`
    lap('scratch db + table + row on primary')

    await cluster.waitForReplicaCatchUp()
    const replica = connect(replicaUrl)
    try {
      const rows = await replica<{ note: string }[]>`select note from harness_check where id = 1`
      check(rows[0]?.note === 'before the delay', `replica sees ${JSON.stringify(rows)}`)
      const [recovery] = await replica<{ r: boolean }[]>`select pg_is_in_recovery() as r`
      check(recovery?.r === true, 'replicaUrl is not a server in recovery')
    } finally {
      await replica.end({ timeout: 5 })
    }
    lap('table + row visible on replica')

    await cluster.setReplicaApplyDelay(APPLY_DELAY_MS)
    lap(`set apply delay ${APPLY_DELAY_MS} ms`)
    const delayed = connect(replicaUrl)
    try {
      const [shown] = await delayed<{ recovery_min_apply_delay: string }[]>`show recovery_min_apply_delay`
      const delay = shown?.recovery_min_apply_delay
      check(delay === `${APPLY_DELAY_MS}ms`, `SHOW recovery_min_apply_delay = ${delay}`)
      await primary`insert into harness_check values (2, 'after the delay')`
      const insertedAt = performance.now()
      const early = await delayed`select 1 from harness_check where id = 2`
      check(early.length === 0, 'row 2 visible on the replica right after the insert despite the apply delay')
      let seenAfterMs: number | undefined
      while (performance.now() - insertedAt < 5_000) {
        if ((await delayed`select 1 from harness_check where id = 2`).length > 0) {
          seenAfterMs = performance.now() - insertedAt
          break
        }
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      check(seenAfterMs !== undefined, 'row 2 never reached the replica')
      check(seenAfterMs >= APPLY_DELAY_MS * 0.8, `row 2 visible after only ${seenAfterMs.toFixed(0)} ms`)
      check(seenAfterMs <= 1_500, `row 2 visible only after ${seenAfterMs.toFixed(0)} ms`)
      console.log(`apply delay: row invisible at first, visible on the replica after ${seenAfterMs.toFixed(0)} ms`)
    } finally {
      await delayed.end({ timeout: 5 })
    }
    lap('delayed row invisible, then visible')
    await cluster.setReplicaApplyDelay(0)
    await primary`insert into harness_check values (3, 'no delay again')`
    await cluster.waitForReplicaCatchUp(2_000)
    lap('remove apply delay + catch up')

    await cluster.stopReplica()
    lap('stop replica')
    const down = connect(replicaUrl, { connect_timeout: 2 })
    try {
      await down`select 1`
      throw new Error('replica still accepts connections after stopReplica()')
    } catch (error) {
      const code = (error as { code?: unknown }).code
      check(code === 'ECONNREFUSED', `expected ECONNREFUSED from the stopped replica, got ${String(code)}: ${error}`)
    } finally {
      await down.end({ timeout: 1 })
    }
    await primary`insert into harness_check values (4, 'written while the replica was down')`
    await cluster.startReplica()
    lap('start replica (streaming)')
    await cluster.waitForReplicaCatchUp()
    const back = connect(replicaUrl)
    try {
      const [count] = await back<{ n: number }[]>`select count(*)::int as n from harness_check`
      check(count?.n === 4, `replica has ${count?.n} rows after restart, expected 4`)
    } finally {
      await back.end({ timeout: 5 })
    }
    lap('replica catches up after restart')

    bouncer = await startPgBouncer({
      targetUrl: scratch.url,
      poolSize: BOUNCER_POOL_SIZE,
      poolMode: 'transaction',
      log,
    })
    lap('start pgbouncer')
    const pooled = postgres(bouncer.url, { prepare: false, max: CONCURRENT_TRANSACTIONS, onnotice: () => {} })
    try {
      const results = await Promise.all(
        Array.from({ length: CONCURRENT_TRANSACTIONS }, (_, i) =>
          pooled.begin(async (tx) => {
            const value = `tx-${i}`
            await tx`select set_config('app.x', ${value}, true)`
            await new Promise((resolve) => setTimeout(resolve, 2)) // let other transactions interleave
            const [row] = await tx<{ x: string }[]>`select current_setting('app.x') as x`
            return { value, seen: row?.x }
          }),
        ),
      )
      const wrong = results.filter((r) => r.seen !== r.value)
      check(wrong.length === 0, `transactions saw another's setting: ${JSON.stringify(wrong.slice(0, 5))}`)
      const [servers] = await primary<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`
      check(
        (servers?.n ?? 0) <= BOUNCER_POOL_SIZE,
        `${servers?.n} server connections behind pgbouncer, pool size is ${BOUNCER_POOL_SIZE}`,
      )
      console.log(
        `pgbouncer: ${CONCURRENT_TRANSACTIONS} concurrent transactions each saw their own app.x over ${servers?.n} server connection(s)`,
      )
    } finally {
      await pooled.end({ timeout: 5 })
    }
    lap(`${CONCURRENT_TRANSACTIONS} transactions through pgbouncer`)
    await bouncer.stop()
    await bouncer.stop() // idempotent
    lap('stop pgbouncer')
  } finally {
    await primary.end({ timeout: 5 })
    await scratch.drop()
  }
  lap('drop scratch database')
} catch (error) {
  failed = true
  console.error(`FAIL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
} finally {
  await bouncer?.stop()
  await cluster?.stop()
  await cluster?.stop() // idempotent
  lap('stop cluster')
}

steps.report(failed)
