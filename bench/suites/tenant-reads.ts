// Over 350 lines because a suite is one experiment: fixture, every contender, the check that all return the same rows,
// the probes and the tables, kept together so what is measured reads in one place.
/**
 * Tenant reads on the real server (issue 3, item 6): the library's `contacts.findById` and a 50-row
 * `contacts.findMany` — each one tenant unit of work (BEGIN READ ONLY + transaction-local settings +
 * the query, then COMMIT; as the app role under RLS) — against raw drizzle and raw postgres.js with no
 * transaction and no tenant context (as the owner, a superuser: RLS bypassed), at concurrency 1 and 16.
 *
 * Next to the timings it records, per case, how many times an operation waits for the server and how
 * many messages it sends after its answer (counted by a TCP proxy), the Node CPU and the server-backend
 * CPU per operation, the Node CPU of getting a tenant's repository, and the server's plans with and without
 * RLS — so that a missed target comes with its cause. The suite reports numbers only; BENCHMARKS.md has
 * the analysis.
 */
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { and, asc, eq, getTableColumns, isNull, sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import { uuidv7 } from 'uuidv7'
import { asRuntimeLogin } from '../../tools/postgres-server'
import { createDatabase } from '../../src/client/create-database'
import { APP_ROLE } from '../../src/schema/columns'
import { contacts } from '../../src/schema/contacts'
import * as schema from '../../src/schema/drizzle-schema'
import { generateContacts, insertSeedContacts } from '../fixtures/contacts'
import {
  benchSettings,
  formatRate,
  formatRatio,
  runBench,
  type BenchCase,
  type BenchResult,
  type BenchSuite,
  type NumbersTable,
  type SuiteContext,
  type SuiteReport,
  formatPercent,
  median,
  quantile,
} from '../harness'
import { BackendCpu } from '../server-cpu'
import { startCountingProxy } from '../counting-proxy'
import { seededRandom } from '../../src/testing/fixtures'

/** Connections per pool: every case gets its own pool of this size. */
const POOL_MAX = 16
/** Workers of the concurrent benches (one operation in flight each). */
const CONCURRENCY = 16
/** Rows per findMany page. */
const PAGE = 50

interface Sizes {
  organizations: number
  contactsPerOrganization: number
  /** operations per run at concurrency 1 */
  sequentialOps: number
  /** operations per worker per run at concurrency 16 */
  opsPerWorker: number
}

const SIZES: { default: Sizes; quick: Sizes } = {
  default: { organizations: 20, contactsPerOrganization: 2_000, sequentialOps: 1_500, opsPerWorker: 150 },
  quick: { organizations: 4, contactsPerOrganization: 200, sequentialOps: 100, opsPerWorker: 10 },
}

// Flights are counted over this many sequential operations, after as many untimed ones, spaced this far apart.
const PROBE_OPS = 100
const PROBE_GAP_MS = 3
// EXPLAIN ANALYZE repetitions per plan (the median execution time is reported).
const EXPLAIN_REPEATS = 25
// `db.tenant(orgId)` is timed alone over this many calls, this many times (the median is reported).
const TENANT_CLIENT_CALLS = 20_000
const TENANT_CLIENT_REPEATS = 5
// Rounds of the page-shape probe (after one untimed round).
const PAGE_SHAPE_ROUNDS = 5

const BASELINE = 'drizzle'
const RAW = 'postgres.js'
const OURS = 'ours'

const TARGETS = { throughputAt16: 0.8, latencyAt1: 1.3 }

type Sql = postgres.Sql
type Operation = 'findById' | 'findMany'
const OPERATIONS: readonly Operation[] = ['findById', 'findMany']

/** What a contender answers; rows only need their id for the checks. */
interface Reader {
  findById(organizationId: string, id: string): Promise<{ id: string } | undefined>
  findMany(organizationId: string, productionId: string): Promise<readonly { id: string }[]>
  close(): Promise<void>
}

interface Contender {
  name: string
  /** opens a reader with its own pool of `max` connections, tagged with `applicationName` */
  open(url: string, max: number, applicationName: string): Reader
}

/** An organization `seed` made: one production, its contacts' ids in fixture order. */
export interface SeededOrganization {
  id: string
  productionId: string
  contactIds: string[]
}

/** `npm run bench -- tenant-reads` */
export const tenantReads: BenchSuite = {
  name: 'tenant-reads',
  usesRows: false,
  title:
    `Tenant reads: \`contacts.findById\` and a ${PAGE}-row \`contacts.findMany\` through the library (tenant unit of ` +
    'work, app role, RLS) vs raw drizzle and raw postgres.js without tenant context (owner), at concurrency 1 and 16',
  async run(context) {
    const admin = postgres(context.url, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: 'callsheet-bench-admin' },
    })
    try {
      return await runSuite(admin, context)
    } finally {
      await admin.end({ timeout: 5 })
    }
  },
}

