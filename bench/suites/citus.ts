// Over 350 lines because a suite is one experiment: both clusters, the shared fixture, every operation, the round-trip
// and 2PC probes and the tables, kept together so what is measured reads in one place.
/**
 * Tenant operations on Citus ÷ a single node (issue 16, deliver 5): the same library calls, the same data,
 * in one run, on a plain PostgreSQL 15 node and on a Citus cluster (coordinator + two workers, tenant
 * tables sharded by `organization_id`, `organizations` and the proof keys reference tables: `distribute()`).
 * Both servers are started by this suite with the same durability settings (fsync, synchronous_commit and
 * full_page_writes off, 64 MB shared_buffers), on this machine: the coordinator→worker hop is loopback.
 *
 * Per operation (`contacts.findById`, a 50-row `findMany`, `search`, `create`, `createMany` of 100,
 * `update`, `softDelete`), at concurrency 1 through `db.tenant(org).contacts`: the time of a batch of
 * operations (interleaved rounds, the single node as baseline), each operation's latency, the Node CPU and
 * the CPU of the whole server (for Citus: coordinator + workers, every process) per operation, the client's
 * round trips per operation (a counting TCP proxy in front of the primary / coordinator), and on Citus the
 * two-phase commits per operation (rows Citus records in `pg_dist_transaction`; recovery is switched off so
 * none are removed during the run). Numbers only: BENCHMARKS.md has the analysis.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import { uuidv7 } from 'uuidv7'
import { createDatabase } from '../../src/client/create-database'
import { distribute } from '../../src/distribution/distribute'
import { migrate } from '../../src/migrations/migrate'
import { citusAvailable, startCitusCluster, type CitusClusterHandle } from '../../tools/citus-cluster'
import { startLocalCluster, type LocalClusterHandle } from '../../tools/local-cluster'
import { createScratchDatabase, runtimeLoginUrl } from '../../tools/postgres-server'
import { seededRandom } from '../../src/testing/fixtures'
import { generateContacts, insertSeedContacts, type BenchContact } from '../fixtures/contacts'
import { ServersCpu } from '../cluster-cpu'
import { startCountingProxy } from '../counting-proxy'
import {
  formatRate,
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

const SHARD_COUNT = 32
const WORKERS = 2
const PAGE = 50
const BATCH = 100
/** The same on both servers; the Citus tool sets these itself (and wal_level = logical, which the single node cannot). */
const SERVER_SETTINGS = { synchronous_commit: 'off', full_page_writes: 'off', shared_buffers: '64MB' }
// Round trips and 2PCs are counted over this many sequential operations per side, spaced this far apart.
const PROBE_OPS = 20
const PROBE_GAP_MS = 3

const OPERATIONS = ['findById', 'findMany', 'search', 'create', 'createMany', 'update', 'softDelete'] as const
type Operation = (typeof OPERATIONS)[number]

interface Sizes {
  organizations: number
  contactsPerOrganization: number
  /** operations per run (one bench case run), per operation */
  ops: Record<Operation, number>
}

const SIZES: { default: Sizes; quick: Sizes } = {
  default: {
    organizations: 10,
    contactsPerOrganization: 2_000,
    ops: { findById: 250, findMany: 150, search: 80, create: 120, createMany: 10, update: 120, softDelete: 100 },
  },
  quick: {
    organizations: 3,
    contactsPerOrganization: 300,
    ops: { findById: 30, findMany: 20, search: 10, create: 15, createMany: 2, update: 15, softDelete: 12 },
  },
}

const SINGLE = 'single node'
const CITUS = 'citus'
const SIDES = [SINGLE, CITUS] as const
type SideName = (typeof SIDES)[number]

interface SeededOrganization {
  id: string
  productionId: string
  contacts: BenchContact[]
}

/** One server under test, with the library open on it as the runtime login. */
interface Side {
  name: SideName
  ownerUrl: string
  runtimeUrl: string
  /** superuser URLs of every node (for the CPU reader) */
  nodeUrls: string[]
  cpu: ServersCpu | undefined
  driver: Driver
}

