// Over 350 lines because a suite is one experiment: fixture, every contender, the check that all return the same rows,
// the probes and the tables, kept together so what is measured reads in one place.
/**
 * Replica routing (issue: "read latency with routing and the gate vs without the gate vs primary only;
 * stale-read counts with and without the gate under injected replay delay"). The suite starts its own
 * primary + asynchronous streaming replica (`startLocalCluster`: it delays the replica's replay, which the
 * shared server of `bench/run.ts` must not see), migrates a scratch database on it and opens the library
 * with the replica configured.
 *
 * 1. `contacts.findById` at concurrency 1 and 16 through four clients: 'read-your-writes' holding a token
 *    (it wrote first, so the gate's target is a real position; the replica has replayed it), 'eventual',
 *    'primary', and a library opened on the replica as if it were the primary (the same reads on the same
 *    server with no gate function in the settings statement: what the function call itself costs).
 * 2. Write-then-read pairs (create + findById) with no injected delay: the pair latency and where the reads
 *    went.
 * 3. The same pairs (and update + getById) with the replica's replay held back by
 *    `recovery_min_apply_delay`: stale reads per consistency level, pair latency and the routing counters.
 *
 * The suite reports numbers only; BENCHMARKS.md has the analysis.
 */
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import postgres from 'postgres'
import { uuidv7 } from 'uuidv7'
import { resolveConfig } from '../../src/client/config'
import type { ReadConsistency } from '../../src/routing/consistency'
import { createDatabase, type Database } from '../../src/client/create-database'
import { migrate } from '../../src/migrations/migrate'
import { APP_ROLE } from '../../src/schema/columns'
import type { FallbackReason, RoutingStats } from '../../src/routing/routing-stats'
import type { TenantClient } from '../../src/client/tenant-client'
import { localBinariesAvailable, startLocalCluster, type LocalClusterHandle } from '../../tools/local-cluster'
import { asRuntimeLogin, createScratchDatabase, runtimeLoginUrl, withDatabase } from '../../tools/postgres-server'
import { generateContacts, toCreateInput } from '../fixtures/contacts'
import {
  benchSettings,
  formatMs,
  formatRatio,
  quantile,
  runBench,
  type BenchCase,
  type BenchResult,
  type BenchSuite,
  type NumbersTable,
  type SuiteContext,
  type SuiteReport,
} from '../harness'

interface Sizes {
  /** contacts of the one tenant the reads look up */
  contacts: number
  /** findById calls per run at concurrency 1 */
  sequentialOps: number
  /** findById calls per worker per run at concurrency 16 */
  opsPerWorker: number
  /** write-then-read pairs per run without injected delay */
  pairsPerRun: number
  /** measured write-then-read pairs per consistency level under injected delay (split over the rounds) */
  delayedPairs: number
}

const SIZES: { default: Sizes; quick: Sizes } = {
  default: { contacts: 1_000, sequentialOps: 2_000, opsPerWorker: 125, pairsPerRun: 200, delayedPairs: 500 },
  quick: { contacts: 200, sequentialOps: 100, opsPerWorker: 8, pairsPerRun: 20, delayedPairs: 60 },
}

const CONCURRENCY = 16
const POOL_MAX = 16
/** The replica's injected replay delay (`recovery_min_apply_delay`) in part 3. */
const APPLY_DELAY_MS = 200
/** application_name of each pool, to find its backends */
const APP = { primary: 'bench-routing-primary', replica: 'bench-routing-replica', direct: 'bench-routing-direct' }
const CONTEXT = { actorId: uuidv7(), ip: '203.0.113.9', requestId: 'bench-replica-routing' }

const RYW: ReadConsistency = 'read-your-writes'
const EVENTUAL: ReadConsistency = 'eventual'
const PRIMARY: ReadConsistency = 'primary'
const MODES: readonly ReadConsistency[] = [RYW, EVENTUAL, PRIMARY]
/** The reads of a library opened on the replica as its primary: no gate function, same server. */
const DIRECT = 'replica, no gate fn'

/** `npm run bench -- replica-routing` */
export const replicaRouting: BenchSuite = {
  name: 'replica-routing',
  usesRows: false,
  title:
    "Replica routing: `contacts.findById` with consistency 'read-your-writes' (replica + gate), 'eventual' " +
    "(replica, no wait) and 'primary'; write-then-read pairs with and without an injected replay delay on the " +
    "replica (stale reads, pair latency, where the reads went); on the suite's own primary + streaming replica",
  async run(context) {
    const available = await localBinariesAvailable()
    if (!available.ok) {
      throw new Error(
        `replica-routing needs local PostgreSQL binaries for a private primary + replica: ${available.reason}`,
      )
    }
    context.log('starting a private primary + streaming replica for replica-routing')
    const cluster = await startLocalCluster({ log: context.log })
    try {
      const scratch = await createScratchDatabase(cluster.adminUrl, 'cs_bench_replica')
      try {
        context.log(`migrating ${scratch.name} on the private primary`)
        await migrate(scratch.url)
        const runtimeUrl = await runtimeLoginUrl(scratch.url)
        await cluster.waitForReplicaCatchUp(30_000)
        return await measure(context, cluster, scratch.url, runtimeUrl, withDatabase(cluster.replicaUrl, scratch.name))
      } finally {
        await cluster.setReplicaApplyDelay(0).catch(() => undefined)
        await scratch.drop()
      }
    } finally {
      await cluster.stop()
    }
  },
}