async function runSuite(admin: Sql, context: SuiteContext): Promise<SuiteReport> {
  const sizes = context.quick ? SIZES.quick : SIZES.default
  const [role] = await admin<{ name: string; bypass: boolean }[]>`
    select current_user as name, rolsuper or rolbypassrls as bypass from pg_roles where rolname = current_user`
  if (role?.bypass !== true) {
    throw new Error(
      `tenant-reads seeds and runs the raw baselines as the owner with RLS bypassed; ${role?.name ?? 'this role'} is ` +
        'neither a superuser nor BYPASSRLS',
    )
  }

  context.log(
    `seeding ${sizes.organizations} organizations × ${sizes.contactsPerOrganization.toLocaleString('en-US')} contacts`,
  )
  const organizations = await seed(admin, sizes.organizations, sizes.contactsPerOrganization)
  try {
    return await measure(admin, context, sizes, organizations)
  } finally {
    await unseed(admin, organizations)
  }
}

async function measure(
  admin: Sql,
  context: SuiteContext,
  sizes: Sizes,
  organizations: readonly SeededOrganization[],
): Promise<SuiteReport> {
  const totalOps = { sequential: sizes.sequentialOps, concurrent: CONCURRENCY * sizes.opsPerWorker }
  const workload = makeWorkload(organizations, Math.max(totalOps.sequential, totalOps.concurrent))

  const contenders = [ours, rawDrizzle, rawPostgres]
  const caseNames = contenders.map((c) => c.name)

  await checkAgreement(context.url, contenders, organizations)
  context.log('all contenders return the same rows')

  context.log('counting client→server flights per operation through a TCP proxy')
  const flights = await countFlights(context.url, contenders, workload)
  context.log('EXPLAIN ANALYZE as the owner and as the app role under RLS')
  const plans = await explainPlans(admin, organizations)
  const tenantClientMicros = await measureTenantClient(context.url, organizations)
  context.log("Node CPU of findMany's page shape through raw drizzle")
  const pageShape = await measurePageShape(context.url, workload, context.quick ? 100 : 1_000)

  const serverCpu = context.server.source === 'local-binaries' ? new BackendCpu(admin) : undefined
  const readers = new Map<string, Reader>()
  const results: BenchResult[] = []
  const metrics = new Map<string, CaseMetrics>()
  try {
    for (const contender of contenders) {
      readers.set(contender.name, contender.open(context.url, POOL_MAX, appName(contender.name)))
    }
    // Open every connection of every pool and prepare its statements before anything is timed.
    for (const [name, reader] of readers) {
      for (const operation of OPERATIONS) {
        await Promise.all(
          Array.from({ length: CONCURRENCY }, (_, w) =>
            runOps(reader, operation, workload, w * 8, 8, new Float64Array(8), 0),
          ),
        )
      }
      context.log(`warmed ${name}`)
    }

    for (const operation of OPERATIONS) {
      for (const concurrency of [1, CONCURRENCY]) {
        const ops = concurrency === 1 ? totalOps.sequential : totalOps.concurrent
        const cases = contenders.map((contender): BenchCase => {
          const reader = readers.get(contender.name) as Reader
          const m = newMetrics()
          metrics.set(metricsKey(operation, concurrency, contender.name), m)
          let runs = 0
          let failures = 0
          let serverBefore: number | undefined
          return {
            name: contender.name,
            ops,
            setup: async () => {
              failures = 0
              serverBefore = await serverCpu?.ticks(appName(contender.name))
            },
            run: async () => {
              const latencies = new Float64Array(ops)
              const cpuBefore = process.cpuUsage()
              const perWorker = ops / concurrency
              const counts = await Promise.all(
                Array.from({ length: concurrency }, (_, w) =>
                  runOps(reader, operation, workload, w * perWorker, perWorker, latencies, w * perWorker),
                ),
              )
              const cpu = process.cpuUsage(cpuBefore)
              failures = counts.reduce((a, b) => a + b, 0)
              if (runs >= context.warmupRounds) {
                m.latencies.push(latencies)
                m.clientCpuMicros += cpu.user + cpu.system
              }
            },
            teardown: async () => {
              if (failures > 0) {
                throw new Error(`${contender.name} ${operation}: ${failures} of ${ops} operations returned wrong rows`)
              }
              const serverAfter = await serverCpu?.ticks(appName(contender.name))
              if (runs >= context.warmupRounds) {
                m.measuredOps += ops
                if (serverBefore === undefined || serverAfter === undefined) m.serverTicks = Number.NaN
                else m.serverTicks += serverAfter - serverBefore
              }
              runs++
            },
          }
        })
        const title =
          operation === 'findById'
            ? `findById, concurrency ${concurrency}: ${ops.toLocaleString('en-US')} lookups by random id per run`
            : `findMany (${PAGE} rows), concurrency ${concurrency}: ${ops.toLocaleString('en-US')} pages per run`
        context.log(`bench: ${title}`)
        results.push(
          await runBench(title, cases, {
            rounds: context.rounds,
            warmupRounds: context.warmupRounds,
            baselines: [BASELINE, RAW],
            opsUnit: 'ops',
            log: context.log,
          }),
        )
      }
    }
  } finally {
    await Promise.all([...readers.values()].map((r) => r.close()))
  }

  const tables = buildTables({
    context,
    sizes,
    caseNames,
    results,
    metrics,
    flights,
    plans,
    tenantClientMicros,
    pageShape,
    serverCpuAvailable: serverCpu !== undefined,
  })
  return { results, tables }
}

