// Over 350 lines because a suite is one experiment: fixture, every contender, the check that all return the same rows,
// the probes and the tables, kept together so what is measured reads in one place.
/**
 * Batch inserts on the real server with every index and the audit triggers on (issue 5, item 4):
 * N contacts (100k by default) inserted four ways, all in one transaction per run —
 *
 * - **createMany**: the library, `db.tenant(org).contacts.createMany(rows, { returning: 'count' })`, as the app
 *   role under RLS (validation, `INSERT … SELECT … FROM unnest(text[]…)` in 10k chunks);
 * - **drizzle**: naive drizzle as the owner, `db.insert(contacts).values(chunk)` in chunks under 65,534 parameters;
 * - **unnest ×10,000**: raw postgres.js as the owner, `insert … select * from unnest($1::uuid[], …)` in 10k chunks;
 * - **copy**: raw postgres.js `COPY … FROM STDIN` as the owner.
 *
 * The audit trigger fires for every one of them (owner inserts included): each run must leave exactly N
 * contacts and N contact insert audit rows. The second bench decides the default key: 1M rows into a
 * minimal table keyed by UUIDv7 (the `uuidv7` package) vs UUIDv4 (`crypto.randomUUID()`), insert rate and
 * primary-key index size.
 */
import { randomUUID } from 'node:crypto'
import { loadavg } from 'node:os'
import { drizzle } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import { uuidv7 } from 'uuidv7'
import { createDatabase, type Database } from '../../src/client/create-database'
import { contacts as contactsTable } from '../../src/schema/contacts'
import { BENCH_CONTACT_COLUMNS, generateContacts, toCreateInput } from '../fixtures/contacts'
import {
  formatMs,
  formatRate,
  formatRatio,
  runBench,
  type BenchCase,
  type BenchResult,
  type BenchSuite,
  type NumbersTable,
  type SuiteContext,
} from '../harness'
import { BackendCpu } from '../server-cpu'
import { insertWithCopy, insertWithUnnest, MAX_BIND_PARAMETERS, UNNEST_CHUNK_ROWS } from './insert-reference'

const OURS = 'createMany'
const DRIZZLE = 'drizzle'
const UNNEST = `unnest ×${UNNEST_CHUNK_ROWS.toLocaleString('en-US')}`
const COPY = 'copy'

/** The issue's targets, as throughput ratios: createMany ÷ naive drizzle, createMany ÷ raw unnest. */
const TARGETS = { vsDrizzle: 2, vsUnnest: 0.7 }

/** Rows of the key bench and its rounds (no warm-up: a 1M-row run is its own warm-up for the next). */
const KEY_SIZES = { default: { rows: 1_000_000, rounds: 3 }, quick: { rows: 50_000, rounds: 2 } }
const KEY_TABLES = { uuidv7: 'bench_keys_v7', uuidv4: 'bench_keys_v4' } as const
type KeyKind = keyof typeof KEY_TABLES

const COLUMN_LIST = BENCH_CONTACT_COLUMNS.join(', ')
/** Put on the tenant's audit context, so that createMany's audit rows prove they ran in the tenant transaction. */
const REQUEST_ID = 'bench-batch-insert'

type Sql = postgres.Sql

