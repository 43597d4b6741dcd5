// Over 350 lines because the soak is one scenario: the mixed workload of many tenants, its invariant checks (isolation,
// audit count, memory) and the report.
/**
 * Soak test: N tenants (default 16) hammer one real PostgreSQL concurrently for S seconds (default 60)
 * with mixed reads, writes, searches and batch inserts, through the public API.
 *
 *   npx tsx scripts/soak.ts [--seconds 60] [--tenants 16] [--pool 16]
 *
 * Each tenant runs one worker, so its own rows change only through it and it knows their exact state:
 * every read is checked against that model (a live row is found, a soft-deleted one is not, counts
 * match), every returned row must carry the tenant's organizationId, and another tenant's id must
 * never be found. After the run, as the owner, each tenant's audit row count must equal the row
 * changes it committed. Memory (RSS, heapUsed) is sampled every 2 s; after a warm-up, the heapUsed
 * trend must stay under a bound. Exits 1 on any error, isolation violation, model or audit mismatch,
 * or memory growth.
 */
import { parseArgs } from 'node:util'
import v8 from 'node:v8'
import vm from 'node:vm'
import postgres from 'postgres'
import { createDatabase, isCallsheetDbError, type Database } from '../src/index'
import { migrate } from '../src/migrations/migrate'
import type { TenantClient } from '../src/client/tenant-client'
import { acquirePostgresServer, createScratchDatabase, runtimeLoginUrl } from '../tools/postgres-server'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    tenants: { type: 'string', default: '16' },
    pool: { type: 'string', default: '16' },
    'max-heap-growth-mb': { type: 'string', default: '48' },
  },
})
const SECONDS = Number(args.seconds)
const TENANTS = Number(args.tenants)
const POOL = Number(args.pool)
const MAX_HEAP_GROWTH_MB = Number(args['max-heap-growth-mb'])
if (![SECONDS, TENANTS, POOL].every((n) => Number.isInteger(n) && n > 0)) {
  console.error('usage: npx tsx scripts/soak.ts [--seconds 60] [--tenants 16] [--pool 16]')
  process.exit(2)
}

const KINDS = [
  'findById',
  'findByIdForeign',
  'findMany',
  'count',
  'search',
  'create',
  'update',
  'softDelete',
  'restore',
  'createMany',
] as const
type Kind = (typeof KINDS)[number]
/** Relative frequency of each operation. */
const WEIGHTS: Record<Kind, number> = {
  findById: 24,
  findByIdForeign: 4,
  findMany: 14,
  count: 8,
  search: 10,
  create: 12,
  update: 12,
  softDelete: 6,
  restore: 6,
  createMany: 1,
}
const TOTAL_WEIGHT = Object.values(WEIGHTS).reduce((a, b) => a + b, 0)
const pickKind = (): Kind => {
  let r = Math.random() * TOTAL_WEIGHT
  for (const k of KINDS) {
    r -= WEIGHTS[k]
    if (r < 0) return k
  }
  return 'findById'
}

const FIRST = ['Jon', 'Joanna', 'Ann', 'Pat', 'Sam', 'Alex', 'Mia', 'Noah', 'Lena', 'Omar', 'Rui', 'Zoë']
const LAST = ['Smith', 'Smythe', 'Other', 'Doe', 'Okafor', 'Nakamura', 'García', 'Müller', 'Kowalski']
const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!
const randomName = () => `${pickOf(FIRST)} ${pickOf(LAST)}`

/** A bounded random sample of a tenant's contact ids with their known state (live or soft-deleted). */
class Reservoir {
  readonly ids: string[] = []
  readonly deleted = new Map<string, boolean>()
  constructor(private readonly max: number) {}
  add(id: string, deleted = false): void {
    if (this.ids.length < this.max) this.ids.push(id)
    else {
      const at = Math.floor(Math.random() * this.max)
      this.deleted.delete(this.ids[at]!)
      this.ids[at] = id
    }
    this.deleted.set(id, deleted)
  }
  pick(wantDeleted?: boolean): string | undefined {
    for (let i = 0; i < 8; i++) {
      const id = this.ids[Math.floor(Math.random() * this.ids.length)]
      if (id !== undefined && (wantDeleted === undefined || this.deleted.get(id) === wantDeleted)) return id
    }
    return undefined
  }
}

interface TenantState {
  readonly index: number
  readonly orgId: string
  readonly client: TenantClient
  readonly productionId: string
  readonly rows: Reservoir
  /** Exact counts of this tenant's contacts. */
  live: number
  deleted: number
  /** Row changes this tenant committed (each is one audit row). */
  committed: number
  seq: number
}

