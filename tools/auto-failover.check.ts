/**
 * Self-check of the pg_auto_failover harness: `npx tsx tools/auto-failover.check.ts`.
 *
 * Starts a monitor + primary + secondary, writes a row, restarts the primary (-m fast, -m immediate),
 * terminates app backends, performs a failover, kills the primary node (the monitor promotes the
 * secondary, the old node rejoins), checks after each fault that the row is still on the primary, then
 * stops the formation, printing each step's time and what each fault measured. Exits 1 (loudly) when
 * PostgreSQL or pg_autoctl is missing.
 */
import postgres from 'postgres'
import { autoFailoverAvailable, multiHostUrl, startAutoFailover, type AutoFailoverHandle } from './auto-failover.js'
import { checkSteps } from './check-steps.js'

const steps = checkSteps()
const lap = steps.lap
const check: (condition: boolean, message: string) => asserts condition = steps.check

const available = await autoFailoverAvailable()
if (!available.ok) {
  console.error(`FAIL: no pg_auto_failover formation possible here: ${available.reason}`)
  process.exit(1)
}
lap('availability check')

/** The rows of `harness_check` on the formation's current primary, through the multi-host URL. */
async function rowsOnPrimary(formation: AutoFailoverHandle): Promise<number> {
  const primary = await formation.currentPrimary()
  const sql = postgres(primary.url, { max: 1, onnotice: () => {}, connect_timeout: 5 })
  try {
    const [row] = await sql<{ n: number; recovery: boolean }[]>`
      select count(*)::int as n, pg_is_in_recovery() as recovery from harness_check`
    check(row?.recovery === false, `${primary.name}, the monitor's primary, is in recovery`)
    return row.n
  } finally {
    await sql.end({ timeout: 5 })
  }
}

let failed = false
let formation: AutoFailoverHandle | undefined
try {
  formation = await startAutoFailover({ log: (line) => console.log(`  [harness] ${line}`) })
  lap('start monitor + primary + secondary')
  console.log(`formation: ${formation.description}`)
  const shown = await formation.showUri()
  console.log(`pg_autoctl show uri:\n${shown}`)
  const uri = formation.formationUrl()
  const expected = multiHostUrl(
    formation.nodes.map((node) => node.url),
    { user: 'postgres', database: 'postgres', params: { target_session_attrs: 'read-write' } },
  )
  check(uri === expected, `formationUrl ${uri} is not the multi-host URL ${expected}`)
  check(
    formation.nodes.every((node) => shown.includes(`127.0.0.1:${node.port}`)),
    'pg_autoctl show uri does not name both nodes',
  )

  const sql = postgres(uri, { max: 1, onnotice: () => {}, connect_timeout: 5 })
  try {
    await sql`create table harness_check (id int primary key)`
    await sql`insert into harness_check select generate_series(1, 100)`
  } finally {
    await sql.end({ timeout: 5 })
  }
  check((await rowsOnPrimary(formation)) === 100, 'rows missing on the primary')
  lap('write through the multi-host URL')

  for (const mode of ['fast', 'immediate'] as const) {
    const report = await formation.restartPrimary(mode)
    lap(`restart -m ${mode} (down ${report.downtimeMs} ms)`)
    check((await rowsOnPrimary(formation)) === 100, `rows missing after restart -m ${mode}`)
  }
  const terminated = await formation.terminateAppBackends()
  lap(`terminate app backends (${JSON.stringify(terminated)})`)

  const switchover = await formation.performFailover()
  check(switchover.from !== switchover.to, 'perform failover did not swap the roles')
  lap(`perform failover (writes stopped ${switchover.switchoverMs} ms)`)
  check((await rowsOnPrimary(formation)) === 100, 'rows missing after perform failover')

  const promotion = await formation.killPrimaryNode()
  check(promotion.killed !== promotion.promoted, 'kill: the same node is primary')
  lap(`kill primary node (promoted after ${promotion.promotionMs} ms)`)
  check((await rowsOnPrimary(formation)) === 100, 'rows missing after the primary node was killed')
  check((await formation.currentPrimary()).name === promotion.promoted, 'the promoted node is not the primary')
  console.log(JSON.stringify({ switchover, promotion }))
} catch (error) {
  failed = true
  console.error(`FAIL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
} finally {
  if (formation !== undefined) {
    await formation.stop()
    await formation.stop() // idempotent
    lap('stop')
  }
}

steps.report(failed)