// ---------------------------------------------------------------------------------------------
// Seed and workload

/** Seeds organizations of one production and `perOrganization` contacts each, as the owner (shared with peers.ts). */
export async function seed(
  sql: Sql,
  organizationCount: number,
  perOrganization: number,
): Promise<SeededOrganization[]> {
  const organizations: SeededOrganization[] = []
  await sql.begin(async (tx) => {
    for (let o = 0; o < organizationCount; o++) {
      const id = uuidv7()
      const productionId = uuidv7()
      await tx`insert into organizations (id, name, slug) values (${id}, ${`Reads ${o + 1}`}, ${`bench-reads-${o + 1}`})`
      await tx`
        insert into productions (id, organization_id, title, code, status)
        values (${productionId}, ${id}, ${`Feature ${o + 1}`}, ${`READS-${o + 1}`}, 'production')`
      const rows = generateContacts(perOrganization, { organizationId: id, productionId, seed: o + 1 })
      // created_at spread one second apart, so the findMany order is a real order, not a tie on created_at.
      await insertSeedContacts(tx, rows)
      organizations.push({ id, productionId, contactIds: rows.map((c) => c.id) })
    }
  })
  await sql`analyze organizations, productions, contacts`
  return organizations
}

/** Removes what {@link seed} made: the scratch database is left as the suite found it, for the suites after it. */
export async function unseed(sql: Sql, organizations: readonly SeededOrganization[]): Promise<void> {
  const ids = organizations.map((o) => o.id)
  await sql.begin(async (tx) => {
    await tx`delete from contacts where organization_id = any(${ids}::uuid[])`
    await tx`delete from productions where organization_id = any(${ids}::uuid[])`
    await tx`delete from organizations where id = any(${ids}::uuid[])`
  })
}

export interface Workload {
  /** per operation index: the organization, and for findById the contact id */
  byId: { organizationId: string; id: string }[]
  many: { organizationId: string; productionId: string }[]
}

/** A fixed pseudo-random sequence of operations: every case and every run does the same ones. */
export function makeWorkload(organizations: readonly SeededOrganization[], length: number): Workload {
  const random = seededRandom(42)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const byId: Workload['byId'] = []
  const many: Workload['many'] = []
  for (let i = 0; i < length; i++) {
    const forId = pick(organizations)
    byId.push({ organizationId: forId.id, id: pick(forId.contactIds) })
    const forPage = pick(organizations)
    many.push({ organizationId: forPage.id, productionId: forPage.productionId })
  }
  return { byId, many }
}

/**
 * Runs `count` operations one after another from index `start` of the workload, recording each one's
 * latency at `latencies[offset + i]`. Returns how many answered wrongly (a missing row or a short page).
 */
async function runOps(
  reader: Reader,
  operation: Operation,
  workload: Workload,
  start: number,
  count: number,
  latencies: Float64Array,
  offset: number,
): Promise<number> {
  let failures = 0
  for (let i = 0; i < count; i++) {
    const k = (start + i) % workload.byId.length
    const t0 = performance.now()
    if (operation === 'findById') {
      const op = workload.byId[k] as Workload['byId'][number]
      const row = await reader.findById(op.organizationId, op.id)
      latencies[offset + i] = performance.now() - t0
      if (row?.id !== op.id) failures++
    } else {
      const op = workload.many[k] as Workload['many'][number]
      const rows = await reader.findMany(op.organizationId, op.productionId)
      latencies[offset + i] = performance.now() - t0
      if (rows.length !== PAGE) failures++
    }
  }
  return failures
}

// ---------------------------------------------------------------------------------------------
// Contenders