/** `npm run bench -- batch-insert` */
export const batchInsert: BenchSuite = {
  name: 'batch-insert',
  title:
    'Batch insert with every index and the audit triggers on: `contacts.createMany` vs naive drizzle ' +
    '`insert().values()` vs raw `unnest` vs `COPY`; and UUIDv7 vs UUIDv4 primary keys over 1M rows',
  async run(context) {
    const admin = postgres(context.url, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: 'bench-bi-admin' },
    })
    const clients = new Map<string, Sql>()
    const client = (applicationName: string): Sql => {
      const existing = clients.get(applicationName)
      if (existing) return existing
      const sql = postgres(context.url, {
        max: 1,
        onnotice: () => {},
        connection: { application_name: applicationName },
      })
      clients.set(applicationName, sql)
      return sql
    }
    const db = createDatabase({
      primary: { url: context.runtimeUrl, connection: { application_name: appName(OURS) } },
      pool: { max: 2, idleTimeoutSeconds: 0 },
    })
    const loadBefore = loadavg()
    try {
      const insert = await benchInserts(context, admin, db, client)
      const keys = await benchKeys(context, admin, client('bench-bi-keys'))
      const loadAfter = loadavg()
      const load: NumbersTable = {
        title: 'Load average of the machine (1 / 5 / 15 min)',
        header: ['when', 'load average'],
        rows: [
          ['before the suite', loadBefore.map((l) => l.toFixed(2)).join(' / ')],
          ['after the suite', loadAfter.map((l) => l.toFixed(2)).join(' / ')],
        ],
      }
      return { results: [insert.result, keys.result], tables: [...insert.tables, ...keys.tables, load] }
    } finally {
      await db.close().catch(() => undefined)
      for (const sql of clients.values()) await sql.end({ timeout: 5 }).catch(() => undefined)
      await admin.end({ timeout: 5 }).catch(() => undefined)
    }
  },
}

function appName(caseName: string): string {
  return `bench-bi-${caseName.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`
}

// ---------------------------------------------------------------------------------------------
// 1. Four ways to insert N contacts

/** Per case, over the measured runs (warm-up excluded). */
interface CaseMetrics {
  nodeCpuMicros: number[]
  /** NaN entries when the server's backends cannot be read */
  serverCpuMicros: number[]
  walBytes: number[]
}