// ---------------------------------------------------------------------------------------------
// Routing counters

interface Counts {
  replica: number
  primary: number
  gated: number
  fallbacks: Record<FallbackReason, number>
}

const REASONS: readonly FallbackReason[] = ['behind', 'noReplica', 'replicaError', 'pinned']

const zeroCounts = (): Counts => ({
  replica: 0,
  primary: 0,
  gated: 0,
  fallbacks: { behind: 0, noReplica: 0, replicaError: 0, pinned: 0 },
})

function countsOf(routing: RoutingStats): Counts {
  return {
    replica: routing.reads.replica,
    primary: routing.reads.primary,
    gated: routing.gatedReads,
    fallbacks: { ...routing.fallbacks },
  }
}

function minus(a: Counts, b: Counts): Counts {
  const fallbacks = zeroCounts().fallbacks
  for (const reason of REASONS) fallbacks[reason] = a.fallbacks[reason] - b.fallbacks[reason]
  return { replica: a.replica - b.replica, primary: a.primary - b.primary, gated: a.gated - b.gated, fallbacks }
}

function addInto(total: Counts, delta: Counts): void {
  total.replica += delta.replica
  total.primary += delta.primary
  total.gated += delta.gated
  for (const reason of REASONS) total.fallbacks[reason] += delta.fallbacks[reason]
}

/** Where one read went, from the counters' change around it. */
type Route = 'replica' | 'replica (gated)' | 'primary (asked for)' | `primary: ${FallbackReason}`
const ROUTES: readonly Route[] = [
  'replica',
  'replica (gated)',
  'primary (asked for)',
  ...REASONS.map((r): Route => `primary: ${r}`),
]

function routeOf(delta: Counts): Route {
  if (delta.replica + delta.primary !== 1) throw new Error(`expected one routed read, counted ${JSON.stringify(delta)}`)
  if (delta.replica === 1) return delta.gated === 1 ? 'replica (gated)' : 'replica'
  const reason = REASONS.find((r) => delta.fallbacks[r] === 1)
  return reason === undefined ? 'primary (asked for)' : `primary: ${reason}`
}

// ---------------------------------------------------------------------------------------------
// The benches

interface LatencyMetrics {
  /** per measured run: each findById's latency, ms */
  latencies: Float64Array[]
  routing: Counts
  /** over the measured runs: Node CPU of the bench process, and CPU of the pools' backends on both servers (µs) */
  clientCpuMicros: number
  serverCpuMicros: number
  ops: number
  /** pool backends that appeared during measured runs */
  newBackends: number
}

const newLatencyMetrics = (): LatencyMetrics => ({
  latencies: [],
  routing: zeroCounts(),
  clientCpuMicros: 0,
  serverCpuMicros: 0,
  ops: 0,
  newBackends: 0,
})

interface PairMetrics {
  pairMs: number[]
  readMs: number[]
  /** read latency by route */
  readMsByRoute: Map<Route, number[]>
  routes: Map<Route, number>
  stale: { create: number; update: number }
  pairs: { create: number; update: number }
}

const newPairMetrics = (): PairMetrics => ({
  pairMs: [],
  readMs: [],
  readMsByRoute: new Map(),
  routes: new Map(),
  stale: { create: 0, update: 0 },
  pairs: { create: 0, update: 0 },
})