const ours: Contender = {
  name: OURS,
  open(url, max, applicationName) {
    // Idle connections are kept (as postgres.js's own default does) so no pool shrinks between rounds.
    // As production connects: the runtime login (bench/run.ts created it); the raw baselines stay the owner.
    const db = createDatabase({
      primary: { url: asRuntimeLogin(url), connection: { application_name: applicationName } },
      pool: { max, idleTimeoutSeconds: 0 },
    })
    return {
      findById: (organizationId, id) => db.tenant(organizationId).contacts.findById(id),
      findMany: async (organizationId, productionId) =>
        (await db.tenant(organizationId).contacts.findMany({ where: { productionId }, limit: PAGE })).rows,
      close: () => db.close(),
    }
  },
}

// The same conditions and order the library's queries carry (tenant, live rows; createdAt then id), so
// the three return identical rows; only the library's transaction, settings and RLS are missing.
const rawDrizzle: Contender = {
  name: BASELINE,
  open(url, max, applicationName) {
    const client = postgres(url, { max, onnotice: () => {}, connection: { application_name: applicationName } })
    const db = drizzle(client, { schema })
    return {
      findById: async (organizationId, id) =>
        (
          await db
            .select()
            .from(contacts)
            .where(and(eq(contacts.organizationId, organizationId), eq(contacts.id, id), isNull(contacts.deletedAt)))
            .limit(1)
        )[0],
      findMany: (organizationId, productionId) =>
        db
          .select()
          .from(contacts)
          .where(
            and(
              eq(contacts.organizationId, organizationId),
              eq(contacts.productionId, productionId),
              isNull(contacts.deletedAt),
            ),
          )
          .orderBy(asc(contacts.createdAt), asc(contacts.id))
          .limit(PAGE),
      close: () => client.end({ timeout: 5 }),
    }
  },
}

const rawPostgres: Contender = {
  name: RAW,
  open(url, max, applicationName) {
    const sql = postgres(url, { max, onnotice: () => {}, connection: { application_name: applicationName } })
    return {
      findById: async (organizationId, id) =>
        (
          await sql<{ id: string }[]>`
            select * from contacts
            where organization_id = ${organizationId} and id = ${id} and deleted_at is null limit 1`
        )[0],
      findMany: (organizationId, productionId) =>
        sql<{ id: string }[]>`
          select * from contacts
          where organization_id = ${organizationId} and production_id = ${productionId} and deleted_at is null
          order by created_at, id limit ${PAGE}`,
      close: () => sql.end({ timeout: 5 }),
    }
  },
}

function appName(caseName: string): string {
  return `bench-reads-${caseName.replace(/[^a-z0-9.]+/gi, '-').replace(/-+$/, '')}`.slice(0, 63)
}

// ---------------------------------------------------------------------------------------------
// Checks and probes (untimed)

/** Every contender must return the same row for a lookup and the same ordered page. */
async function checkAgreement(
  url: string,
  contenders: readonly Contender[],
  organizations: readonly SeededOrganization[],
): Promise<void> {
  const probes = organizations.slice(0, 3)
  const answers = new Map<string, string>()
  for (const contender of contenders) {
    const reader = contender.open(url, 2, appName(`check-${contender.name}`))
    try {
      const parts: string[] = []
      for (const org of probes) {
        const id = org.contactIds[Math.floor(org.contactIds.length / 2)] as string
        parts.push(String((await reader.findById(org.id, id))?.id))
        // Another tenant's id must not be found through this tenant.
        const foreign = (organizations.find((o) => o.id !== org.id) as SeededOrganization).contactIds[0] as string
        parts.push(String((await reader.findById(org.id, foreign))?.id))
        parts.push((await reader.findMany(org.id, org.productionId)).map((r) => r.id).join(','))
      }
      answers.set(contender.name, parts.join('|'))
    } finally {
      await reader.close()
    }
  }
  const expected = answers.get(RAW)
  for (const [name, answer] of answers) {
    if (answer !== expected) throw new Error(`${name} returned different rows than ${RAW}`)
  }
}

/**
 * Client→server TCP reads at the proxy, per operation: `waits` arrive between the call and its answer (each
 * is a round trip the caller waits for); `after` arrive once the answer is in (a read-only unit's COMMIT).
 */
interface Flights {
  waits: number
  after: number
}

/**
 * Runs {@link PROBE_OPS} sequential operations of each contender through a counting TCP proxy (pool of
 * one connection), after as many untimed ones. The proxy runs in this process: a packet the client writes
 * while an operation is pending is read by the proxy before the answer can come back, and a packet written
 * after the answer (postgres.js writes on setImmediate) is read after the caller has resumed. Operations are
 * spaced {@link PROBE_GAP_MS} apart, so that what one sends after its answer is counted before the next starts.
 */