async function benchInserts(
  context: SuiteContext,
  admin: Sql,
  db: Database,
  client: (applicationName: string) => Sql,
): Promise<{ result: BenchResult; tables: NumbersTable[] }> {
  const { rows } = context
  const [role] = await admin<{ name: string; bypass: boolean }[]>`
    select current_user as name, rolsuper or rolbypassrls as bypass from pg_roles where rolname = current_user`
  if (role?.bypass !== true) {
    throw new Error(`batch-insert needs a superuser or BYPASSRLS connection for its owner cases and COPY`)
  }
  const triggers = await admin<{ name: string }[]>`
    select tgname as name from pg_trigger
    where tgrelid = 'contacts'::regclass and not tgisinternal and (tgtype::int & 4) <> 0 and tgenabled <> 'D'
    order by 1`
  if (!triggers.some((t) => t.name === 'contacts_audit_insert')) {
    throw new Error(
      `contacts_audit_insert is missing or disabled: this suite measures inserts with the audit trigger on`,
    )
  }
  const indexes = await admin<{ name: string }[]>`
    select indexrelid::regclass::text as name from pg_index where indrelid = 'contacts'::regclass order by 1`
  const [{ n: foreignKeys } = { n: 0 }] = await admin<{ n: number }[]>`
    select count(*)::int as n from pg_constraint where conrelid = 'contacts'::regclass and contype = 'f'`
  const canCheckpoint = await admin`checkpoint`.then(
    () => true,
    () => false,
  )
  const serverCpu = context.server.source === 'local-binaries' ? new BackendCpu(admin) : undefined

  context.log(`generating ${rows.toLocaleString('en-US')} contacts`)
  const contacts = generateContacts(rows, {
    organizationId: context.organizationId,
    productionId: context.productionId,
  })
  // What an app holds before calling createMany: the same contacts without the tenant.
  const inputs = contacts.map((c) => toCreateInput(c, { withId: true }))

  const tenant = db.tenant(context.organizationId, { requestId: REQUEST_ID })
  const drizzleSql = client(appName(DRIZZLE))
  const naive = drizzle(drizzleSql)
  // Drizzle binds one parameter per supplied column and writes DEFAULT for the rest: size chunks from the SQL.
  const paramsPerRow = naive.insert(contactsTable).values(contacts.slice(0, 1)).toSQL().params.length
  const drizzleChunkRows = Math.floor(MAX_BIND_PARAMETERS / paramsPerRow)
  const rawSql = client(appName(UNNEST))
  const copySql = client(appName(COPY))

  const work: { name: string; sql: Sql | undefined; run: () => Promise<void> }[] = [
    {
      name: OURS,
      sql: undefined,
      run: async () => {
        const count = await tenant.contacts.createMany(inputs, { returning: 'count' })
        if (count !== rows) throw new Error(`createMany returned ${count}, expected ${rows}`)
      },
    },
    {
      name: DRIZZLE,
      sql: drizzleSql,
      run: () =>
        naive.transaction(async (tx) => {
          for (let start = 0; start < contacts.length; start += drizzleChunkRows) {
            await tx.insert(contactsTable).values(contacts.slice(start, start + drizzleChunkRows))
          }
        }),
    },
    { name: UNNEST, sql: rawSql, run: () => insertWithUnnest(rawSql, contacts, UNNEST_CHUNK_ROWS) },
    { name: COPY, sql: copySql, run: () => insertWithCopy(copySql, contacts) },
  ]

  let reference: { caseName: string; digest: string } | undefined
  const reset = async (): Promise<void> => {
    await admin`truncate contacts, audit_logs`
    if (canCheckpoint) await admin`checkpoint`
  }
  const verify = async (caseName: string): Promise<void> => {
    const [found] = await admin<
      { contacts: number; digest: string; audit: number; matched: number; orphans: number; tagged: number }[]
    >`
      select (select count(*)::int from contacts) as contacts,
             (select md5(coalesce(string_agg(t::text, E'\n' order by t.id), ''))
                from (select ${admin.unsafe(COLUMN_LIST)}, deleted_at from contacts) t) as digest,
             (select count(*)::int from audit_logs) as audit,
             (select count(distinct entity_id)::int from audit_logs
               where entity_type = 'contacts' and action = 'insert') as matched,
             (select count(*)::int from (
                select entity_id from audit_logs where entity_type = 'contacts' and action = 'insert'
                except select id from contacts) x) as orphans,
             (select count(*)::int from audit_logs where request_id = ${REQUEST_ID}) as tagged`
    if (found?.contacts !== rows) throw new Error(`${caseName}: ${found?.contacts} contacts, expected ${rows}`)
    if (found.audit !== rows || found.matched !== rows || found.orphans !== 0) {
      throw new Error(
        `${caseName}: ${found.audit} audit rows, ${found.matched} distinct contacts insert audit rows, ` +
          `${found.orphans} naming no stored contact; expected ${rows}, ${rows} and 0`,
      )
    }
    const expectedTagged = caseName === OURS ? rows : 0
    if (found.tagged !== expectedTagged) {
      throw new Error(
        `${caseName}: ${found.tagged} audit rows carry the tenant's request id, expected ${expectedTagged}`,
      )
    }
    if (reference === undefined) reference = { caseName, digest: found.digest }
    else if (reference.digest !== found.digest) {
      throw new Error(`${caseName} stored different contents than ${reference.caseName} (md5 of all rows differs)`)
    }
  }
  const walPosition = async (): Promise<string> =>
    (await admin<{ lsn: string }[]>`select pg_current_wal_insert_lsn()::text as lsn`)[0]?.lsn ?? '0/0'
  const walSince = async (from: string): Promise<number> =>
    Number(
      (await admin<{ bytes: string }[]>`select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${from})::text as bytes`)[0]
        ?.bytes ?? Number.NaN,
    )

  const metrics = new Map<string, CaseMetrics>()
  const cases: BenchCase[] = work.map((w) => {
    const m: CaseMetrics = { nodeCpuMicros: [], serverCpuMicros: [], walBytes: [] }
    metrics.set(w.name, m)
    const application = appName(w.name)
    let runs = 0
    let cpuBefore = process.cpuUsage()
    let cpuUsed = { user: 0, system: 0 }
    let serverBefore: number | undefined
    let walFrom = '0/0'
    return {
      name: w.name,
      setup: async () => {
        await reset()
        // Open the case's connection untimed (postgres.js connects lazily), like a warm pool in an app.
        if (w.sql) await w.sql`select 1`
        serverBefore = await serverCpu?.ticks(application)
        walFrom = await walPosition()
        cpuBefore = process.cpuUsage()
      },
      run: async () => {
        await w.run()
        cpuUsed = process.cpuUsage(cpuBefore)
      },
      teardown: async () => {
        const wal = await walSince(walFrom)
        const serverAfter = await serverCpu?.ticks(application)
        await verify(w.name)
        if (runs >= context.warmupRounds) {
          m.nodeCpuMicros.push(cpuUsed.user + cpuUsed.system)
          m.serverCpuMicros.push(
            serverBefore === undefined || serverAfter === undefined ? Number.NaN : serverAfter - serverBefore,
          )
          m.walBytes.push(wal)
        }
        runs++
      },
    }
  })

  const result = await runBench(
    `${rows.toLocaleString('en-US')} contacts, one transaction per run, audit triggers on`,
    cases,
    {
      rounds: context.rounds,
      warmupRounds: context.warmupRounds,
      baselines: [DRIZZLE, UNNEST],
      ops: rows,
      opsUnit: 'rows',
      log: context.log,
    },
  )
  await reset()

  return {
    result,
    tables: insertTables(result, metrics, {
      rows,
      paramsPerRow,
      drizzleChunkRows,
      role: role.name,
      indexes,
      foreignKeys,
      triggers,
      canCheckpoint,
    }),
  }
}