/** `npx tsx bench/run.ts citus` */
export const citus: BenchSuite = {
  name: 'citus',
  usesRows: false,
  title:
    `Tenant operations through the library on Citus (coordinator + ${WORKERS} workers, ${SHARD_COUNT} shards, ` +
    '`distribute()`d) ÷ a single PostgreSQL 15 node, same data, same calls, concurrency 1',
  async run(context) {
    const available = await citusAvailable()
    if (!available.ok) throw new Error(`the citus suite needs Citus: ${available.reason}`)
    const log = (line: string): void => context.log(`  ${line}`)
    let cluster: CitusClusterHandle | undefined
    let single: LocalClusterHandle | undefined
    try {
      const settings = { ...SERVER_SETTINGS, 'citus.shard_count': SHARD_COUNT, 'citus.recover_2pc_interval': -1 }
      ;[cluster, single] = await Promise.all([
        startCitusCluster({ log, workers: WORKERS, settings }),
        startLocalCluster({ log, primarySettings: { ...SERVER_SETTINGS, fsync: 'off' } }),
      ])
      // The replica would replay every write on the same cores: a single node has none.
      await single.stopReplica()
      return await runSuite(context, cluster, single)
    } finally {
      await Promise.allSettled([cluster?.stop(), single?.stop()])
    }
  },
}

async function runSuite(
  context: SuiteContext,
  cluster: CitusClusterHandle,
  single: LocalClusterHandle,
): Promise<SuiteReport> {
  const sizes = context.quick ? SIZES.quick : SIZES.default
  const citusDb = await cluster.createDatabase('cs_bench_citus')
  const singleDb = await createScratchDatabase(single.adminUrl, 'cs_bench_single')
  try {
    context.log('migrating both, then distribute() on the coordinator')
    await Promise.all([migrate(citusDb.url), migrate(singleDb.url)])
    await distribute(citusDb.url)
    const organizations = fixture(sizes)
    context.log(
      `seeding ${sizes.organizations} organizations × ${sizes.contactsPerOrganization.toLocaleString('en-US')} ` +
        'contacts on both',
    )
    await seed(singleDb.url, organizations)
    await seed(citusDb.url, organizations)
    const sides: Side[] = []
    for (const [name, ownerUrl, nodeUrls] of [
      [SINGLE, singleDb.url, [singleDb.url]],
      [CITUS, citusDb.url, [citusDb.url, ...citusDb.workerUrls]],
    ] as const) {
      const runtimeUrl = await runtimeLoginUrl(ownerUrl)
      sides.push({
        name,
        ownerUrl,
        runtimeUrl,
        nodeUrls: [...nodeUrls],
        cpu: await ServersCpu.open(nodeUrls),
        driver: new Driver(organizations),
      })
    }
    return await measure(context, sizes, sides, { citus: cluster.description, single: single.description })
  } finally {
    await Promise.allSettled([citusDb.drop(), singleDb.drop()])
  }
}

// ---------------------------------------------------------------------------------------------
// Fixture and the operations

function fixture(sizes: Sizes): SeededOrganization[] {
  return Array.from({ length: sizes.organizations }, (_, o) => {
    const id = uuidv7()
    const productionId = uuidv7()
    return {
      id,
      productionId,
      contacts: generateContacts(sizes.contactsPerOrganization, { organizationId: id, productionId, seed: o + 1 }),
    }
  })
}

/** The same rows on both servers, as the owner (RLS bypassed), one statement per call (Citus needs that). */
async function seed(url: string, organizations: readonly SeededOrganization[]): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    for (const [o, org] of organizations.entries()) {
      const rows = org.contacts
      await sql.begin(async (tx) => {
        await tx`insert into organizations (id, name, slug) values (${org.id}, ${`Citus ${o + 1}`}, ${`bench-citus-${o + 1}`})`
        await tx`
          insert into productions (id, organization_id, title, code, status)
          values (${org.productionId}, ${org.id}, ${`Feature ${o + 1}`}, ${`CITUS-${o + 1}`}, 'production')`
        // created_at one second apart, in fixture order: the findMany page is the first 50 of the fixture.
        await insertSeedContacts(tx, rows)
      })
    }
    await sql`analyze organizations`
    await sql`analyze productions`
    await sql`analyze contacts`
  } finally {
    await sql.end({ timeout: 5 })
  }
}

type Db = ReturnType<typeof createDatabase>

/**
 * Picks each operation's target deterministically, so both sides do the same operations in the same order:
 * reads hit the first 40 % of each tenant's contacts, updates the next 20 %, soft deletes walk the last
 * 40 % (never the findMany page), creates use fresh e-mail addresses (live e-mails are unique per production).
 */
