/**
 * Self-check of the Citus cluster harness: `npx tsx tools/citus-cluster.check.ts`.
 *
 * Starts a coordinator + two workers, creates a scratch database on every node, distributes a
 * table by a column, inserts rows through the coordinator, checks that the shards (`citus_shards`)
 * sit on the workers and hold every row, then drops the database and stops the cluster, printing
 * timings and the nodes' memory. Exits 1 (loudly) when PostgreSQL or Citus is missing.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import postgres from 'postgres'
import {
  citusAvailable,
  startCitusCluster,
  type CitusClusterHandle,
  type CitusScratchDatabase,
} from './citus-cluster.js'
import { checkSteps } from './check-steps.js'

const ROWS = 1_000
const TENANTS = 20

// `check` is bound for its assertion signature (TypeScript needs an explicitly typed name to narrow).
const steps = checkSteps()
const lap = steps.lap
const check: (condition: boolean, message: string) => asserts condition = steps.check
const connect = (url: string): postgres.Sql => postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 })

/**
 * Memory of every process of the cluster (postmasters under its dir and their children), in MiB: the
 * proportional set size, which splits shared buffers among the processes mapping them (RSS would count
 * them once per backend). Falls back to RSS where /proc/<pid>/smaps_rollup is unreadable.
 */
function clusterMemoryMiB(socketDir: string): number {
  const ps = execFileSync('ps', ['-eo', 'pid=,ppid=,rss=,args='], { encoding: 'utf8' })
  const rows = ps
    .trim()
    .split('\n')
    .map((line) => line.trim().match(/^(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/))
    .filter((match): match is RegExpMatchArray => match !== null)
    .map((match) => ({ pid: match[1] ?? '', ppid: match[2] ?? '', rss: Number(match[3]), args: match[4] ?? '' }))
  const postmasters = new Set(rows.filter((row) => row.args.includes(socketDir)).map((row) => row.pid))
  const kib = rows
    .filter((row) => postmasters.has(row.pid) || postmasters.has(row.ppid))
    .reduce((sum, row) => {
      try {
        const pss = readFileSync(`/proc/${row.pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m)
        return sum + (pss?.[1] === undefined ? row.rss : Number(pss[1]))
      } catch {
        return sum + row.rss
      }
    }, 0)
  return kib / 1024
}

const available = await citusAvailable()
if (!available.ok) {
  console.error(`FAIL: no Citus cluster possible here: ${available.reason}`)
  process.exit(1)
}
lap('availability check')

let failed = false
let cluster: CitusClusterHandle | undefined
try {
  cluster = await startCitusCluster({ log: (line) => console.log(`  [harness] ${line}`) })
  lap('start coordinator + 2 workers')
  console.log(`cluster: ${cluster.description}`)
  console.log(`memory after start: ${clusterMemoryMiB(cluster.socketDir).toFixed(0)} MiB PSS (all node processes)`)

  const scratch: CitusScratchDatabase = await cluster.createDatabase('cs_citus_check')
  lap('create scratch database (all nodes)')
  console.log(`scratch database: ${scratch.name}`)
  const sql = connect(scratch.url)
  try {
    const nodes = await sql<{ port: number; role: string; active: boolean }[]>`
      select nodeport as port, noderole::text as role, isactive as active from pg_dist_node order by nodeid`
    check(nodes.length === 3, `pg_dist_node in the scratch database has ${nodes.length} rows, expected 3`)

    await sql`create table harness_check (tenant_id int not null, id int not null, note text not null, primary key (tenant_id, id))`
    await sql`select create_distributed_table('harness_check', 'tenant_id')`
    lap('create + distribute table')

    await sql`
      insert into harness_check (tenant_id, id, note)
      select i % ${TENANTS}, i, 'row ' || i from generate_series(1, ${ROWS}) as i`
    lap(`insert ${ROWS} rows via coordinator`)

    const workerPorts = cluster.workerUrls.map((url) => Number(new URL(url).port))
    const shards = await sql<{ port: number; shards: number }[]>`
      select nodeport as port, count(*)::int as shards
      from citus_shards where table_name = 'harness_check'::regclass group by nodeport order by nodeport`
    console.log(`shards per node: ${shards.map((row) => `:${row.port}=${row.shards}`).join(', ')}`)
    check(
      shards.length === workerPorts.length && shards.every((row) => workerPorts.includes(row.port)),
      `shards are not on exactly the workers ${workerPorts.join(', ')}`,
    )

    // Count on each worker directly, through its shard tables, so the rows are proven to be there.
    let onWorkers = 0
    for (const workerUrl of scratch.workerUrls) {
      const worker = connect(workerUrl)
      try {
        // Citus hides shard tables from pg_class on workers unless told otherwise.
        await worker`set citus.override_table_visibility = off`
        const tables = await worker<{ name: string }[]>`
          select c.relname as name from pg_class c
          where c.relname ~ '^harness_check_[0-9]+$' and c.relkind = 'r'`
        check(tables.length > 0, `no shard tables on worker ${new URL(workerUrl).port}`)
        for (const { name } of tables) {
          const [row] = await worker<{ n: number }[]>`select count(*)::int as n from ${worker(name)}`
          onWorkers += row?.n ?? 0
        }
      } finally {
        await worker.end({ timeout: 5 })
      }
    }
    check(onWorkers === ROWS, `workers hold ${onWorkers} rows, expected ${ROWS}`)
    const [total] = await sql<{ n: number }[]>`select count(*)::int as n from harness_check`
    check(total?.n === ROWS, `coordinator sees ${total?.n} rows, expected ${ROWS}`)
    const [one] = await sql<{ note: string }[]>`select note from harness_check where tenant_id = 7 and id = 7`
    check(one?.note === 'row 7', 'router query for one tenant did not return its row')
    lap('rows on workers checked')
    console.log(`rows: ${onWorkers} in worker shards, ${total.n} via coordinator`)
    console.log(`memory with data: ${clusterMemoryMiB(cluster.socketDir).toFixed(0)} MiB PSS (all node processes)`)
  } finally {
    await sql.end({ timeout: 5 })
    await scratch.drop()
    await scratch.drop() // idempotent
    lap('drop scratch database')
  }
  for (const workerUrl of cluster.workerUrls) {
    const worker = connect(workerUrl)
    try {
      const left = await worker`select 1 from pg_database where datname = ${scratch.name}`
      check(left.length === 0, `scratch database still on worker ${new URL(workerUrl).port} after drop`)
    } finally {
      await worker.end({ timeout: 5 })
    }
  }
} catch (error) {
  failed = true
  console.error(`FAIL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
} finally {
  if (cluster !== undefined) {
    await cluster.stop()
    await cluster.stop() // idempotent
    lap('stop')
  }
}

steps.report(failed)