async function countFlights(
  url: string,
  contenders: readonly Contender[],
  workload: Workload,
): Promise<Map<string, Flights>> {
  const target = new URL(url)
  const proxy = await startCountingProxy(target.hostname, Number(target.port || 5432))
  const proxied = new URL(url)
  proxied.hostname = '127.0.0.1'
  proxied.port = String(proxy.port)
  const out = new Map<string, Flights>()
  const one = new Float64Array(1)
  try {
    for (const contender of contenders) {
      const reader = contender.open(proxied.toString(), 1, appName(`probe-${contender.name}`))
      try {
        for (const operation of OPERATIONS) {
          await runOps(reader, operation, workload, 0, PROBE_OPS, new Float64Array(PROBE_OPS), 0)
          await sleep(PROBE_GAP_MS)
          let waits = 0
          let after = 0
          for (let i = 0; i < PROBE_OPS; i++) {
            const before = proxy.counts.toServer
            if ((await runOps(reader, operation, workload, i, 1, one, 0)) > 0) {
              throw new Error(`${contender.name} ${operation} answered wrongly through the proxy`)
            }
            const answered = proxy.counts.toServer
            await sleep(PROBE_GAP_MS)
            waits += answered - before
            after += proxy.counts.toServer - answered
          }
          out.set(`${contender.name}/${operation}`, { waits: waits / PROBE_OPS, after: after / PROBE_OPS })
        }
      } finally {
        await reader.close()
      }
    }
  } finally {
    await proxy.close()
  }
  return out
}

/** Node CPU (µs) of one `db.tenant(orgId).contacts`: what every operation of ours pays before its unit of work. */
async function measureTenantClient(url: string, organizations: readonly SeededOrganization[]): Promise<number> {
  // postgres.js connects lazily: building tenant clients opens no connection.
  const db = createDatabase({ primary: asRuntimeLogin(url) })
  try {
    const ids = organizations.map((o) => o.id)
    const perCall: number[] = []
    let sink = 0
    for (let r = 0; r <= TENANT_CLIENT_REPEATS; r++) {
      const before = process.cpuUsage()
      for (let i = 0; i < TENANT_CLIENT_CALLS; i++) {
        if (db.tenant(ids[i % ids.length] as string).contacts !== undefined) sink++
      }
      const cpu = process.cpuUsage(before)
      if (r > 0) perCall.push((cpu.user + cpu.system) / TENANT_CLIENT_CALLS) // the first pass warms the JIT
    }
    if (sink === 0) throw new Error('unreachable: keeps the loop from being optimised away')
    return median(perCall)
  } finally {
    await db.close()
  }
}

/** Node CPU (µs/op) of the plain page query and of the library's page shape, both through raw drizzle. */
interface PageShape {
  plainMicros: number
  shapedMicros: number
  ops: number
}

/**
 * Node CPU per page of raw drizzle running the plain page (PAGE rows) and the library's page shape — one row
 * more and a `(created_at)::text` cursor column, removed from the rows afterwards as the library does —
 * sequentially over one connection, interleaved, the first round untimed.
 */
async function measurePageShape(url: string, workload: Workload, ops: number): Promise<PageShape> {
  const client = postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: 'bench-reads-shape' } })
  const db = drizzle(client, { schema })
  const where = (op: Workload['many'][number]) =>
    and(
      eq(contacts.organizationId, op.organizationId),
      eq(contacts.productionId, op.productionId),
      isNull(contacts.deletedAt),
    )
  const shapes = {
    plain: async (op: Workload['many'][number]) =>
      (await db.select().from(contacts).where(where(op)).orderBy(asc(contacts.createdAt), asc(contacts.id)).limit(PAGE))
        .length,
    shaped: async (op: Workload['many'][number]) => {
      const rows = await db
        .select({ ...getTableColumns(contacts), __cursor: sql<string>`(${contacts.createdAt})::text`.as('__cursor') })
        .from(contacts)
        .where(where(op))
        .orderBy(asc(contacts.createdAt), asc(contacts.id))
        .limit(PAGE + 1)
      rows.pop()
      for (const row of rows) delete (row as { __cursor?: string }).__cursor
      return rows.length
    },
  }
  const micros = { plain: [] as number[], shaped: [] as number[] }
  try {
    for (let round = 0; round <= PAGE_SHAPE_ROUNDS; round++) {
      for (const name of round % 2 === 0 ? (['plain', 'shaped'] as const) : (['shaped', 'plain'] as const)) {
        const before = process.cpuUsage()
        for (let i = 0; i < ops; i++) {
          const length = await shapes[name](workload.many[i % workload.many.length] as Workload['many'][number])
          if (length !== PAGE) throw new Error(`page-shape probe (${name}) returned ${length} rows, not ${PAGE}`)
        }
        const cpu = process.cpuUsage(before)
        if (round > 0) micros[name].push((cpu.user + cpu.system) / ops)
      }
    }
  } finally {
    await client.end({ timeout: 5 })
  }
  return { plainMicros: median(micros.plain), shapedMicros: median(micros.shaped), ops }
}