function insertTables(
  result: BenchResult,
  metrics: Map<string, CaseMetrics>,
  info: {
    rows: number
    paramsPerRow: number
    drizzleChunkRows: number
    role: string
    indexes: readonly { name: string }[]
    foreignKeys: number
    triggers: readonly { name: string }[]
    canCheckpoint: boolean
  },
): NumbersTable[] {
  const stats = new Map(result.cases.map((c) => [c.name, c]))
  const ours = stats.get(OURS)
  // Throughput ratios: baseline time ÷ our time (the inverse of the table's time ratios).
  const speedup = (baseline: string) => {
    const ratio = ours?.ratios.find((r) => r.baseline === baseline)
    if (ratio === undefined) return undefined
    return {
      ofMedians: 1 / ratio.ofMedians,
      min: 1 / ratio.paired.max,
      max: 1 / ratio.paired.min,
      median: 1 / ratio.paired.median,
    }
  }
  const vsDrizzle = speedup(DRIZZLE)
  const vsUnnest = speedup(UNNEST)
  const met = (value: number | undefined, target: number) =>
    value === undefined ? 'n/a' : value >= target ? 'met' : '**missed**'
  const row = (label: string, s: ReturnType<typeof speedup>, target: number): string[] => [
    label,
    `≥ ${formatRatio(target)}`,
    s ? formatRatio(s.ofMedians) : 'n/a',
    s ? `${formatRatio(s.median)} (${formatRatio(s.min)}–${formatRatio(s.max)})` : 'n/a',
    met(s?.ofMedians, target),
  ]

  const median = (values: readonly number[]) => {
    const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
    if (sorted.length === 0) return Number.NaN
    const mid = (sorted.length - 1) / 2
    return ((sorted[Math.floor(mid)] as number) + (sorted[Math.ceil(mid)] as number)) / 2
  }
  const perRowMicros = (micros: number) => (Number.isFinite(micros) ? `${(micros / info.rows).toFixed(1)}` : 'n/a')
  const costRows = result.cases.map((c) => {
    const m = metrics.get(c.name)
    const node = median(m?.nodeCpuMicros ?? [])
    const server = median(m?.serverCpuMicros ?? [])
    const wal = median(m?.walBytes ?? [])
    return [
      c.name,
      formatMs(c.medianMs),
      formatMs(node / 1000),
      Number.isFinite(server) ? formatMs(server / 1000) : 'n/a',
      `${perRowMicros(node)} / ${perRowMicros(server)}`,
      Number.isFinite(wal) ? (wal / info.rows).toFixed(0) : 'n/a',
    ]
  })

  return [
    {
      title: 'Targets (throughput, createMany ÷ …)',
      header: ['compared with', 'target', 'ratio of medians', 'per round: median (min–max)', 'verdict'],
      rows: [
        row('naive drizzle', vsDrizzle, TARGETS.vsDrizzle),
        row(`raw ${UNNEST} (same triggers)`, vsUnnest, TARGETS.vsUnnest),
      ],
    },
    {
      title: "CPU and WAL per case (medians over the measured runs; server CPU: the case's own backends, from /proc)",
      header: ['case', 'median ms', 'Node CPU ms', 'server CPU ms', 'µs/row Node / server', 'WAL bytes/row'],
      rows: costRows,
    },
    {
      title: 'What every run inserted into, and what it sent',
      header: ['what', 'value'],
      rows: [
        ['owner role (drizzle, unnest, copy)', info.role],
        ['indexes on contacts', info.indexes.map((i) => i.name).join(', ')],
        ['foreign keys', String(info.foreignKeys)],
        ['insert triggers', info.triggers.map((t) => t.name).join(', ')],
        ['reset before each run', `TRUNCATE contacts, audit_logs${info.canCheckpoint ? ' + CHECKPOINT' : ''}`],
        [
          'drizzle: parameters per row, rows per statement, statements',
          `${info.paramsPerRow}, ${info.drizzleChunkRows.toLocaleString('en-US')} ` +
            `(≤ ${MAX_BIND_PARAMETERS.toLocaleString('en-US')} parameters), ${Math.ceil(info.rows / info.drizzleChunkRows)}`,
        ],
        ['unnest and createMany: rows per statement', UNNEST_CHUNK_ROWS.toLocaleString('en-US')],
      ],
    },
  ]
}