interface Tally {
  ops: Record<Kind, number>
  latencies: Record<Kind, number[]>
  errors: string[]
  violations: string[]
  mismatches: string[]
}
const tally: Tally = {
  ops: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>,
  latencies: Object.fromEntries(KINDS.map((k) => [k, []])) as unknown as Record<Kind, number[]>,
  errors: [],
  violations: [],
  mismatches: [],
}
const note = (list: string[], message: string) => {
  if (list.length < 50) list.push(message)
  else if (list.length === 50) list.push('… (more not recorded)')
}

/** Every returned row must be the tenant's. */
function checkRows(t: TenantState, kind: Kind, rows: readonly { organizationId?: unknown; id?: unknown }[]): void {
  for (const row of rows) {
    if (row.organizationId !== t.orgId) {
      note(
        tally.violations,
        `tenant ${t.index} ${kind}: got row ${String(row.id)} of organization ${String(row.organizationId)}`,
      )
    }
  }
}

/** Runs one operation of `kind`; false when there was nothing to run it on (not counted). */
async function step(t: TenantState, all: readonly TenantState[], kind: Kind): Promise<boolean> {
  const c = t.client.contacts
  switch (kind) {
    case 'findById': {
      const id = t.rows.pick()
      if (id === undefined) return false
      const row = await c.findById(id)
      const isDeleted = t.rows.deleted.get(id)
      if (row) checkRows(t, kind, [row])
      if (isDeleted === false && row?.id !== id)
        note(tally.mismatches, `tenant ${t.index}: live contact ${id} not found`)
      if (isDeleted === true && row !== undefined) note(tally.mismatches, `tenant ${t.index}: soft-deleted ${id} found`)
      return true
    }
    case 'findByIdForeign': {
      const other = all[(t.index + 1 + Math.floor(Math.random() * (all.length - 1))) % all.length]!
      const id = other === t ? undefined : other.rows.pick()
      if (id === undefined) return false
      const row = await c.findById(id, { deleted: 'include' })
      if (row !== undefined) note(tally.violations, `tenant ${t.index} found tenant ${other.index}'s contact ${id}`)
      return true
    }
    case 'findMany': {
      const orderBy = pickOf(['createdAt', 'updatedAt', 'name'] as const)
      const page = await c.findMany({
        where: { productionId: t.productionId },
        orderBy,
        direction: pickOf(['asc', 'desc'] as const),
        limit: 50,
      })
      checkRows(t, kind, page.rows)
      for (const row of page.rows) {
        if (row.deletedAt !== null) note(tally.mismatches, `tenant ${t.index}: findMany returned deleted ${row.id}`)
        if (row.productionId !== t.productionId)
          note(tally.mismatches, `tenant ${t.index}: findMany ignored its filter`)
      }
      if (page.rows.length !== Math.min(50, t.live)) {
        note(tally.mismatches, `tenant ${t.index}: findMany returned ${page.rows.length} rows, ${t.live} live`)
      }
      return true
    }
    case 'count': {
      const [live, all2] = [await c.count(), await c.count({ deleted: 'include' })]
      if (live !== t.live || all2 !== t.live + t.deleted) {
        note(tally.mismatches, `tenant ${t.index}: count ${live}/${all2}, expected ${t.live}/${t.live + t.deleted}`)
      }
      return true
    }
    case 'search': {
      const hits = await c.search(randomName(), { limit: 20 })
      checkRows(t, kind, hits)
      return true
    }
    case 'create': {
      const row = await c.create({
        productionId: t.productionId,
        name: randomName(),
        email: `c${t.seq++}.t${t.index}@soak.example`,
        role: 'Grip',
        metadata: { source: 'soak', n: t.seq },
      })
      checkRows(t, kind, [row])
      t.rows.add(row.id)
      t.live++
      t.committed++
      return true
    }
    case 'update': {
      const id = t.rows.pick(false)
      if (id === undefined) return false
      const row = await c.update(id, { name: `${randomName()} ${t.seq++}` })
      checkRows(t, kind, [row])
      t.committed++
      return true
    }
    case 'softDelete': {
      const id = t.rows.pick(false)
      if (id === undefined) return false
      checkRows(t, kind, [await c.softDelete(id)])
      t.rows.deleted.set(id, true)
      t.live--
      t.deleted++
      t.committed++
      return true
    }
    case 'restore': {
      const id = t.rows.pick(true)
      if (id === undefined) return false
      checkRows(t, kind, [await c.restore(id)])
      t.rows.deleted.set(id, false)
      t.live++
      t.deleted--
      t.committed++
      return true
    }
    case 'createMany': {
      const n = 100 + Math.floor(Math.random() * 901)
      const rows = Array.from({ length: n }, () => ({
        productionId: t.productionId,
        name: randomName(),
        email: `b${t.seq++}.t${t.index}@soak.example`,
        role: 'Extra',
      }))
      const ids = await c.createMany(rows, { returning: 'ids' })
      if (ids.length !== n) note(tally.mismatches, `tenant ${t.index}: createMany of ${n} returned ${ids.length} ids`)
      for (const id of ids) t.rows.add(id)
      t.live += ids.length
      t.committed += ids.length
      return true
    }
  }
}