interface PlanSummary {
  who: string
  operation: Operation
  plan: string
  executionMs: number
  planningMs: number
}

/** The plans and server-side times of both queries as the owner (no RLS) and as the app role under RLS. */
async function explainPlans(sql: Sql, organizations: readonly SeededOrganization[]): Promise<PlanSummary[]> {
  const org = organizations[0] as SeededOrganization
  const id = org.contactIds[Math.floor(org.contactIds.length / 3)] as string
  // Literals, not parameters: EXPLAIN cannot type untyped parameters. The values are our own UUIDs.
  const queries: Record<Operation, string> = {
    findById: `select * from contacts where organization_id = '${org.id}' and id = '${id}' and deleted_at is null limit 1`,
    findMany:
      `select * from contacts where organization_id = '${org.id}' and production_id = '${org.productionId}' ` +
      `and deleted_at is null order by created_at, id limit ${PAGE + 1}`,
  }
  const out: PlanSummary[] = []
  for (const operation of OPERATIONS) {
    for (const who of ['owner (RLS bypassed)', `${APP_ROLE} under RLS`]) {
      const runs: { plan: string; executionMs: number; planningMs: number }[] = []
      for (let i = 0; i < EXPLAIN_REPEATS; i++) {
        const explained = await sql.begin(async (tx) => {
          if (who !== 'owner (RLS bypassed)') {
            const settings = benchSettings(org.id)
            await tx.unsafe(settings.text, settings.params)
          }
          return tx.unsafe<{ 'QUERY PLAN': ExplainJson }[]>(`explain (analyze, format json) ${queries[operation]}`)
        })
        const root = explained[0]?.['QUERY PLAN'][0]
        if (root === undefined) throw new Error('EXPLAIN returned nothing')
        runs.push({
          plan: describePlan(root.Plan),
          executionMs: root['Execution Time'],
          planningMs: root['Planning Time'],
        })
      }
      out.push({
        who,
        operation,
        plan: runs[0]?.plan ?? '',
        executionMs: median(runs.map((r) => r.executionMs)),
        planningMs: median(runs.map((r) => r.planningMs)),
      })
    }
  }
  return out
}

type ExplainJson = { Plan: PlanNode; 'Execution Time': number; 'Planning Time': number }[]
interface PlanNode {
  'Node Type': string
  'Index Name'?: string
  'Subplan Name'?: string
  Filter?: string
  Plans?: PlanNode[]
}

function describePlan(node: PlanNode): string {
  const self =
    `${node['Node Type']}${node['Index Name'] === undefined ? '' : ` using ${node['Index Name']}`}` +
    (node['Subplan Name'] === undefined ? '' : ` (${node['Subplan Name']})`)
  const children = node.Plans ?? []
  return children.length === 0 ? self : `${self} → [${children.map(describePlan).join('; ')}]`
}

// ---------------------------------------------------------------------------------------------
// Metrics and the report

interface CaseMetrics {
  /** per measured run: every operation's latency in ms */
  latencies: Float64Array[]
  /** the whole bench process (main thread, GC and libuv threads) */
  clientCpuMicros: number
  /** server-backend CPU in µs over the measured runs (NaN when unknown) */
  serverTicks: number
  measuredOps: number
}

function newMetrics(): CaseMetrics {
  return { latencies: [], clientCpuMicros: 0, serverTicks: 0, measuredOps: 0 }
}

function metricsKey(operation: Operation, concurrency: number, caseName: string): string {
  return `${operation}/${concurrency}/${caseName}`
}

interface LatencySummary {
  medianMs: number
  p95Ms: number
  /** each measured run's median */
  runMediansMs: number[]
}

function summarizeLatencies(m: CaseMetrics): LatencySummary {
  const all = Float64Array.from(m.latencies.flatMap((run) => [...run])).sort()
  return {
    medianMs: quantile(all, 0.5),
    p95Ms: quantile(all, 0.95),
    runMediansMs: m.latencies.map((run) => quantile(Float64Array.from(run).sort(), 0.5)),
  }
}

interface TablesInput {
  context: SuiteContext
  sizes: Sizes
  caseNames: string[]
  results: BenchResult[]
  metrics: Map<string, CaseMetrics>
  flights: Map<string, Flights>
  plans: PlanSummary[]
  tenantClientMicros: number
  pageShape: PageShape
  serverCpuAvailable: boolean
}