class Driver {
  private readonly random = seededRandom(7)
  private readonly counters: Record<Operation, number> = {
    findById: 0,
    findMany: 0,
    search: 0,
    create: 0,
    createMany: 0,
    update: 0,
    softDelete: 0,
  }
  private readonly picks: number[] = []

  constructor(private readonly organizations: readonly SeededOrganization[]) {
    for (let i = 0; i < 100_000; i++) this.picks.push(this.random())
  }

  private pick(operation: Operation, salt: number): number {
    return this.picks[(this.counters[operation] * 7 + salt) % this.picks.length] as number
  }

  /** Runs the next `operation`; returns whether it answered as expected. */
  async next(db: Db, operation: Operation): Promise<boolean> {
    const n = this.counters[operation]
    const org = this.organizations[
      Math.floor(this.pick(operation, 0) * this.organizations.length)
    ] as SeededOrganization
    const size = org.contacts.length
    const inRange = (from: number, to: number): BenchContact =>
      org.contacts[Math.floor(size * from + this.pick(operation, 1) * size * (to - from))] as BenchContact
    this.counters[operation]++
    const contacts = db.tenant(org.id).contacts
    switch (operation) {
      case 'findById': {
        const target = inRange(0, 0.4)
        return (await contacts.findById(target.id))?.id === target.id
      }
      case 'findMany':
        return (
          (await contacts.findMany({ where: { productionId: org.productionId }, limit: PAGE })).rows.length === PAGE
        )
      case 'search':
        return (await contacts.search(inRange(0, 0.4).name, { limit: 20 })).length > 0
      case 'create':
        return (
          (await contacts.create({ productionId: org.productionId, name: `Created ${n}`, email: `c${n}@bench.test` }))
            .organizationId === org.id
        )
      case 'createMany': {
        const inputs = Array.from({ length: BATCH }, (_, i) => ({
          productionId: org.productionId,
          name: `Batch ${n} ${i}`,
          email: `b${n}-${i}@bench.test`,
          role: 'Grip',
        }))
        return (await contacts.createMany(inputs, { returning: 'count' })) === BATCH
      }
      case 'update': {
        const target = inRange(0.4, 0.6)
        return (await contacts.update(target.id, { role: `Role ${n}` })).role === `Role ${n}`
      }
      case 'softDelete': {
        // Walks the last 40 % of the organization's contacts in order: each is deleted once.
        const perOrg = Math.floor(size * 0.4)
        const k = Math.floor(n / this.organizations.length)
        const target = this.organizations[n % this.organizations.length] as SeededOrganization
        const victim = target.contacts[size - perOrg + k]
        if (victim === undefined) throw new Error('softDelete ran out of targets: raise the fixture size')
        return (await db.tenant(target.id).contacts.softDelete(victim.id)).deletedAt !== null
      }
    }
  }
}