// ---------------------------------------------------------------------------------------------
// 2. UUIDv7 vs UUIDv4 primary keys

async function benchKeys(
  context: SuiteContext,
  admin: Sql,
  sql: Sql,
): Promise<{ result: BenchResult; tables: NumbersTable[] }> {
  const sizes = context.quick ? KEY_SIZES.quick : KEY_SIZES.default
  const rows = sizes.rows
  const kinds: KeyKind[] = ['uuidv7', 'uuidv4']
  context.log(`generating ${rows.toLocaleString('en-US')} UUIDv7 and UUIDv4 keys`)
  const ids: Record<KeyKind, string[]> = {
    uuidv7: Array.from({ length: rows }, () => uuidv7()),
    uuidv4: Array.from({ length: rows }, () => randomUUID()),
  }
  const payloads = Array.from({ length: rows }, (_, i) => `payload ${i}`)
  const canCheckpoint = await admin`checkpoint`.then(
    () => true,
    () => false,
  )
  const hasPgstattuple = await admin`create extension if not exists pgstattuple`.then(
    () => true,
    () => false,
  )

  const sizesSeen = new Map<KeyKind, { index: number[]; table: number[]; wal: number[] }>()
  const fill = new Map<KeyKind, { density: number; fragmentation: number; leafPages: number }>()
  try {
    for (const kind of kinds) {
      await admin.unsafe(`drop table if exists ${KEY_TABLES[kind]}`)
      await admin.unsafe(`create table ${KEY_TABLES[kind]} (id uuid primary key, payload text not null)`)
      sizesSeen.set(kind, { index: [], table: [], wal: [] })
    }
    const cases: BenchCase[] = kinds.map((kind) => {
      const table = KEY_TABLES[kind]
      const seen = sizesSeen.get(kind) as { index: number[]; table: number[]; wal: number[] }
      let walFrom = '0/0'
      return {
        name: kind,
        setup: async () => {
          await admin.unsafe(`truncate ${table}`)
          if (canCheckpoint) await admin`checkpoint`
          await sql`select 1`
          walFrom = (await admin<{ lsn: string }[]>`select pg_current_wal_insert_lsn()::text as lsn`)[0]?.lsn ?? '0/0'
        },
        run: () =>
          sql.begin(async (tx) => {
            const keys = ids[kind]
            for (let start = 0; start < rows; start += UNNEST_CHUNK_ROWS) {
              await tx`
                insert into ${tx(table)} (id, payload)
                select * from unnest(
                  ${keys.slice(start, start + UNNEST_CHUNK_ROWS)}::uuid[],
                  ${payloads.slice(start, start + UNNEST_CHUNK_ROWS)}::text[]
                )`
            }
          }),
        teardown: async () => {
          const [measured] = await admin<{ wal: string; n: number; index: string; table: string }[]>`
            select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${walFrom})::text as wal,
                   (select count(*)::int from ${admin(table)}) as n,
                   pg_relation_size(${`${table}_pkey`}::regclass)::text as index,
                   pg_relation_size(${table}::regclass)::text as table`
          if (measured?.n !== rows) throw new Error(`${kind}: ${measured?.n} rows in ${table}, expected ${rows}`)
          seen.index.push(Number(measured.index))
          seen.table.push(Number(measured.table))
          seen.wal.push(Number(measured.wal))
          if (hasPgstattuple && !fill.has(kind)) {
            const [stat] = await admin<{ density: number; fragmentation: number; leafPages: number }[]>`
              select avg_leaf_density::float8 as density, leaf_fragmentation::float8 as fragmentation,
                     leaf_pages::int as "leafPages"
              from pgstatindex(${`${table}_pkey`})`
            if (stat) fill.set(kind, stat)
          }
        },
      }
    })
    const result = await runBench(
      `${rows.toLocaleString('en-US')} rows into \`(id uuid primary key, payload text)\`, raw unnest in ` +
        `${UNNEST_CHUNK_ROWS.toLocaleString('en-US')}-row chunks, one transaction per run`,
      cases,
      { rounds: sizes.rounds, warmupRounds: 0, baselines: ['uuidv7'], ops: rows, opsUnit: 'rows', log: context.log },
    )

    const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
    const last = (values: readonly number[]) => values[values.length - 1] ?? Number.NaN
    const sizeRows = kinds.map((kind) => {
      const seen = sizesSeen.get(kind) as { index: number[]; table: number[]; wal: number[] }
      const f = fill.get(kind)
      const stat = result.cases.find((c) => c.name === kind)
      const walPerRow = seen.wal.map((w) => w / rows).sort((a, b) => a - b)
      return [
        kind,
        stat?.opsPerSecond ? formatRate(stat.opsPerSecond.median) : 'n/a',
        mib(last(seen.index)),
        f ? `${f.density.toFixed(1)} % / ${f.leafPages.toLocaleString('en-US')}` : 'n/a (no pgstattuple)',
        mib(last(seen.table)),
        walPerRow.length > 0 ? `${(walPerRow[Math.floor((walPerRow.length - 1) / 2)] as number).toFixed(0)}` : 'n/a',
      ]
    })
    const v7 = sizesSeen.get('uuidv7')
    const v4 = sizesSeen.get('uuidv4')
    const indexRatio = v7 && v4 ? last(v4.index) / last(v7.index) : Number.NaN
    const v4Case = result.cases.find((c) => c.name === 'uuidv4')
    const timeRatio = v4Case?.ratios.find((r) => r.baseline === 'uuidv7')
    const tables: NumbersTable[] = [
      {
        title: `Keys after ${rows.toLocaleString('en-US')} rows`,
        header: [
          'key',
          'rows/s (median)',
          'primary-key index after the run',
          'leaf density / leaf pages (pgstatindex)',
          'heap',
          'WAL bytes/row (median)',
        ],
        rows: sizeRows,
      },
      {
        title: 'UUIDv4 ÷ UUIDv7',
        header: ['what', 'ratio'],
        rows: [
          ['primary-key index size', Number.isFinite(indexRatio) ? formatRatio(indexRatio) : 'n/a'],
          [
            'time per run (per round min–max)',
            timeRatio
              ? `${formatRatio(timeRatio.ofMedians)} (${formatRatio(timeRatio.paired.min)}–${formatRatio(timeRatio.paired.max)})`
              : 'n/a',
          ],
        ],
      },
    ]
    return { result, tables }
  } finally {
    for (const kind of kinds) await admin.unsafe(`drop table if exists ${KEY_TABLES[kind]}`).catch(() => undefined)
  }
}