function buildTables(input: TablesInput): NumbersTable[] {
  const { results, metrics, flights, caseNames, plans } = input
  const find = (operation: Operation, concurrency: number): BenchResult =>
    results[OPERATIONS.indexOf(operation) * 2 + (concurrency === 1 ? 0 : 1)] as BenchResult
  const caseMetrics = (operation: Operation, concurrency: number, name: string): CaseMetrics =>
    metrics.get(metricsKey(operation, concurrency, name)) as CaseMetrics
  const latency = (operation: Operation, concurrency: number, name: string): LatencySummary =>
    summarizeLatencies(caseMetrics(operation, concurrency, name))
  const throughput = (operation: Operation, name: string): number =>
    find(operation, CONCURRENCY).cases.find((c) => c.name === name)?.opsPerSecond?.median ?? Number.NaN
  const pairedThroughput = (operation: Operation, name: string): { min: number; max: number } => {
    const ratio = find(operation, CONCURRENCY)
      .cases.find((c) => c.name === name)
      ?.ratios.find((r) => r.baseline === BASELINE)?.paired
    // The harness pairs times; throughput is their inverse (min and max swap).
    return ratio === undefined ? { min: Number.NaN, max: Number.NaN } : { min: 1 / ratio.max, max: 1 / ratio.min }
  }
  const pairedLatency = (operation: Operation, name: string): { min: number; max: number } => {
    const own = latency(operation, 1, name).runMediansMs
    const base = latency(operation, 1, BASELINE).runMediansMs
    const ratios = own.map((v, i) => v / (base[i] ?? Number.NaN))
    return { min: Math.min(...ratios), max: Math.max(...ratios) }
  }
  const latencyMicros = (operation: Operation, name: string): number => latency(operation, 1, name).medianMs * 1000
  const latencyRatio = (operation: Operation, name: string): number =>
    latencyMicros(operation, name) / latencyMicros(operation, BASELINE)
  const throughputRatio = (operation: Operation, name: string): number =>
    throughput(operation, name) / throughput(operation, BASELINE)
  const flightsOf = (operation: Operation, name: string): Flights =>
    flights.get(`${name}/${operation}`) ?? { waits: Number.NaN, after: Number.NaN }
  const nodeCpu = (operation: Operation, concurrency: number, name: string): number => {
    const m = caseMetrics(operation, concurrency, name)
    return m.clientCpuMicros / m.measuredOps
  }
  const serverCpu = (operation: Operation, concurrency: number, name: string): number => {
    const m = caseMetrics(operation, concurrency, name)
    return m.serverTicks / m.measuredOps
  }
  const totalCpu = (operation: Operation, concurrency: number, name: string): number =>
    nodeCpu(operation, concurrency, name) + serverCpu(operation, concurrency, name)
  const us = (micros: number): string => (Number.isFinite(micros) ? Math.round(micros).toLocaleString('en-US') : 'n/a')
  const fine = (micros: number): string => (Number.isFinite(micros) ? micros.toFixed(micros < 10 ? 1 : 0) : 'n/a')
  const count = (n: number): string => (Number.isFinite(n) ? (Number.isInteger(n) ? String(n) : n.toFixed(2)) : 'n/a')
  const cpuKnown = input.serverCpuAvailable

  // 1. The targets, for the library as it is; the CPU model: saturated, ops/s ≈ cores ÷ CPU per operation.
  const predicted = (operation: Operation): number =>
    totalCpu(operation, CONCURRENCY, BASELINE) / totalCpu(operation, CONCURRENCY, OURS)
  const targetsTable: NumbersTable = {
    title:
      `Targets (issue 3): c=1 median latency ≤ ${formatRatio(TARGETS.latencyAt1)} and c=${CONCURRENCY} ` +
      `throughput ≥ ${formatRatio(TARGETS.throughputAt16)} of ${BASELINE}'s`,
    header: [
      'operation',
      `c=1 median latency ÷ ${BASELINE}`,
      `target ≤ ${formatRatio(TARGETS.latencyAt1)}`,
      `c=${CONCURRENCY} ops/s ÷ ${BASELINE}`,
      `target ≥ ${formatRatio(TARGETS.throughputAt16)}`,
      `c=${CONCURRENCY} predicted by CPU/op (${cpus().length} cores)`,
    ],
    rows: OPERATIONS.map((operation) => {
      const lat = latencyRatio(operation, OURS)
      const latSpread = pairedLatency(operation, OURS)
      const tput = throughputRatio(operation, OURS)
      const tputSpread = pairedThroughput(operation, OURS)
      return [
        operation,
        `${formatRatio(lat)} (per round ${formatRatio(latSpread.min)}–${formatRatio(latSpread.max)})`,
        lat <= TARGETS.latencyAt1 ? 'met' : `**missed**: ${formatPercent(lat / TARGETS.latencyAt1 - 1)} over`,
        `${formatRatio(tput)} (per round ${formatRatio(tputSpread.min)}–${formatRatio(tputSpread.max)})`,
        tput >= TARGETS.throughputAt16
          ? 'met'
          : `**missed**: ${formatPercent(1 - tput / TARGETS.throughputAt16)} short`,
        cpuKnown ? formatRatio(predicted(operation)) : 'n/a',
      ]
    }),
  }

  // 2. Per-case details.
  const detailRows: string[][] = []
  for (const operation of OPERATIONS) {
    for (const name of caseNames) {
      const l1 = latency(operation, 1, name)
      const l16 = latency(operation, CONCURRENCY, name)
      detailRows.push([
        operation,
        name,
        `${formatMicros(l1.medianMs)} / ${formatMicros(l1.p95Ms)}`,
        `${formatMicros(Math.min(...l1.runMediansMs))}–${formatMicros(Math.max(...l1.runMediansMs))}`,
        formatRatio(l1.medianMs / latency(operation, 1, RAW).medianMs),
        formatRate(throughput(operation, name)),
        cpuKnown ? us(totalCpu(operation, CONCURRENCY, name)) : 'n/a',
        formatRatio(throughput(operation, name) / throughput(operation, RAW)),
        `${formatMicros(l16.medianMs)} / ${formatMicros(l16.p95Ms)}`,
        `${count(flightsOf(operation, name).waits)} / ${count(flightsOf(operation, name).after)}`,
        `${us(nodeCpu(operation, 1, name))} / ${us(nodeCpu(operation, CONCURRENCY, name))}`,
        cpuKnown ? `${us(serverCpu(operation, 1, name))} / ${us(serverCpu(operation, CONCURRENCY, name))}` : 'n/a',
      ])
    }
  }
  const detailTable: NumbersTable = {
    title:
      `Per case (latencies per operation, pooled over the rounds; waits / sent after answer: TCP reads at a ` +
      `counting proxy over ${PROBE_OPS} operations ${PROBE_GAP_MS} ms apart; CPU ÷ operations)`,
    header: [
      'operation',
      'case',
      'c=1 latency median / p95 µs',
      'c=1 per-run medians µs',
      `c=1 ÷ ${RAW}`,
      `c=${CONCURRENCY} ops/s`,
      `c=${CONCURRENCY} CPU µs/op (Node + server)`,
      `c=${CONCURRENCY} ops/s ÷ ${RAW}`,
      `c=${CONCURRENCY} latency median / p95 µs`,
      'waits / sent after answer, per op',
      `Node CPU µs/op (c=1 / c=${CONCURRENCY})`,
      `server CPU µs/op (c=1 / c=${CONCURRENCY})`,
    ],
    rows: detailRows,
  }

  // 3. Probes of single parts of the gap to raw drizzle.
  const probesTable: NumbersTable = {
    title: 'Parts of the gap, measured alone (Node CPU)',
    header: ['probe', 'µs per call', 'how'],
    rows: [
      [
        'getting the repository, `db.tenant(orgId).contacts`',
        fine(input.tenantClientMicros),
        `${TENANT_CLIENT_CALLS.toLocaleString('en-US')} calls, median of ${TENANT_CLIENT_REPEATS}`,
      ],
      [
        `findMany's page shape (${PAGE + 1} rows + text cursor column) through raw drizzle`,
        us(input.pageShape.shapedMicros),
        `${input.pageShape.ops.toLocaleString('en-US')} sequential pages, median of ${PAGE_SHAPE_ROUNDS} rounds`,
      ],
      [
        `the plain ${PAGE}-row page through raw drizzle`,
        us(input.pageShape.plainMicros),
        `${input.pageShape.ops.toLocaleString('en-US')} sequential pages, median of ${PAGE_SHAPE_ROUNDS} rounds`,
      ],
    ],
  }

  const planTable: NumbersTable = {
    title: `EXPLAIN ANALYZE with literals, one tenant, ${EXPLAIN_REPEATS} runs each, medians`,
    header: ['query', 'as', 'plan', 'planning ms (median)', 'execution ms (median)'],
    rows: plans.map((p) => [p.operation, p.who, p.plan, p.planningMs.toFixed(3), p.executionMs.toFixed(3)]),
  }

  return [targetsTable, detailTable, probesTable, planTable]
}

function formatMicros(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  return Math.round(ms * 1000).toLocaleString('en-US')
}