function openDb(url: string, applicationName: string): Db {
  return createDatabase({
    primary: { url, connection: { application_name: applicationName } },
    pool: { max: 2, idleTimeoutSeconds: 0 },
  })
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Metrics {
  latencies: number[]
  nodeCpuMicros: number
  serverMicros: number
  measuredOps: number
}

interface Probe {
  /** client → server packets while the operation was pending (round trips it waited for), per op */
  waits: number
  /** packets sent after the answer (e.g. a read-only unit's COMMIT), per op */
  after: number
  /** Citus: rows added to pg_dist_transaction (one per worker in a two-phase commit), per op */
  twoPhase: number
  /** the operation failed on this side: its error (then it is not benchmarked on either side) */
  error?: string
}

async function measure(
  context: SuiteContext,
  sizes: Sizes,
  sides: Side[],
  descriptions: { citus: string; single: string },
): Promise<SuiteReport> {
  context.log('counting round trips (TCP proxy) and two-phase commits per operation')
  const probes = new Map<string, Probe>()
  for (const side of sides) {
    for (const [key, probe] of await probeSide(side)) probes.set(`${side.name}/${key}`, probe)
  }

  const dbs = new Map(sides.map((side) => [side.name, openDb(side.runtimeUrl, `bench-citus-${side.name}`)]))
  const metrics = new Map<string, Metrics>()
  const results: (BenchResult | undefined)[] = []
  try {
    for (const operation of OPERATIONS) {
      const ops = sizes.ops[operation]
      const failed = sides.find((side) => probes.get(`${side.name}/${operation}`)?.error !== undefined)
      if (failed !== undefined) {
        context.log(
          `not benched: ${operation} fails on ${failed.name}: ${probes.get(`${failed.name}/${operation}`)?.error}`,
        )
        results.push(undefined)
        continue
      }
      const cases = sides.map((side): BenchCase => {
        const db = dbs.get(side.name) as Db
        const m: Metrics = { latencies: [], nodeCpuMicros: 0, serverMicros: 0, measuredOps: 0 }
        metrics.set(`${side.name}/${operation}`, m)
        let runs = 0
        let failures = 0
        let serverBefore = 0
        let latencies: number[] = []
        let nodeCpu = 0
        return {
          name: side.name,
          ops,
          setup: async () => {
            failures = 0
            serverBefore = side.cpu?.micros() ?? Number.NaN
          },
          run: async () => {
            latencies = []
            const before = process.cpuUsage()
            for (let i = 0; i < ops; i++) {
              const t0 = performance.now()
              if (!(await side.driver.next(db, operation))) failures++
              latencies.push(performance.now() - t0)
            }
            const cpu = process.cpuUsage(before)
            nodeCpu = cpu.user + cpu.system
          },
          teardown: async () => {
            if (failures > 0) throw new Error(`${side.name} ${operation}: ${failures} of ${ops} answered wrongly`)
            const serverAfter = side.cpu?.micros() ?? Number.NaN
            if (runs++ >= context.warmupRounds) {
              m.latencies.push(...latencies)
              m.nodeCpuMicros += nodeCpu
              m.serverMicros += serverAfter - serverBefore
              m.measuredOps += ops
            }
          },
        }
      })
      const title = `${operation}${operation === 'createMany' ? ` (${BATCH} rows)` : ''}: ${ops} operations per run`
      context.log(`bench: ${title}`)
      results.push(
        await runBench(title, cases, {
          rounds: context.rounds,
          warmupRounds: context.warmupRounds,
          baselines: [SINGLE],
          opsUnit: 'ops',
          log: context.log,
        }),
      )
    }
  } finally {
    await Promise.all([...dbs.values()].map((db) => db.close()))
  }
  return {
    results: results.filter((r): r is BenchResult => r !== undefined),
    tables: tables(sizes, results, metrics, probes, descriptions),
  }
}

/** Round trips and two-phase commits per operation, through a counting proxy with a pool of one connection. */
async function probeSide(side: Side): Promise<Map<Operation, Probe>> {
  const target = new URL(side.ownerUrl)
  const proxy = await startCountingProxy(target.hostname, Number(target.port))
  const db = openDb(proxy.proxied(side.runtimeUrl), `bench-citus-probe-${side.name}`)
  const owner = postgres(side.ownerUrl, { max: 1, onnotice: () => {} })
  const twoPhaseRows = async (): Promise<number> => {
    if (side.name !== CITUS) return 0
    const [row] = await owner<{ n: number }[]>`select count(*)::int as n from pg_dist_transaction`
    return row?.n ?? 0
  }
  const out = new Map<Operation, Probe>()
  try {
    for (const operation of OPERATIONS) {
      // Untimed first: connection, prepared statements. An operation the server refuses is reported, not benched.
      try {
        for (let i = 0; i < 3; i++) await side.driver.next(db, operation)
      } catch (error) {
        const code = (error as { code?: unknown }).code
        const message = error instanceof Error ? error.message : String(error)
        out.set(operation, { waits: NaN, after: NaN, twoPhase: NaN, error: `${String(code ?? '')}: ${message}` })
        continue
      }
      await sleep(PROBE_GAP_MS)
      let waits = 0
      let after = 0
      const twoPhaseBefore = await twoPhaseRows()
      for (let i = 0; i < PROBE_OPS; i++) {
        const before = proxy.counts.toServer
        if (!(await side.driver.next(db, operation))) throw new Error(`${side.name} ${operation} answered wrongly`)
        const answered = proxy.counts.toServer
        await sleep(PROBE_GAP_MS)
        waits += answered - before
        after += proxy.counts.toServer - answered
      }
      const twoPhase = (await twoPhaseRows()) - twoPhaseBefore
      out.set(operation, { waits: waits / PROBE_OPS, after: after / PROBE_OPS, twoPhase: twoPhase / PROBE_OPS })
    }
  } finally {
    await db.close()
    await owner.end({ timeout: 5 })
    await proxy.close()
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// The report

function tables(
  sizes: Sizes,
  results: readonly (BenchResult | undefined)[],
  metrics: Map<string, Metrics>,
  probes: Map<string, Probe>,
  descriptions: { citus: string; single: string },
): NumbersTable[] {
  const us = (micros: number): string => (Number.isFinite(micros) ? Math.round(micros).toLocaleString('en-US') : 'n/a')
  const count = (n: number | undefined): string =>
    n === undefined || !Number.isFinite(n) ? 'n/a' : Number.isInteger(n) ? String(n) : n.toFixed(2)
  const m = (side: SideName, operation: Operation): Metrics => metrics.get(`${side}/${operation}`) as Metrics
  const latency = (side: SideName, operation: Operation, q: number): number =>
    quantile(Float64Array.from(m(side, operation).latencies).sort(), q) * 1000
  const perOp = (side: SideName, operation: Operation, field: 'nodeCpuMicros' | 'serverMicros'): number =>
    m(side, operation)[field] / m(side, operation).measuredOps
  const failures: string[][] = []
  const rows = OPERATIONS.flatMap((operation, i) => {
    const result = results[i]
    if (result === undefined) {
      for (const side of SIDES) {
        const error = probes.get(`${side}/${operation}`)?.error
        if (error !== undefined) failures.push([operation, side, error])
      }
      return []
    }
    const rate = (side: SideName): number => result.cases.find((c) => c.name === side)?.opsPerSecond?.median ?? NaN
    const ratio = result.cases.find((c) => c.name === CITUS)?.ratios[0]
    const probe = (side: SideName): Probe | undefined => probes.get(`${side}/${operation}`)
    return [
      [
        operation === 'createMany' ? `createMany (${BATCH} rows)` : operation,
        `${formatRate(rate(SINGLE))} / ${formatRate(rate(CITUS))}`,
        ratio === undefined
          ? 'n/a'
          : `${formatRatio(ratio.ofMedians)} (${formatRatio(ratio.paired.min)}–${formatRatio(ratio.paired.max)})`,
        `${us(latency(SINGLE, operation, 0.5))} / ${us(latency(CITUS, operation, 0.5))}`,
        `${us(latency(SINGLE, operation, 0.95))} / ${us(latency(CITUS, operation, 0.95))}`,
        `${us(perOp(SINGLE, operation, 'nodeCpuMicros'))} / ${us(perOp(CITUS, operation, 'nodeCpuMicros'))}`,
        `${us(perOp(SINGLE, operation, 'serverMicros'))} / ${us(perOp(CITUS, operation, 'serverMicros'))}`,
        `${count(probe(SINGLE)?.waits)} + ${count(probe(SINGLE)?.after)} / ${count(probe(CITUS)?.waits)} + ${count(probe(CITUS)?.after)}`,
        count(probe(CITUS)?.twoPhase),
      ],
    ]
  })
  return [
    {
      title:
        `Per operation, concurrency 1: single node / Citus (latencies pooled over the measured rounds; CPU ÷ ` +
        `operations; round trips: client→server reads at a counting proxy over ${PROBE_OPS} operations, waited ` +
        `for + sent after the answer)`,
      header: [
        'operation',
        'ops/s single / citus',
        'time citus ÷ single (per round min–max)',
        'median latency µs',
        'p95 latency µs',
        'Node CPU µs/op',
        'server CPU µs/op (citus: coordinator + workers)',
        'round trips per op',
        'citus 2PC worker transactions per op',
      ],
      rows,
    },
    ...(failures.length === 0
      ? []
      : [
          {
            title: 'Operations not benched: they fail on one side',
            header: ['operation', 'side', 'error'],
            rows: failures,
          },
        ]),
    {
      title: 'The two servers',
      header: ['side', 'what', 'detail'],
      rows: [
        [
          SINGLE,
          descriptions.single,
          'streaming replica stopped before the run; fsync, synchronous_commit, full_page_writes off; shared_buffers 64MB',
        ],
        [
          CITUS,
          descriptions.citus,
          `citus.shard_count ${SHARD_COUNT}, citus.recover_2pc_interval -1; same durability settings; wal_level logical`,
        ],
        [
          'data',
          `${sizes.organizations} organizations × ${sizes.contactsPerOrganization.toLocaleString('en-US')} contacts`,
          'identical rows on both (same ids), analyzed',
        ],
      ],
    },
  ]
}