async function measure(
  context: SuiteContext,
  cluster: LocalClusterHandle,
  primaryUrl: string,
  /** The primary as the runtime login: what the library's databases connect as (owner URLs stay for probes). */
  runtimeUrl: string,
  replicaUrl: string,
): Promise<SuiteReport> {
  const sizes = context.quick ? SIZES.quick : SIZES.default
  const routing = resolveConfig({ primary: primaryUrl, replicas: [replicaUrl] }).routing
  const admin = postgres(primaryUrl, { max: 1, onnotice: () => {} })
  const replicaAdmin = postgres(replicaUrl, { max: 1, onnotice: () => {} })
  const routed = createDatabase({
    primary: { url: runtimeUrl, connection: { application_name: APP.primary } },
    replicas: [{ url: asRuntimeLogin(replicaUrl), connection: { application_name: APP.replica } }],
    pool: { max: POOL_MAX, idleTimeoutSeconds: 0 },
  })
  const direct = createDatabase({
    primary: { url: asRuntimeLogin(replicaUrl), connection: { application_name: APP.direct } },
    pool: { max: POOL_MAX, idleTimeoutSeconds: 0 },
  })
  try {
    const serverSettings = await admin<{ name: string; setting: string }[]>`
      select name, current_setting(name) as setting from pg_settings
      where name = any(${['synchronous_commit', 'fsync', 'wal_writer_delay', 'hot_standby_feedback']}) order by name`
    const [version] = await admin<{ v: string }[]>`select current_setting('server_version') as v`

    // One tenant, one production, the contacts; the ryw reader writes (it holds a token from then on).
    const organization = await routed.organizations.create({ name: 'Routing Pictures', slug: 'routing-bench' })
    // The audit actor must be a live user of the organization (issue 14).
    await admin.unsafe(
      "insert into users (id, organization_id, email, name, role) values ($1, $2, 'bench@routing.example', 'Bench Actor', 'owner')",
      [CONTEXT.actorId, organization.id],
    )
    const writer = routed.tenant(organization.id, CONTEXT)
    const production = await writer.productions.create({ title: 'The Replica', code: 'ROUTE-1', status: 'production' })
    context.log(`seeding ${sizes.contacts.toLocaleString('en-US')} contacts through the library`)
    const contactIds = await writer.contacts.createMany(
      generateContacts(sizes.contacts, { organizationId: organization.id, productionId: production.id, seed: 7 }).map(
        (c) => toCreateInput(c),
      ),
      { returning: 'ids' },
    )
    await admin`analyze contacts`
    await writer.productions.update(production.id, { title: 'The Replica (token)' })
    if (writer.consistencyToken === undefined) throw new Error('the writer holds no consistency token after a write')
    await cluster.waitForReplicaCatchUp(30_000)

    /** the findById clients: the routed database's three levels, and the replica opened as a primary */
    const readers: Record<string, { client: TenantClient; db: Database }> = {
      [RYW]: { client: writer, db: routed },
      [EVENTUAL]: { client: routed.tenant(organization.id, CONTEXT, { consistency: EVENTUAL }), db: routed },
      [PRIMARY]: { client: routed.tenant(organization.id, CONTEXT, { consistency: PRIMARY }), db: routed },
      [DIRECT]: { client: direct.tenant(organization.id, CONTEXT), db: direct },
    }

    // CPU of the library's backends on both servers (the cluster runs on this machine): /proc via pg_stat_activity.
    const serverCpu = async (): Promise<number> =>
      (await backendCpuMicros(admin, [APP.primary])) + (await backendCpuMicros(replicaAdmin, [APP.replica, APP.direct]))
    /** the pools' backends on both servers (a backend started during a run would count its start-up as the run's) */
    const backends = async (): Promise<number> => {
      const apps = Object.values(APP)
      const [p] = await admin<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where application_name = any(${apps})`
      const [r] = await replicaAdmin<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where application_name = any(${apps})`
      return (p?.n ?? 0) + (r?.n ?? 0)
    }
    // Open every connection of every pool, prepare its statements and compile the gate function in each backend
    // before anything is timed (the concurrency-1 bench alone would open only some of them).
    for (const { client } of Object.values(readers)) {
      for (let burst = 0; burst < 3; burst++) {
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async (_, w) => {
            for (let i = 0; i < 8; i++)
              await client.contacts.findById(contactIds[(w * 8 + i) % contactIds.length] as string)
          }),
        )
      }
    }
    const warmedBackends = await backends()
    context.log(`${warmedBackends} pool backends open after warming`)

    const results: BenchResult[] = []
    const latency = new Map<string, LatencyMetrics>()
    const benchOptions = (baselines: string[], unit: string) => ({
      rounds: context.rounds,
      warmupRounds: context.warmupRounds,
      baselines,
      opsUnit: unit,
      log: context.log,
    })

    // 1. findById at concurrency 1 and 16.
    const workload = makeWorkload(contactIds, Math.max(sizes.sequentialOps, CONCURRENCY * sizes.opsPerWorker))
    for (const concurrency of [1, CONCURRENCY]) {
      const ops = concurrency === 1 ? sizes.sequentialOps : CONCURRENCY * sizes.opsPerWorker
      const cases = [RYW, EVENTUAL, PRIMARY, DIRECT].map((name): BenchCase => {
        const { client, db } = readers[name] as { client: TenantClient; db: Database }
        const m = newLatencyMetrics()
        latency.set(`${concurrency}/${name}`, m)
        let runs = 0
        let wrong = 0
        let before = zeroCounts()
        let last = new Float64Array(ops)
        let serverBefore = Number.NaN
        let backendsBefore = 0
        let cpuBefore = process.cpuUsage()
        let cpuUsed = { user: 0, system: 0 }
        return {
          name,
          ops,
          setup: async () => {
            wrong = 0
            before = countsOf(db.stats().routing)
            backendsBefore = await backends()
            serverBefore = await serverCpu()
            cpuBefore = process.cpuUsage()
          },
          run: async () => {
            const latencies = new Float64Array(ops)
            const perWorker = ops / concurrency
            await Promise.all(
              Array.from({ length: concurrency }, async (_, w) => {
                for (let i = w * perWorker; i < (w + 1) * perWorker; i++) {
                  const id = workload[i] as string
                  const t0 = performance.now()
                  const row = await client.contacts.findById(id)
                  latencies[i] = performance.now() - t0
                  if (row?.id !== id) wrong++
                }
              }),
            )
            last = latencies
            cpuUsed = process.cpuUsage(cpuBefore)
          },
          teardown: async () => {
            if (wrong > 0) throw new Error(`${name} findById: ${wrong} of ${ops} lookups returned the wrong row`)
            const delta = minus(countsOf(db.stats().routing), before)
            const serverAfter = await serverCpu()
            const backendsAfter = await backends()
            if (runs >= context.warmupRounds) {
              m.newBackends += Math.max(0, backendsAfter - backendsBefore)
              m.latencies.push(last)
              addInto(m.routing, delta)
              m.clientCpuMicros += cpuUsed.user + cpuUsed.system
              m.serverCpuMicros += serverAfter - serverBefore
              m.ops += ops
            }
            runs++
          },
        }
      })
      const title = `findById, concurrency ${concurrency}: ${ops.toLocaleString('en-US')} lookups by random id per run`
      context.log(`bench: ${title}`)
      results.push(await runBench(title, cases, benchOptions([PRIMARY, EVENTUAL], 'ops')))
    }

    context.log('server time of the gate function on the replica')
    const [fn] = await admin<{ src: string }[]>`
      select prosrc as src from pg_proc where proname = 'callsheet_wait_for_replay'`
    if (fn === undefined) throw new Error('callsheet_wait_for_replay is not installed')
    // The gate's body as a function without its SET clause, to show what the clause costs (dropped below).
    await admin.unsafe(
      `create function ${NO_SET_FN}(target pg_lsn, timeout_ms integer) returns pg_lsn language plpgsql volatile ` +
        `as $bench$${fn.src}$bench$`,
    )
    let gateCall: GateCall
    let unitCpu: UnitCpu
    try {
      await admin.unsafe(`grant execute on function ${NO_SET_FN}(pg_lsn, integer) to ${APP_ROLE}`)
      await cluster.waitForReplicaCatchUp(30_000)
      const [replayed] = await replicaAdmin<{ lsn: string }[]>`select pg_last_wal_replay_lsn()::text as lsn`
      const lsn = replayed?.lsn ?? '0/0'
      gateCall = await measureGateCall(replicaUrl, lsn, context.quick ? 2_000 : 10_000)
      context.log('server CPU of library-shaped read transactions on the replica, with and without the gate')
      unitCpu = await measureUnitCpu(
        replicaAdmin,
        replicaUrl,
        lsn,
        organization.id,
        contactIds,
        context.quick ? 200 : 1_000,
        context.quick ? 2 : 7,
      )
    } finally {
      await admin.unsafe(`drop function ${NO_SET_FN}(pg_lsn, integer)`)
    }

    // 2. and 3. write-then-read pairs, each level with its own client (its own token) and production.
    const pairClients = new Map<ReadConsistency, { client: TenantClient; productionId: string }>()
    for (const mode of MODES) {
      const client = routed.tenant(organization.id, CONTEXT, { consistency: mode })
      const p = await client.productions.create({ title: `Pairs ${mode}`, code: `PAIRS-${mode.toUpperCase()}` })
      pairClients.set(mode, { client, productionId: p.id })
    }
    await cluster.waitForReplicaCatchUp(30_000)
    let serial = 0
    const pairCases = (
      metrics: Map<string, PairMetrics>,
      key: string,
      pairs: number,
      kinds: readonly ('create' | 'update')[],
    ): BenchCase[] =>
      MODES.map((mode): BenchCase => {
        const { client, productionId } = pairClients.get(mode) as { client: TenantClient; productionId: string }
        const m = newPairMetrics()
        const warm = newPairMetrics()
        metrics.set(`${key}/${mode}`, m)
        metrics.set(`${key}/${mode}/warm-up`, warm)
        let runs = 0
        let run = newPairMetrics()
        return {
          name: mode,
          ops: pairs,
          setup: async () => {
            run = newPairMetrics()
          },
          run: async () => {
            for (let i = 0; i < pairs; i++) {
              const kind = kinds[i % kinds.length] as 'create' | 'update'
              const n = ++serial
              const before = countsOf(routed.stats().routing)
              const t0 = performance.now()
              let t1: number
              let stale: boolean
              if (kind === 'create') {
                const name = `Pair ${n}`
                const created = await client.contacts.create({ productionId, name })
                t1 = performance.now()
                stale = (await client.contacts.findById(created.id))?.name !== name
              } else {
                const title = `Take ${n}`
                await client.productions.update(productionId, { title })
                t1 = performance.now()
                stale = (await client.productions.getById(productionId)).title !== title
              }
              const t2 = performance.now()
              const route = routeOf(minus(countsOf(routed.stats().routing), before))
              run.pairMs.push(t2 - t0)
              run.readMs.push(t2 - t1)
              run.routes.set(route, (run.routes.get(route) ?? 0) + 1)
              const byRoute = run.readMsByRoute.get(route) ?? []
              byRoute.push(t2 - t1)
              run.readMsByRoute.set(route, byRoute)
              run.pairs[kind]++
              if (stale) run.stale[kind]++
            }
          },
          teardown: async () => {
            mergePairs(runs >= context.warmupRounds ? m : warm, run)
            runs++
          },
        }
      })

    const noDelay = new Map<string, PairMetrics>()
    const pairTitle = `create + findById pairs, no injected delay: ${sizes.pairsPerRun.toLocaleString('en-US')} sequential pairs per run`
    context.log(`bench: ${pairTitle}`)
    results.push(
      await runBench(
        pairTitle,
        pairCases(noDelay, 'plain', sizes.pairsPerRun, ['create']),
        benchOptions([PRIMARY], 'pairs'),
      ),
    )

    const delayedPerRun = Math.ceil(sizes.delayedPairs / context.rounds)
    const delayed = new Map<string, PairMetrics>()
    let lagUnderDelay: { lagMs: number | undefined; lagBytes: number | undefined } = {
      lagMs: undefined,
      lagBytes: undefined,
    }
    let catchUpMs = Number.NaN
    context.log(`replica replay delay ${APPLY_DELAY_MS} ms`)
    await cluster.setReplicaApplyDelay(APPLY_DELAY_MS)
    try {
      const title =
        `write-then-read pairs, replica replay delayed ${APPLY_DELAY_MS} ms: ${delayedPerRun.toLocaleString('en-US')} ` +
        'sequential pairs per run, create + findById and update + getById alternating'
      context.log(`bench: ${title}`)
      results.push(
        await runBench(
          title,
          pairCases(delayed, 'delayed', delayedPerRun, ['create', 'update']),
          benchOptions([PRIMARY], 'pairs'),
        ),
      )
      await routed.measureReplicaLag()
      const replica = routed.stats().routing.replicas[0]
      lagUnderDelay = { lagMs: replica?.lagMs, lagBytes: replica?.lagBytes }
    } finally {
      await cluster.setReplicaApplyDelay(0)
      const t0 = performance.now()
      await cluster.waitForReplicaCatchUp(30_000)
      catchUpMs = performance.now() - t0
    }

    const tables = buildTables({
      sizes,
      rounds: context.rounds,
      routing,
      cluster: cluster.description,
      version: version?.v ?? 'unknown',
      serverSettings: Object.fromEntries(serverSettings.map((s) => [s.name, s.setting])),
      latency,
      noDelay,
      delayed,
      delayedPerRun,
      lagUnderDelay,
      catchUpMs,
      gateCall,
      unitCpu,
    })
    return { results, tables }
  } finally {
    await Promise.all([routed.close(), direct.close(), admin.end({ timeout: 5 }), replicaAdmin.end({ timeout: 5 })])
  }
}