async function worker(t: TenantState, all: readonly TenantState[], until: number): Promise<void> {
  while (Date.now() < until) {
    const kind = pickKind()
    const started = performance.now()
    try {
      if (await step(t, all, kind)) {
        tally.ops[kind]++
        tally.latencies[kind].push(performance.now() - started)
      }
    } catch (error) {
      const what = isCallsheetDbError(error) ? `${error.code}` : 'RAW'
      note(tally.errors, `tenant ${t.index} ${kind}: ${what} ${error instanceof Error ? error.message : String(error)}`)
    }
  }
}

interface MemorySample {
  readonly t: number
  readonly rss: number
  readonly heapUsed: number
}
const MB = 1024 * 1024
/** A full GC before each sample, so heapUsed shows what is retained, not what awaits collection. */
const gc: (() => void) | undefined =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    try {
      v8.setFlagsFromString('--expose-gc')
      return vm.runInNewContext('gc') as () => void
    } catch {
      return undefined
    }
  })()
function sample(start: number): MemorySample {
  gc?.()
  const m = process.memoryUsage()
  return { t: (Date.now() - start) / 1000, rss: m.rss / MB, heapUsed: m.heapUsed / MB }
}
/** Least-squares slope of y over t, per minute. */
function slopePerMinute(samples: readonly MemorySample[], key: 'rss' | 'heapUsed'): number {
  const n = samples.length
  if (n < 2) return 0
  const mt = samples.reduce((s, x) => s + x.t, 0) / n
  const my = samples.reduce((s, x) => s + x[key], 0) / n
  const num = samples.reduce((s, x) => s + (x.t - mt) * (x[key] - my), 0)
  const den = samples.reduce((s, x) => s + (x.t - mt) ** 2, 0)
  return den === 0 ? 0 : (num / den) * 60
}
const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return Number.NaN
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function setUp(db: Database): Promise<TenantState[]> {
  return Promise.all(
    Array.from({ length: TENANTS }, async (_, index) => {
      const org = await db.organizations.create({ name: `Soak ${index}`, slug: `soak-${index}` })
      const client = db.tenant(org.id, { requestId: `soak-${index}` })
      const production = await client.productions.create({ title: `Soak ${index}`, code: `SOAK${index}` })
      const t: TenantState = {
        index,
        orgId: org.id,
        client,
        productionId: production.id,
        rows: new Reservoir(2000),
        live: 0,
        deleted: 0,
        committed: 1, // the production
        seq: 0,
      }
      return t
    }),
  )
}

