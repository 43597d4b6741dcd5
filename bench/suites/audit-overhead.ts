// Over 350 lines because a suite is one experiment: fixture, every contender, the check that all return the same rows,
// the probes and the tables, kept together so what is measured reads in one place.
/**
 * What the audit trail costs a write (issue: "a write with audit vs the same write with the audit trigger
 * disabled, single row and a 10k batch"). Two scratch databases, migrated alike; in the second the
 * contacts audit triggers are dropped. The same library calls run on both, in interleaved rounds:
 * `tenant.contacts.create` one row at a time, `tenant.contacts.update` of one row at a time (the trigger
 * computes a diff), and `tenant.contacts.createMany` of a 10,000-row batch.
 *
 * Next to the timings it records, per case, the Node CPU, the server-backend CPU and the WAL written per
 * row, and the server's own account of the audit trigger (EXPLAIN ANALYZE trigger times), so that the
 * ratio comes with where the difference goes (the numbers; BENCHMARKS.md has the analysis).
 */
import { performance } from 'node:perf_hooks'
import postgres from 'postgres'
import { uuidv7 } from 'uuidv7'
import { createDatabase, type Database } from '../../src/client/create-database'
import { migrate } from '../../src/migrations/migrate'
import type { CreateContactInput } from '../../src/repositories/contacts-repository'
import type { TenantClient } from '../../src/client/tenant-client'
import { createScratchDatabase, runtimeLoginUrl } from '../../tools/postgres-server'
import { generateContacts, toCreateInput } from '../fixtures/contacts'
import {
  benchSettings,
  formatMs,
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

const AUDIT = 'audit'
const NO_AUDIT = 'no audit'

/** The targets: audit ÷ no-audit time. */
const TARGETS = { singleRow: 1.5, batch: 1.3 }

/** The contacts audit triggers (drizzle/0007_audit_triggers.sql), dropped in the no-audit database. */
const CONTACT_AUDIT_TRIGGERS = ['contacts_audit_insert', 'contacts_audit_update', 'contacts_audit_delete'] as const

interface Sizes {
  /** sequential `create` calls per run */
  creates: number
  /** sequential `update` calls per run */
  updates: number
  /** rows of the `createMany` batch */
  batch: number
  /** EXPLAIN ANALYZE repetitions: single-row statements, batch statements */
  explainSingle: number
  explainBatch: number
}

const SIZES: { default: Sizes; quick: Sizes } = {
  default: { creates: 2_000, updates: 2_000, batch: 10_000, explainSingle: 25, explainBatch: 5 },
  quick: { creates: 100, updates: 100, batch: 1_000, explainSingle: 5, explainBatch: 1 },
}

const POOL_MAX = 4
const CONTEXT = { actorId: uuidv7(), ip: '203.0.113.7', requestId: 'bench-audit-overhead' }

type Sql = postgres.Sql
type Workload = 'create' | 'update' | 'createMany'

/** One database of the comparison, with the library open on it. */
interface Side {
  name: string
  audited: boolean
  url: string
  /** the owner (superuser locally): resets, checks, EXPLAIN */
  admin: Sql
  db: Database
  tenant: TenantClient
  organizationId: string
  productionId: string
  applicationName: string
  drop(): Promise<void>
}

/** `npm run bench -- audit-overhead` */
export const auditOverhead: BenchSuite = {
  name: 'audit-overhead',
  usesRows: false,
  title:
    'Audit overhead: `contacts.create` (one row), `contacts.update` (one row) and `contacts.createMany` (10,000 ' +
    'rows) through the library, with the audit triggers vs the same database with the contacts audit triggers dropped',
  async run(context) {
    const sides: Side[] = []
    try {
      for (const audited of [true, false]) {
        sides.push(await openSide(context, audited))
      }
      return await measure(context, sides as [Side, Side])
    } finally {
      for (const side of sides) {
        await side.db.close().catch(() => undefined)
        await side.admin.end({ timeout: 5 }).catch(() => undefined)
        await side.drop()
      }
    }
  },
}

async function openSide(context: SuiteContext, audited: boolean): Promise<Side> {
  const name = audited ? AUDIT : NO_AUDIT
  const scratch = await createScratchDatabase(context.server.adminUrl, audited ? 'cs_bench_audit' : 'cs_bench_noaudit')
  let admin: Sql | undefined
  let db: Database | undefined
  try {
    context.log(`migrating ${scratch.name} (${name})`)
    await migrate(scratch.url)
    admin = postgres(scratch.url, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: 'bench-audit-admin' },
    })
    if (!audited) {
      for (const trigger of CONTACT_AUDIT_TRIGGERS) await admin.unsafe(`drop trigger ${trigger} on contacts`)
    }
    const present = await auditTriggers(admin)
    const expected = audited ? [...CONTACT_AUDIT_TRIGGERS].sort() : []
    if (present.join() !== expected.join()) {
      throw new Error(`${name}: contacts audit triggers are [${present.join(', ')}], expected [${expected.join(', ')}]`)
    }
    const applicationName = `bench-audit-${audited ? 'on' : 'off'}`
    db = createDatabase({
      primary: { url: await runtimeLoginUrl(scratch.url), connection: { application_name: applicationName } },
      pool: { max: POOL_MAX, idleTimeoutSeconds: 0 },
    })
    const organization = await db.organizations.create({ name: 'Audit Bench Pictures', slug: 'audit-bench' })
    // The audit actor must be a live user of the organization (issue 14).
    await admin.unsafe(
      "insert into users (id, organization_id, email, name, role) values ($1, $2, 'bench@audit.example', 'Bench Actor', 'owner')",
      [CONTEXT.actorId, organization.id],
    )
    const tenant = db.tenant(organization.id, CONTEXT)
    const production = await tenant.productions.create({ title: 'The Audit', code: 'AUDIT-1', status: 'production' })
    return {
      name,
      audited,
      url: scratch.url,
      admin,
      db,
      tenant,
      organizationId: organization.id,
      productionId: production.id,
      applicationName,
      drop: () => scratch.drop(),
    }
  } catch (error) {
    await db?.close().catch(() => undefined)
    await admin?.end({ timeout: 5 }).catch(() => undefined)
    await scratch.drop().catch(() => undefined)
    throw error
  }
}