const NO_SET_FN = 'bench_wait_for_replay_no_set'
const LOOKUP_SQL = 'select id, name from contacts where id = $1 and organization_id = $2 and deleted_at is null'

type UnitVariant = 'plain' | 'gate' | 'gateEventual' | 'gateWithoutSet'

/** Server CPU per read-like transaction on the replica (see {@link measureUnitCpu}). */
interface UnitCpu {
  /** transactions per variant per round */
  transactions: number
  /** per variant, per measured round: µs of backend CPU per transaction */
  perRound: Record<UnitVariant, number[]>
}

/**
 * CPU time in µs (nanosecond resolution: `/proc/<pid>/schedstat`) of the backends of `sql`'s database whose
 * application_name is one of `apps`; NaN when one cannot be read (the server is not on this machine).
 */
async function backendCpuMicros(sql: postgres.Sql, apps: readonly string[]): Promise<number> {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity where application_name = any(${apps as string[]}) and datname = current_database()`
  let total = 0
  for (const { pid } of rows) {
    try {
      total += Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000
    } catch {
      return Number.NaN
    }
  }
  return total
}

/**
 * The gate's cost in context: one connection per variant on the replica runs `transactions` units shaped like
 * the library's (BEGIN READ ONLY, the settings statement as the app role, a primary-key lookup under RLS,
 * COMMIT; pipelined, prepared) per round, and the CPU its backend used is read from /proc. Variants take turns
 * within each round (`rounds` measured, after one untimed), so that load from outside hits all of them alike.
 */
async function measureUnitCpu(
  replicaAdmin: postgres.Sql,
  replicaUrl: string,
  replayed: string,
  organizationId: string,
  contactIds: readonly string[],
  transactions: number,
  rounds: number,
): Promise<UnitCpu> {
  // The settings statement as src/engine/ sends it: without the gate, and on a replica.
  const unit = (gate?: { waitFor: string; waitMs: number }) =>
    benchSettings(organizationId, CONTEXT, { statementTimeoutMs: 30_000, ...(gate ? { gate } : {}) })
  const plain = unit()
  const gated = unit({ waitFor: replayed, waitMs: 20 })
  const eventual = unit({ waitFor: '0/0', waitMs: 0 })
  const variants: Record<UnitVariant, [string, unknown[]]> = {
    plain: [plain.text, plain.params],
    gate: [gated.text, gated.params],
    gateEventual: [eventual.text, eventual.params],
    gateWithoutSet: [gated.text.replace('public.callsheet_wait_for_replay(', `${NO_SET_FN}(`), gated.params],
  }
  const names = Object.keys(variants) as UnitVariant[]
  const app = (name: UnitVariant): string => `bench-unit-${name}`
  const clients = new Map(
    names.map((name) => [
      name,
      postgres(replicaUrl, { max: 1, onnotice: () => {}, connection: { application_name: app(name) } }),
    ]),
  )
  const perRound: Record<UnitVariant, number[]> = { plain: [], gate: [], gateEventual: [], gateWithoutSet: [] }
  try {
    const reserved = new Map(
      await Promise.all([...clients].map(async ([name, sql]) => [name, await sql.reserve()] as const)),
    )
    for (let round = 0; round <= rounds; round++) {
      // rotated, like the harness's rounds
      for (const name of [...names.slice(round % names.length), ...names.slice(0, round % names.length)]) {
        const [text, params] = variants[name]
        const conn = reserved.get(name) as postgres.ReservedSql
        const before = await backendCpuMicros(replicaAdmin, [app(name)])
        for (let i = 0; i < transactions; i++) {
          const id = contactIds[i % contactIds.length] as string
          const begin = conn.unsafe('begin read only').execute()
          const applied = conn.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true }).execute()
          const row = conn.unsafe(LOOKUP_SQL, [id, organizationId], { prepare: true }).execute()
          await Promise.all([begin, applied, row])
          if ((await row)[0]?.id !== id) throw new Error(`unit ${name}: the lookup of ${id} found nothing`)
          await conn.unsafe('commit')
        }
        const after = await backendCpuMicros(replicaAdmin, [app(name)])
        if (round > 0) perRound[name].push((after - before) / transactions)
      }
    }
    for (const conn of reserved.values()) conn.release()
  } finally {
    await Promise.all([...clients.values()].map((sql) => sql.end({ timeout: 5 })))
  }
  return { transactions, perRound }
}

/** Server-side cost of one call of the gate function on the replica, in µs (see {@link measureGateCall}). */
interface GateCall {
  calls: number
  /** `callsheet_wait_for_replay(replayed, 20)`: the target already replayed, as a 'read-your-writes' read sees it */
  gate: number
  /** `callsheet_wait_for_replay('0/0', 0)`: as an 'eventual' read calls it */
  gateEventual: number
  /** the same body as a function without `SET search_path` */
  gateWithoutSet: number
  /** `pg_last_wal_replay_lsn()` alone */
  bare: number
}

/**
 * The server's own time per call, each call in a transaction of its own as every read is: a DO block on the
 * replica (as the superuser) runs `perform <expr>; commit` `calls` times and reports the time per iteration,
 * minus the same loop with a constant (median of 5, after one untimed). This isolates the call; the
 * per-transaction set-up of PL/pgSQL is in both loops and cancels (see {@link measureUnitCpu} for the cost in
 * context).
 */
async function measureGateCall(replicaUrl: string, replayed: string, calls: number): Promise<GateCall> {
  const notices: string[] = []
  const replica = postgres(replicaUrl, { max: 1, onnotice: (notice) => notices.push(String(notice.message)) })
  try {
    const time = async (expression: string): Promise<number> => {
      const samples: number[] = []
      for (let i = 0; i <= 5; i++) {
        notices.length = 0
        await replica.unsafe(
          `do $bench$ declare t0 timestamptz := clock_timestamp(); begin
             for i in 1..${calls} loop perform ${expression}; commit; end loop;
             raise notice 'bench-us %', extract(epoch from clock_timestamp() - t0) * 1000000 / ${calls};
           end $bench$`,
        )
        const reported = notices.find((n) => n.startsWith('bench-us '))
        if (reported === undefined) throw new Error(`the DO loop of ${expression} reported no time`)
        if (i > 0) samples.push(Number(reported.slice('bench-us '.length)))
      }
      return quantile(Float64Array.from(samples).sort(), 0.5)
    }
    const floor = await time('1')
    const perCall = async (expression: string): Promise<number> => (await time(expression)) - floor
    return {
      calls,
      gate: await perCall(`callsheet_wait_for_replay('${replayed}'::pg_lsn, 20)`),
      gateEventual: await perCall(`callsheet_wait_for_replay('0/0'::pg_lsn, 0)`),
      gateWithoutSet: await perCall(`${NO_SET_FN}('${replayed}'::pg_lsn, 20)`),
      bare: await perCall('pg_last_wal_replay_lsn()'),
    }
  } finally {
    await replica.end({ timeout: 5 })
  }
}

function mergePairs(into: PairMetrics, run: PairMetrics): void {
  into.pairMs.push(...run.pairMs)
  into.readMs.push(...run.readMs)
  for (const [route, n] of run.routes) into.routes.set(route, (into.routes.get(route) ?? 0) + n)
  for (const [route, ms] of run.readMsByRoute)
    into.readMsByRoute.set(route, [...(into.readMsByRoute.get(route) ?? []), ...ms])
  into.stale.create += run.stale.create
  into.stale.update += run.stale.update
  into.pairs.create += run.pairs.create
  into.pairs.update += run.pairs.update
}

/** A fixed pseudo-random sequence of contact ids: every case and every run looks up the same ones. */
function makeWorkload(ids: readonly string[], length: number): string[] {
  let state = 42
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  return Array.from({ length }, () => ids[Math.floor(random() * ids.length)] as string)
}

// ---------------------------------------------------------------------------------------------
// The report

interface TablesInput {
  sizes: Sizes
  rounds: number
  routing: { readYourWritesWaitMs: number; maxLagMs: number; lagCheckIntervalMs: number }
  cluster: string
  version: string
  serverSettings: Record<string, string>
  latency: Map<string, LatencyMetrics>
  noDelay: Map<string, PairMetrics>
  delayed: Map<string, PairMetrics>
  delayedPerRun: number
  lagUnderDelay: { lagMs: number | undefined; lagBytes: number | undefined }
  catchUpMs: number
  gateCall: GateCall
  unitCpu: UnitCpu
}

function buildTables(input: TablesInput): NumbersTable[] {
  const { latency, noDelay, delayed, routing } = input
  const sorted = (values: ArrayLike<number>): Float64Array => Float64Array.from(values).sort()
  const q = (values: ArrayLike<number>, p: number): number => quantile(sorted(values), p)
  const us = (ms: number): string => (Number.isFinite(ms) ? Math.round(ms * 1000).toLocaleString('en-US') : 'n/a')
  const int = (n: number): string => n.toLocaleString('en-US')
  const lat = (concurrency: number, name: string): LatencyMetrics =>
    latency.get(`${concurrency}/${name}`) ?? newLatencyMetrics()
  const pooled = (m: LatencyMetrics): Float64Array => sorted(m.latencies.flatMap((run) => [...run]))
  /** per measured run, the median latency; the paired ratio a ÷ b per run */
  const runMedians = (m: LatencyMetrics): number[] => m.latencies.map((run) => quantile(sorted(run), 0.5))
  const paired = (a: LatencyMetrics, b: LatencyMetrics): { min: number; max: number } => {
    const ra = runMedians(a)
    const rb = runMedians(b)
    const ratios = ra.map((x, i) => x / (rb[i] ?? Number.NaN))
    return { min: Math.min(...ratios), max: Math.max(...ratios) }
  }
  const fallbackText = (c: Counts): string => {
    const parts = REASONS.filter((r) => c.fallbacks[r] > 0).map((r) => `${r} ${int(c.fallbacks[r])}`)
    return parts.length === 0 ? '0' : parts.join(', ')
  }
  const latencyCases = [RYW, EVENTUAL, PRIMARY, DIRECT]
  /** a share with one decimal, so that 998 of 1,000 does not read as 100 % */
  const pct = (fraction: number): string => (Number.isFinite(fraction) ? `${(fraction * 100).toFixed(1)} %` : 'n/a')
  const cpu = (micros: number): string => (Number.isFinite(micros) ? String(Math.round(micros)) : 'n/a')

  // 1. Per-call latency of findById, and where the reads went.
  const latencyTable: NumbersTable = {
    title:
      'findById per call (every measured call, pooled over the rounds); fallbacks: replica-meant reads sent to ' +
      'the primary, by reason; gated: `gatedReads`',
    header: [
      'concurrency',
      'client',
      'latency median µs',
      'p95 µs',
      'Node CPU µs/op',
      'server CPU µs/op',
      "÷ 'primary'",
      "÷ 'eventual'",
      "per-run ÷ 'eventual' (min–max)",
      'replica reads',
      'primary reads',
      'fallbacks',
      'gated',
    ],
    rows: [1, CONCURRENCY].flatMap((concurrency) =>
      latencyCases.map((name) => {
        const m = lat(concurrency, name)
        const all = pooled(m)
        const median = quantile(all, 0.5)
        const range = paired(m, lat(concurrency, EVENTUAL))
        const directDb = name === DIRECT
        return [
          String(concurrency),
          name === DIRECT ? `${DIRECT} (library opened on the replica as its primary)` : `'${name}'`,
          us(median),
          us(quantile(all, 0.95)),
          cpu(m.clientCpuMicros / m.ops),
          cpu(m.serverCpuMicros / m.ops),
          formatRatio(median / quantile(pooled(lat(concurrency, PRIMARY)), 0.5)),
          formatRatio(median / quantile(pooled(lat(concurrency, EVENTUAL)), 0.5)),
          `${formatRatio(range.min)}–${formatRatio(range.max)}`,
          directDb ? `${int(m.routing.primary)} (its "primary")` : int(m.routing.replica),
          directDb ? '0' : int(m.routing.primary),
          fallbackText(m.routing),
          int(m.routing.gated),
        ]
      }),
    ),
  }
  const g = input.gateCall
  const u = input.unitCpu
  const unit = (variant: UnitVariant): number => q(u.perRound[variant], 0.5)
  const signedExact = (value: number): string =>
    !Number.isFinite(value) ? 'n/a' : `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}`
  const usExact = (value: number): string =>
    !Number.isFinite(value) ? 'n/a' : value < 0.1 ? '< 0.1' : value.toFixed(1)
  /** the variant's CPU per transaction minus the gate-less one's, paired by round: median (min to max) */
  const delta = (variant: UnitVariant): string => {
    const d = u.perRound[variant].map((v, i) => v - (u.perRound.plain[i] ?? Number.NaN))
    return `${signedExact(q(d, 0.5))} (${signedExact(Math.min(...d))} to ${signedExact(Math.max(...d))})`
  }
  const opened = [1, CONCURRENCY].reduce(
    (a, concurrency) => a + latencyCases.reduce((b, name) => b + lat(concurrency, name).newBackends, 0),
    0,
  )
  const unitVariants: { variant: UnitVariant; label: string; call: number }[] = [
    { variant: 'plain', label: 'no gate', call: g.bare },
    { variant: 'gate', label: 'gate, target replayed', call: g.gate },
    { variant: 'gateEventual', label: 'gate with `0/0` (eventual)', call: g.gateEventual },
    { variant: 'gateWithoutSet', label: 'gate without `SET search_path`', call: g.gateWithoutSet },
  ]
  const gateTable: NumbersTable = {
    title:
      `Replica backend CPU per read transaction (${int(u.transactions)} per variant in each of ` +
      `${u.perRound.plain.length} rounds, medians; Δ paired by round) and per call alone (${int(g.calls)} calls, ` +
      `median of 5; no gate: bare \`pg_last_wal_replay_lsn()\`); pool backends started during measured runs: ${int(opened)}`,
    header: ['variant', 'CPU µs per transaction', 'Δ vs no gate µs (min to max)', 'call alone µs'],
    rows: unitVariants.map(({ variant, label, call }) => [
      label,
      usExact(unit(variant)),
      variant === 'plain' ? '' : delta(variant),
      usExact(call),
    ]),
  }

  // 2. Pairs without delay, and under delay.
  const pairRows = (metrics: Map<string, PairMetrics>, key: string, withUpdates: boolean): string[][] =>
    MODES.map((mode) => {
      const m = metrics.get(`${key}/${mode}`) ?? newPairMetrics()
      const total = m.pairs.create + m.pairs.update
      const routes = ROUTES.filter((r) => (m.routes.get(r) ?? 0) > 0)
        .map((r) => {
          const n = m.routes.get(r) ?? 0
          return `${r} ${int(n)} (${pct(n / total)}; read median ${formatMs(q(m.readMsByRoute.get(r) ?? [], 0.5))} ms)`
        })
        .join('; ')
      return [
        `'${mode}'`,
        int(total),
        withUpdates
          ? `${int(m.stale.create)} of ${int(m.pairs.create)} / ${int(m.stale.update)} of ${int(m.pairs.update)}`
          : `${int(m.stale.create)} of ${int(m.pairs.create)}`,
        `${formatMs(q(m.pairMs, 0.5))} / ${formatMs(q(m.pairMs, 0.95))}`,
        `${formatMs(q(m.readMs, 0.5))} / ${formatMs(q(m.readMs, 0.95))}`,
        routes,
      ]
    })
  const noDelayTable: NumbersTable = {
    title: 'Write-then-read pairs, no injected delay (stale: the read did not return the row just created)',
    header: ['client', 'pairs', 'stale reads', 'pair ms median / p95', 'read ms median / p95', 'where the reads went'],
    rows: pairRows(noDelay, 'plain', false),
  }
  const delayedTable: NumbersTable = {
    title:
      `Write-then-read pairs, replica replay delayed ${APPLY_DELAY_MS} ms (${input.delayedPerRun} pairs per run; ` +
      'stale: not found, or the old title)',
    header: [
      'client',
      'pairs',
      'stale reads: create→findById / update→getById',
      'pair ms median / p95',
      'read ms median / p95',
      'where the reads went',
    ],
    rows: pairRows(delayed, 'delayed', true),
  }
  const pm = (metrics: Map<string, PairMetrics>, key: string): PairMetrics => metrics.get(key) ?? newPairMetrics()
  const total = (m: PairMetrics): number => m.pairs.create + m.pairs.update
  const slowRyw = pm(delayed, `delayed/${RYW}`)
  const slowRywWarm = pm(delayed, `delayed/${RYW}/warm-up`)
  const paidWait = (m: PairMetrics): number =>
    (m.readMsByRoute.get('primary: behind') ?? []).filter((ms) => ms >= routing.readYourWritesWaitMs).length
  const delayTable: NumbersTable = {
    title: `Under the ${APPLY_DELAY_MS} ms replay delay`,
    header: ['what', 'value'],
    rows: [
      [
        `'read-your-writes' reads that paid the ${routing.readYourWritesWaitMs} ms budget (measured)`,
        `${int(paidWait(slowRyw))} of ${int(total(slowRyw))}`,
      ],
      ['… in the warm-up round', `${int(paidWait(slowRywWarm))} of ${int(total(slowRywWarm))}`],
      [
        "the router's lag at the end",
        `${input.lagUnderDelay.lagMs === undefined ? 'n/a' : `${int(input.lagUnderDelay.lagMs)} ms`}, ` +
          `${input.lagUnderDelay.lagBytes === undefined ? 'n/a' : int(input.lagUnderDelay.lagBytes)} bytes of WAL`,
      ],
      ['catch-up once the delay was removed', `${formatMs(input.catchUpMs)} ms`],
    ],
  }
  const settings = Object.entries(input.serverSettings)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')
  const clusterTable: NumbersTable = {
    title: "The suite's own cluster (the machine lines above describe bench/run.ts's server, idle meanwhile)",
    header: ['what', 'value'],
    rows: [
      ['cluster', input.cluster],
      ['PostgreSQL', input.version],
      ['settings', settings],
      [
        'routing',
        `readYourWritesWaitMs ${routing.readYourWritesWaitMs}, maxLagMs ${int(routing.maxLagMs)}, ` +
          `lagCheckIntervalMs ${int(routing.lagCheckIntervalMs)}`,
      ],
      ['pool max, contacts, rounds', `${POOL_MAX}, ${int(input.sizes.contacts)}, ${input.rounds}`],
    ],
  }
  return [latencyTable, gateTable, noDelayTable, delayedTable, delayTable, clusterTable]
}
