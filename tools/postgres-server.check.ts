/**
 * Self-check of the PostgreSQL test harness: `npx tsx tools/postgres-server.check.ts`.
 *
 * Acquires a server, writes a row on the primary in a scratch database, waits for it on the
 * replica (when there is one), then drops everything and prints timings. Honours DATABASE_URL
 * like the test suites do; unset it to exercise the testcontainers / local-binaries path.
 */
import postgres from 'postgres'
import { acquirePostgresServer, createScratchDatabase, withDatabase } from './postgres-server.js'
import { checkSteps } from './check-steps.js'

const REPLICA_WAIT_MS = 5_000

const steps = checkSteps()
const lap = steps.lap

const { server, attempts } = await acquirePostgresServer({ log: (line) => console.log(`  [harness] ${line}`) })
for (const attempt of attempts) console.log(`  not used: ${attempt.source}: ${attempt.reason}`)
if (server === undefined) {
  console.error('FAIL: no PostgreSQL server available')
  process.exit(1)
}
lap('acquire')
console.log(`server: ${server.description}`)

let failed = false
try {
  const scratch = await createScratchDatabase(server.adminUrl, 'cs_check')
  lap('create scratch database')
  console.log(`scratch database: ${scratch.name}`)
  try {
    const primary = postgres(scratch.url, { max: 1, onnotice: () => {} })
    try {
      await primary`create table harness_check (id int primary key, note text not null)`
      await primary`insert into harness_check values (1, 'written on the primary')`
    } finally {
      await primary.end({ timeout: 5 })
    }
    lap('create table + insert on primary')

    if (server.replicaUrl === undefined) {
      console.log('no replica from this source: replica check skipped')
    } else {
      const replica = postgres(withDatabase(server.replicaUrl, scratch.name), { max: 1, onnotice: () => {} })
      try {
        const deadline = Date.now() + REPLICA_WAIT_MS
        let note: string | undefined
        let lastError = ''
        while (note === undefined && Date.now() < deadline) {
          try {
            const rows = await replica<{ note: string }[]>`select note from harness_check where id = 1`
            note = rows[0]?.note
          } catch (error) {
            // The database or table may not have been replayed yet.
            lastError = error instanceof Error ? error.message : String(error)
          }
          if (note === undefined) await new Promise((resolve) => setTimeout(resolve, 25))
        }
        if (note !== 'written on the primary') {
          throw new Error(
            `row not visible on the replica after ${REPLICA_WAIT_MS} ms (last error: ${lastError || 'none'})`,
          )
        }
        const [recovery] = await replica<{ r: boolean }[]>`select pg_is_in_recovery() as r`
        if (recovery?.r !== true) throw new Error('replicaUrl is not a server in recovery')
      } finally {
        await replica.end({ timeout: 5 })
      }
      lap('row visible on replica')
      console.log('replica: row replicated, server is in recovery')
    }
  } finally {
    await scratch.drop()
    await scratch.drop() // idempotent
    lap('drop scratch database')
  }
} catch (error) {
  failed = true
  console.error(`FAIL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
} finally {
  await server.stop()
  await server.stop() // idempotent
  lap('stop')
}

steps.report(failed)