async function main(): Promise<number> {
  const { server, attempts } = await acquirePostgresServer({ log: (line) => console.log(`[soak] ${line}`) })
  if (!server) {
    console.error(`[soak] no PostgreSQL server: ${attempts.map((a) => `${a.source}: ${a.reason}`).join('; ')}`)
    return 2
  }
  const scratch = await createScratchDatabase(server.adminUrl, 'cs_soak')
  let db: Database | undefined
  let owner: postgres.Sql | undefined
  try {
    await migrate(scratch.url)
    db = createDatabase({ primary: await runtimeLoginUrl(scratch.url), pool: { max: POOL } })
    owner = postgres(scratch.url, { max: 1, onnotice: () => {} })
    const tenants = await setUp(db)
    console.log(
      `[soak] ${server.description}; ${TENANTS} tenants, pool ${POOL}, ${SECONDS} s, memory sampled ${gc ? 'after a full GC' : 'without GC (noisy)'}`,
    )

    const start = Date.now()
    const until = start + SECONDS * 1000
    const samples: MemorySample[] = [sample(start)]
    const timer = setInterval(() => samples.push(sample(start)), 2000)
    await Promise.all(tenants.map((t) => worker(t, tenants, until)))
    clearInterval(timer)
    samples.push(sample(start))
    const elapsed = (Date.now() - start) / 1000

    // Audit as the owner: one row per committed row change.
    const audit = await owner<{ organization_id: string; n: number }[]>`
      select organization_id, count(*)::int as n from audit_logs group by organization_id`
    const auditBy = new Map(audit.map((r) => [r.organization_id, r.n]))
    const auditProblems = tenants
      .filter((t) => auditBy.get(t.orgId) !== t.committed)
      .map((t) => `tenant ${t.index}: ${auditBy.get(t.orgId) ?? 0} audit rows, ${t.committed} committed changes`)
    // And the final state, as the owner, against each tenant's model.
    const counts = await owner<{ organization_id: string; live: number; deleted: number }[]>`
      select organization_id, count(*) filter (where deleted_at is null)::int as live,
             count(*) filter (where deleted_at is not null)::int as deleted
      from contacts group by organization_id`
    const countBy = new Map(counts.map((r) => [r.organization_id, r]))
    for (const t of tenants) {
      const c = countBy.get(t.orgId)
      if ((c?.live ?? 0) !== t.live || (c?.deleted ?? 0) !== t.deleted) {
        note(
          tally.mismatches,
          `tenant ${t.index}: final ${c?.live}/${c?.deleted} live/deleted, model ${t.live}/${t.deleted}`,
        )
      }
    }

    // ---- report ----
    const totalOps = KINDS.reduce((s, k) => s + tally.ops[k], 0)
    console.log(`\n[soak] ${totalOps} operations in ${elapsed.toFixed(1)} s = ${(totalOps / elapsed).toFixed(0)} ops/s`)
    console.log('kind              ops     ops/s    p50 ms   p95 ms   p99 ms')
    for (const k of KINDS) {
      const l = tally.latencies[k]
      console.log(
        `${k.padEnd(16)} ${String(tally.ops[k]).padStart(6)} ${(tally.ops[k] / elapsed).toFixed(1).padStart(9)} ${percentile(l, 50).toFixed(1).padStart(9)} ${percentile(l, 95).toFixed(1).padStart(8)} ${percentile(l, 99).toFixed(1).padStart(8)}`,
      )
    }
    const rowsWritten = tenants.reduce((s, t) => s + t.committed, 0)
    console.log(
      `row changes committed: ${rowsWritten}; contacts live ${tenants.reduce((s, t) => s + t.live, 0)}, deleted ${tenants.reduce((s, t) => s + t.deleted, 0)}`,
    )
    console.log(
      `errors: ${tally.errors.length}${tally.errors.length ? `\n  ${tally.errors.slice(0, 20).join('\n  ')}` : ''}`,
    )
    console.log(
      `isolation violations: ${tally.violations.length}${tally.violations.length ? `\n  ${tally.violations.slice(0, 20).join('\n  ')}` : ''}`,
    )
    console.log(
      `model mismatches: ${tally.mismatches.length}${tally.mismatches.length ? `\n  ${tally.mismatches.slice(0, 20).join('\n  ')}` : ''}`,
    )
    console.log(
      `audit: ${auditProblems.length === 0 ? `OK — every tenant's audit rows == its committed changes (${rowsWritten} in all)` : `${auditProblems.length} tenants off\n  ${auditProblems.join('\n  ')}`}`,
    )

    const warm = samples.filter((s) => s.t >= Math.min(10, SECONDS / 4))
    const mid = samples[Math.floor(samples.length / 2)]!
    const first = samples[0]!
    const last = samples.at(-1)!
    const fmt = (s: MemorySample) => `t=${s.t.toFixed(0)}s rss ${s.rss.toFixed(0)} MB heap ${s.heapUsed.toFixed(1)} MB`
    const heapSlope = slopePerMinute(warm, 'heapUsed')
    const rssSlope = slopePerMinute(warm, 'rss')
    const heapGrowth = warm.length > 1 ? last.heapUsed - warm[0]!.heapUsed : 0
    console.log(`memory: start ${fmt(first)} | mid ${fmt(mid)} | end ${fmt(last)}`)
    console.log(
      `memory after warm-up (${warm.length} samples from t=${warm[0]?.t.toFixed(0)}s): heapUsed ${heapGrowth >= 0 ? '+' : ''}${heapGrowth.toFixed(1)} MB, slope ${heapSlope.toFixed(2)} MB/min heap, ${rssSlope.toFixed(2)} MB/min rss (bound: heap growth and slope·duration ≤ ${MAX_HEAP_GROWTH_MB} MB)`,
    )
    console.log(
      `samples (t s: rss/heap MB): ${samples.map((s) => `${s.t.toFixed(0)}:${s.rss.toFixed(0)}/${s.heapUsed.toFixed(0)}`).join(' ')}`,
    )
    const memoryOk = heapGrowth <= MAX_HEAP_GROWTH_MB && (heapSlope * SECONDS) / 60 <= MAX_HEAP_GROWTH_MB

    const ok =
      tally.errors.length === 0 &&
      tally.violations.length === 0 &&
      tally.mismatches.length === 0 &&
      auditProblems.length === 0 &&
      memoryOk
    console.log(`\n[soak] ${ok ? 'PASS' : 'FAIL'}${memoryOk ? '' : ' (memory grew past the bound)'}`)
    return ok ? 0 : 1
  } finally {
    await owner?.end({ timeout: 5 })
    await db?.close()
    await scratch.drop().catch(() => {})
    await server.stop()
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('[soak] crashed:', error)
    process.exit(1)
  },
)