async function auditTriggers(sql: Sql): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    select tgname as name from pg_trigger
    where tgrelid = 'contacts'::regclass and not tgisinternal and tgname like 'contacts_audit_%' order by 1`
  return rows.map((r) => r.name)
}

// ---------------------------------------------------------------------------------------------
// The benches

/** What one case accumulated over its measured runs (warm-up excluded). */
interface CaseMetrics {
  /** per measured run: each operation's latency in ms (one entry per run for createMany) */
  latencies: Float64Array[]
  clientCpuMicros: number
  /** NaN when unknown */
  serverCpuMicros: number
  walBytes: number
  /** rows written over the measured runs */
  rows: number
  /** statements executed over the measured runs (operations) */
  operations: number
}

const newMetrics = (): CaseMetrics => ({
  latencies: [],
  clientCpuMicros: 0,
  serverCpuMicros: 0,
  walBytes: 0,
  rows: 0,
  operations: 0,
})

async function measure(context: SuiteContext, sides: [Side, Side]): Promise<SuiteReport> {
  const sizes = context.quick ? SIZES.quick : SIZES.default
  const serverCpu =
    context.server.source === 'local-binaries'
      ? new Map(sides.map((s) => [s.name, new BackendCpu(s.admin)]))
      : undefined
  const canCheckpoint = await sides[0].admin`checkpoint`.then(
    () => true,
    () => false,
  )
  // The same contacts on both sides (bar their production), built before anything is timed.
  const inputs = (side: Side, count: number, seed: number): CreateContactInput[] =>
    generateContacts(count, { organizationId: side.organizationId, productionId: side.productionId, seed }).map((c) =>
      toCreateInput(c),
    )
  const createInputs = new Map(sides.map((s) => [s.name, inputs(s, sizes.creates, 1)]))
  const updateSeed = new Map(sides.map((s) => [s.name, inputs(s, sizes.updates, 2)]))
  const batchInputs = new Map(sides.map((s) => [s.name, inputs(s, sizes.batch, 3)]))

  const metrics = new Map<string, CaseMetrics>()
  const results: BenchResult[] = []

  const reset = async (side: Side): Promise<void> => {
    await side.admin`truncate contacts, audit_logs`
    if (canCheckpoint) await side.admin`checkpoint`
  }
  const walPosition = async (side: Side): Promise<string> =>
    (await side.admin<{ lsn: string }[]>`select pg_current_wal_insert_lsn()::text as lsn`)[0]?.lsn ?? '0/0'
  const walSince = async (side: Side, from: string): Promise<number> =>
    Number(
      (
        await side.admin<
          { bytes: string }[]
        >`select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${from})::text as bytes`
      )[0]?.bytes ?? Number.NaN,
    )

  /** Counts what a run left: contacts, and audit rows of `action` (all must be on the audited side only). */
  const verify = async (side: Side, workload: Workload, rows: number, action: 'insert' | 'update'): Promise<void> => {
    const [found] = await side.admin<{ contacts: number; audit: number; tagged: number; other: number }[]>`
      select (select count(*)::int from contacts) as contacts,
             (select count(*)::int from audit_logs where entity_type = 'contacts' and action = ${action}) as audit,
             (select count(*)::int from audit_logs
               where entity_type = 'contacts' and action = ${action} and organization_id = ${side.organizationId}
                 and user_id = ${CONTEXT.actorId} and ip_address = ${CONTEXT.ip}::inet
                 and request_id = ${CONTEXT.requestId}) as tagged,
             (select count(*)::int from audit_logs where not (entity_type = 'contacts' and action = ${action})) as other`
    const expectedContacts = workload === 'update' ? sizes.updates : rows
    const expectedAudit = side.audited ? rows : 0
    if (found?.contacts !== expectedContacts) {
      throw new Error(`${workload} (${side.name}): ${found?.contacts} contacts, expected ${expectedContacts}`)
    }
    if (found.audit !== expectedAudit || found.tagged !== expectedAudit || found.other !== 0) {
      throw new Error(
        `${workload} (${side.name}): ${found.audit} contacts ${action} audit rows (${found.tagged} with the tenant ` +
          `context) and ${found.other} others, expected ${expectedAudit} and 0`,
      )
    }
    if (side.audited && action === 'update') {
      // An update records only what changed: the patched columns, nothing else.
      const [diff] = await side.admin<{ wrong: number }[]>`
        select count(*)::int as wrong from audit_logs
        where action = 'update' and (select array_agg(k order by k) from jsonb_object_keys(new_values) k) <> array['notes', 'role']`
      if (diff?.wrong !== 0) throw new Error(`update (${side.name}): ${diff?.wrong} audit rows record other columns`)
    }
  }

  /**
   * A case of `workload` on `side`: `setup` resets (and for updates seeds) the side, `work` is timed, and
   * the teardown verifies and accounts the CPU and WAL of the run.
   */
  const makeCase = (
    workload: Workload,
    side: Side,
    work: (latencies: Float64Array) => Promise<void>,
    options: { ops: number; rows: number; action: 'insert' | 'update'; seed?: () => Promise<void> },
  ): BenchCase => {
    const m = newMetrics()
    metrics.set(`${workload}/${side.name}`, m)
    let runs = 0
    let serverBefore: number | undefined
    let walFrom = '0/0'
    let latencies = new Float64Array(workload === 'createMany' ? 1 : options.ops)
    let cpuBefore = process.cpuUsage()
    let cpuUsed = { user: 0, system: 0 }
    return {
      name: side.name,
      ops: options.ops,
      setup: async () => {
        await reset(side)
        if (options.seed) {
          await options.seed()
          await side.admin`truncate audit_logs`
          await side.admin`analyze contacts`
          if (canCheckpoint) await side.admin`checkpoint`
        }
        latencies = new Float64Array(workload === 'createMany' ? 1 : options.ops)
        serverBefore = await serverCpu?.get(side.name)?.ticks(side.applicationName)
        walFrom = await walPosition(side)
        cpuBefore = process.cpuUsage()
      },
      run: async () => {
        await work(latencies)
        cpuUsed = process.cpuUsage(cpuBefore)
      },
      teardown: async () => {
        const wal = await walSince(side, walFrom)
        const serverAfter = await serverCpu?.get(side.name)?.ticks(side.applicationName)
        await verify(side, workload, options.rows, options.action)
        if (runs >= context.warmupRounds) {
          m.latencies.push(latencies)
          // cpuBefore is taken in setup, after its own queries: the run's CPU, plus a few setup awaits' tails.
          m.clientCpuMicros += cpuUsed.user + cpuUsed.system
          m.serverCpuMicros +=
            serverBefore === undefined || serverAfter === undefined ? Number.NaN : serverAfter - serverBefore
          m.walBytes += wal
          m.rows += options.rows
          m.operations += workload === 'createMany' ? 1 : options.ops
        }
        runs++
      },
    }
  }

  const benchOptions = (unit: string) => ({
    rounds: context.rounds,
    warmupRounds: context.warmupRounds,
    baselines: [NO_AUDIT],
    opsUnit: unit,
    log: context.log,
  })

  // 1. create, one row per call.
  context.log(`bench: ${sizes.creates} sequential creates per run`)
  results.push(
    await runBench(
      `contacts.create, one row per call: ${sizes.creates.toLocaleString('en-US')} sequential calls per run`,
      sides.map((side) => {
        const rows = createInputs.get(side.name) as CreateContactInput[]
        return makeCase(
          'create',
          side,
          async (latencies) => {
            for (let i = 0; i < rows.length; i++) {
              const t0 = performance.now()
              await side.tenant.contacts.create(rows[i] as CreateContactInput)
              latencies[i] = performance.now() - t0
            }
          },
          { ops: rows.length, rows: rows.length, action: 'insert' },
        )
      }),
      benchOptions('rows'),
    ),
  )

  // 2. update, one row per call.
  context.log(`bench: ${sizes.updates} sequential updates per run`)
  results.push(
    await runBench(
      `contacts.update, one row per call (role and notes change): ${sizes.updates.toLocaleString('en-US')} ` +
        'sequential calls per run',
      sides.map((side) => {
        let ids: string[] = []
        return makeCase(
          'update',
          side,
          async (latencies) => {
            for (let i = 0; i < ids.length; i++) {
              const t0 = performance.now()
              await side.tenant.contacts.update(ids[i] as string, {
                role: 'Second Unit Director',
                notes: `Moved to the second unit (${i})`,
              })
              latencies[i] = performance.now() - t0
            }
          },
          {
            ops: sizes.updates,
            rows: sizes.updates,
            action: 'update',
            seed: async () => {
              const created = await side.tenant.contacts.createMany(updateSeed.get(side.name) as CreateContactInput[], {
                returning: 'ids',
              })
              ids = created
            },
          },
        )
      }),
      benchOptions('rows'),
    ),
  )

  // 3. createMany, one batch.
  context.log(`bench: createMany of ${sizes.batch} rows`)
  results.push(
    await runBench(
      `contacts.createMany: one ${sizes.batch.toLocaleString('en-US')}-row batch per run`,
      sides.map((side) => {
        const rows = batchInputs.get(side.name) as CreateContactInput[]
        return makeCase(
          'createMany',
          side,
          async (latencies) => {
            const t0 = performance.now()
            await side.tenant.contacts.createMany(rows)
            latencies[0] = performance.now() - t0
          },
          { ops: rows.length, rows: rows.length, action: 'insert' },
        )
      }),
      benchOptions('rows'),
    ),
  )

  context.log('EXPLAIN ANALYZE of the same statements on both sides (rolled back)')
  const triggers = await explainTriggers(sides, sizes)

  return {
    results,
    tables: buildTables({ sizes, results, metrics, triggers, serverCpuKnown: serverCpu !== undefined }),
  }
}

// ---------------------------------------------------------------------------------------------
// The server's account: EXPLAIN ANALYZE with trigger times

interface TriggerTimes {
  /** median statement execution time (ms), triggers included */
  executionMs: number
  /** median time (ms) in the measured statement-level trigger (the audit one, or the no-op one) */
  triggerMs: number
  /** median time (ms) in the foreign-key triggers */
  foreignKeyMs: number
}

/** What is measured under EXPLAIN ANALYZE for each workload. */
type ExplainVariant = 'audit' | 'none' | 'floor'

type ExplainJson = {
  'Execution Time': number
  Triggers?: { 'Trigger Name': string; 'Constraint Name'?: string; Time: number; Calls: number }[]
}[]

const FLOOR_TRIGGER = 'bench_audit_floor'

/**
 * Each workload's statement (one INSERT … SELECT FROM unnest for the single row and the batch, the
 * update as the library writes it) under EXPLAIN ANALYZE, as the app role with the tenant context, in a
 * transaction that is rolled back — three ways: with the audit trigger (audited database), with no
 * trigger, and with a no-op statement-level trigger over the same transition tables (both on the no-audit
 * database; the no-op trigger is created inside the rolled-back transaction). The no-op trigger is the
 * floor of any statement-level audit: what is above it is the audit function's own work.
 */
async function explainTriggers(sides: readonly Side[], sizes: Sizes): Promise<Map<string, TriggerTimes>> {
  const targets = new Map<string, string>()
  for (const side of sides) {
    await side.admin`truncate contacts, audit_logs`
    const [target] = await side.admin<{ id: string }[]>`
      insert into contacts (organization_id, production_id, name)
      values (${side.organizationId}, ${side.productionId}, 'Explain Target')
      returning id`
    await side.admin`truncate audit_logs`
    targets.set(side.name, target?.id ?? '')
  }
  const statements: {
    workload: Workload
    repeats: number
    text: (side: Side) => { query: string; params: unknown[] }
  }[] = [
    { workload: 'create', repeats: sizes.explainSingle, text: (side) => insertStatement(side, 1) },
    {
      workload: 'update',
      repeats: sizes.explainSingle,
      text: (side) => ({
        query:
          'update contacts set role = $1, notes = $2 where organization_id = $3 and id = $4 and deleted_at is null',
        params: ['Second Unit Director', 'Moved to the second unit', side.organizationId, targets.get(side.name)],
      }),
    },
    { workload: 'createMany', repeats: sizes.explainBatch, text: (side) => insertStatement(side, sizes.batch) },
  ]
  const contenders = sides.flatMap((side) =>
    (side.audited ? (['audit'] as const) : (['none', 'floor'] as const)).map((variant) => ({ side, variant })),
  )
  const out = new Map<string, TriggerTimes>()
  for (const statement of statements) {
    const runs = new Map<ExplainVariant, TriggerTimes[]>(contenders.map((c) => [c.variant, []]))
    // Interleaved, in a rotated order, like the benches: drift hits every variant alike.
    for (let i = 0; i < statement.repeats; i++) {
      const shift = i % contenders.length
      for (const { side, variant } of [...contenders.slice(shift), ...contenders.slice(0, shift)]) {
        const { query, params } = statement.text(side)
        runs
          .get(variant)
          ?.push(await explainOnce(side, query, params, variant === 'floor' ? statement.workload : undefined))
      }
    }
    for (const [variant, times] of runs) {
      out.set(`${statement.workload}/${variant}`, {
        executionMs: median(times.map((r) => r.executionMs)),
        triggerMs: median(times.map((r) => r.triggerMs)),
        foreignKeyMs: median(times.map((r) => r.foreignKeyMs)),
      })
    }
  }
  return out
}

function insertStatement(side: Side, count: number): { query: string; params: unknown[] } {
  const rows = generateContacts(count, {
    organizationId: side.organizationId,
    productionId: side.productionId,
    seed: 9,
  })
  return {
    query:
      'insert into contacts (id, organization_id, production_id, name, email, phone, role, extraction_confidence, metadata) ' +
      'select u.id, $2::uuid, $3::uuid, u.name, u.email, u.phone, u.role, u.conf, u.meta ' +
      'from unnest($1::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::numeric[], $9::text[]::jsonb[]) ' +
      'as u(id, name, email, phone, role, conf, meta)',
    params: [
      rows.map((c) => c.id),
      side.organizationId,
      side.productionId,
      rows.map((c) => c.name),
      rows.map((c) => c.email),
      rows.map((c) => c.phone),
      rows.map((c) => c.role),
      rows.map((c) => c.extractionConfidence),
      rows.map((c) => JSON.stringify(c.metadata)),
    ],
  }
}

class Rollback extends Error {}

async function explainOnce(
  side: Side,
  query: string,
  params: unknown[],
  floorFor: Workload | undefined,
): Promise<TriggerTimes> {
  let plan: ExplainJson[number] | undefined
  try {
    await side.admin.begin(async (tx) => {
      if (floorFor !== undefined) {
        // As the owner, before the role switch; gone with the rollback.
        await tx.unsafe(
          `create function ${FLOOR_TRIGGER}() returns trigger language plpgsql as 'begin return null; end'`,
        )
        await tx.unsafe(
          floorFor === 'update'
            ? `create trigger ${FLOOR_TRIGGER} after update on contacts referencing old table as old_rows new table as ` +
                `new_rows for each statement execute function ${FLOOR_TRIGGER}()`
            : `create trigger ${FLOOR_TRIGGER} after insert on contacts referencing new table as new_rows ` +
                `for each statement execute function ${FLOOR_TRIGGER}()`,
        )
      }
      const settings = benchSettings(side.organizationId, CONTEXT)
      await tx.unsafe(settings.text, settings.params)
      const rows = await tx.unsafe<{ 'QUERY PLAN': ExplainJson }[]>(
        `explain (analyze, format json) ${query}`,
        params as postgres.ParameterOrJSON<never>[],
      )
      plan = rows[0]?.['QUERY PLAN'][0]
      throw new Rollback()
    })
  } catch (error) {
    if (!(error instanceof Rollback)) throw error
  }
  if (plan === undefined) throw new Error('EXPLAIN returned nothing')
  const triggers = plan.Triggers ?? []
  const measured = (name: string): boolean => name.startsWith('contacts_audit_') || name === FLOOR_TRIGGER
  return {
    executionMs: plan['Execution Time'],
    triggerMs: triggers.filter((t) => measured(t['Trigger Name'])).reduce((a, t) => a + t.Time, 0),
    foreignKeyMs: triggers.filter((t) => t['Constraint Name'] !== undefined).reduce((a, t) => a + t.Time, 0),
  }
}

// ---------------------------------------------------------------------------------------------
// The report

interface TablesInput {
  sizes: Sizes
  results: BenchResult[]
  metrics: Map<string, CaseMetrics>
  triggers: Map<string, TriggerTimes>
  serverCpuKnown: boolean
}

interface Comparison {
  workload: Workload
  label: string
  target: number
  /** what is compared: per-operation latency (single rows) or the batch time */
  auditMs: number
  plainMs: number
  ratio: number
  /** per round: audit ÷ no-audit of that round's figure; rounds over the target */
  perRound: { min: number; max: number; over: number }
}

function buildTables(input: TablesInput): NumbersTable[] {
  const { sizes, metrics, triggers } = input
  const m = (workload: Workload, side: string): CaseMetrics => metrics.get(`${workload}/${side}`) as CaseMetrics
  const runMedians = (workload: Workload, side: string): number[] =>
    m(workload, side).latencies.map((run) => quantile(Float64Array.from(run).sort(), 0.5))
  const pooled = (workload: Workload, side: string, q: number): number =>
    quantile(Float64Array.from(m(workload, side).latencies.flatMap((run) => [...run])).sort(), q)

  const compare = (workload: Workload, label: string, target: number): Comparison => {
    const audit = runMedians(workload, AUDIT)
    const plain = runMedians(workload, NO_AUDIT)
    const perRound = audit.map((a, i) => a / (plain[i] ?? Number.NaN))
    const auditMs = pooled(workload, AUDIT, 0.5)
    const plainMs = pooled(workload, NO_AUDIT, 0.5)
    return {
      workload,
      label,
      target,
      auditMs,
      plainMs,
      ratio: auditMs / plainMs,
      perRound: {
        min: Math.min(...perRound),
        max: Math.max(...perRound),
        over: perRound.filter((r) => r > target).length,
      },
    }
  }
  const comparisons = [
    compare('create', '`create`, one row: median latency per call', TARGETS.singleRow),
    compare('update', '`update`, one row: median latency per call', TARGETS.singleRow),
    compare('createMany', `\`createMany\`, ${sizes.batch.toLocaleString('en-US')} rows: median time`, TARGETS.batch),
  ]
  const us = (ms: number): string => (Number.isFinite(ms) ? Math.round(ms * 1000).toLocaleString('en-US') : 'n/a')
  const time = (c: Comparison, ms: number): string =>
    c.workload === 'createMany' ? `${formatMs(ms)} ms` : `${us(ms)} µs`
  const int = (n: number): string => (Number.isFinite(n) ? (Math.round(n) || 0).toLocaleString('en-US') : 'n/a')
  const explain = (workload: Workload, variant: ExplainVariant): TriggerTimes =>
    triggers.get(`${workload}/${variant}`) ?? {
      executionMs: Number.NaN,
      triggerMs: Number.NaN,
      foreignKeyMs: Number.NaN,
    }
  // 1. The targets.
  const targetsTable: NumbersTable = {
    title:
      `Targets: audit ÷ no audit ≤ ${formatRatio(TARGETS.singleRow)} for one row, ≤ ${formatRatio(TARGETS.batch)} ` +
      `for a ${sizes.batch.toLocaleString('en-US')}-row batch`,
    header: ['workload', AUDIT, NO_AUDIT, `${AUDIT} ÷ ${NO_AUDIT}`, 'per round (min–max)', 'target', 'verdict'],
    rows: comparisons.map((c) => [
      c.label,
      time(c, c.auditMs),
      time(c, c.plainMs),
      formatRatio(c.ratio),
      `${formatRatio(c.perRound.min)}–${formatRatio(c.perRound.max)}`,
      `≤ ${formatRatio(c.target)}`,
      c.ratio <= c.target
        ? c.perRound.over === 0
          ? 'met (every round)'
          : `met (median; ${c.perRound.over} of ${runMedians(c.workload, AUDIT).length} rounds over)`
        : `**missed** by ${formatPercent(c.ratio / c.target - 1)}`,
    ]),
  }

  // 2. Where the difference goes.
  const perRow = (workload: Workload, side: string, total: (x: CaseMetrics) => number): number =>
    total(m(workload, side)) / m(workload, side).rows
  const costTable: NumbersTable = {
    title:
      "Per call and per row (server CPU from /proc of the pool's backends, Node CPU from process.cpuUsage, WAL from the LSN)",
    header: [
      'workload',
      'database',
      'latency median / p95 ms (per call; createMany: per batch)',
      'server CPU µs per row',
      'Node CPU µs per row',
      'WAL bytes per row',
    ],
    rows: (['create', 'update', 'createMany'] as const).flatMap((workload) =>
      [AUDIT, NO_AUDIT].map((side) => [
        workload,
        side,
        `${formatMs(pooled(workload, side, 0.5))} / ${formatMs(pooled(workload, side, 0.95))}`,
        input.serverCpuKnown ? int(perRow(workload, side, (x) => x.serverCpuMicros)) : 'n/a',
        int(perRow(workload, side, (x) => x.clientCpuMicros)),
        int(perRow(workload, side, (x) => x.walBytes)),
      ]),
    ),
  }
  const explainTable: NumbersTable = {
    title:
      `EXPLAIN ANALYZE of the statement alone, as the app role, rolled back (medians of ${sizes.explainSingle} ` +
      `single-row and ${sizes.explainBatch} batch runs)`,
    header: [
      'statement',
      'no trigger ms',
      'no-op statement trigger ms',
      'audit trigger ms',
      'of it, the audit function ms',
      'FK triggers ms (audit / none)',
    ],
    rows: (['create', 'update', 'createMany'] as const).map((workload) => [
      workload === 'createMany'
        ? `insert of ${sizes.batch.toLocaleString('en-US')} rows`
        : workload === 'create'
          ? 'insert of 1 row'
          : 'update of 1 row',
      formatMs(explain(workload, 'none').executionMs),
      formatMs(explain(workload, 'floor').executionMs),
      formatMs(explain(workload, 'audit').executionMs),
      formatMs(explain(workload, 'audit').triggerMs),
      `${formatMs(explain(workload, 'audit').foreignKeyMs)} / ${formatMs(explain(workload, 'none').foreignKeyMs)}`,
    ]),
  }

  return [targetsTable, costTable, explainTable]
}
