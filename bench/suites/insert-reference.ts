/**
 * The reference figures for batch inserts: N contacts (100k by default) inserted on the real server
 * by raw postgres.js, as the owner, three ways — multi-row VALUES in chunks under the bind-parameter
 * limit, `INSERT … SELECT FROM unnest(arrays)`, and `COPY FROM STDIN`. Later work (createMany, audit
 * on/off) is measured against these.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { isDeepStrictEqual } from 'node:util'
import postgres from 'postgres'
import { APP_ROLE } from '../../src/schema/columns'
import { BENCH_CONTACT_COLUMNS, generateContacts, type BenchContact } from '../fixtures/contacts'
import {
  benchSettings,
  runBench,
  type BenchCase,
  type BenchSuite,
  type NumbersTable,
  type SuiteContext,
  type SuiteReport,
} from '../harness'

/** The most bind parameters one statement may carry (the protocol counts them in an Int16; 65,534 is safe). */
export const MAX_BIND_PARAMETERS = 65_534

/** Rows per multi-row VALUES statement: as many as fit under {@link MAX_BIND_PARAMETERS}. */
const VALUES_CHUNK_ROWS = Math.floor(MAX_BIND_PARAMETERS / BENCH_CONTACT_COLUMNS.length)

/**
 * Rows per unnest statement in the chunked variant, and the unnest baseline. Measured with
 * `BENCH_UNNEST_CHUNKS=all,50000,20000,10000,5000,2000`: 5k–10k fastest, one 100k statement ~1.2× slower.
 */
export const UNNEST_CHUNK_ROWS = 10_000

/** unnest chunk sizes measured (env `BENCH_UNNEST_CHUNKS`, comma-separated, `all` = one statement). */
const UNNEST_CHUNKS = parseChunkList(process.env.BENCH_UNNEST_CHUNKS) ?? [Infinity, UNNEST_CHUNK_ROWS]

// Rows per string handed to the COPY stream: big enough that per-write overhead vanishes, small enough
// to keep memory flat.
const COPY_ROWS_PER_WRITE = 1_000

const COLUMN_LIST = BENCH_CONTACT_COLUMNS.join(', ')

type Sql = postgres.Sql

/** `npm run bench -- insert-reference` */
export const insertReference: BenchSuite = {
  name: 'insert-reference',
  title: 'Batch insert reference: raw postgres.js multi-row VALUES vs unnest arrays vs COPY, as owner',
  async run(context) {
    const sql = postgres(context.url, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: 'callsheet-bench' },
    })
    try {
      return await runSuite(sql, context)
    } finally {
      await sql.end({ timeout: 5 })
    }
  },
}

async function runSuite(sql: Sql, context: SuiteContext): Promise<SuiteReport> {
  const { rows } = context
  const [role] = await sql<{ name: string; bypass: boolean }[]>`
    select current_user as name, rolsuper or rolbypassrls as bypass from pg_roles where rolname = current_user`
  if (role?.bypass !== true) {
    throw new Error(
      `insert-reference needs a superuser or BYPASSRLS connection (COPY FROM is refused under RLS); ${role?.name ?? 'this role'} is neither`,
    )
  }
  // tgtype bit 2 (value 4) is TRIGGER_TYPE_INSERT.
  const triggers = await sql<{ name: string; onInsert: boolean }[]>`
    select tgname as name, (tgtype::int & 4) <> 0 as "onInsert"
    from pg_trigger where tgrelid = 'contacts'::regclass and not tgisinternal order by 1`
  const [{ n: foreignKeys } = { n: 0 }] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_constraint where conrelid = 'contacts'::regclass and contype = 'f'`
  const indexes = await sql<{ name: string }[]>`
    select indexrelid::regclass::text as name from pg_index where indrelid = 'contacts'::regclass order by 1`
  const copyRefusal = await copyRefusalUnderRls(sql, context.organizationId)
  if (copyRefusal === undefined) {
    throw new Error(`COPY into contacts as ${APP_ROLE} was accepted: row-level security is not protecting contacts`)
  }
  const canCheckpoint = await sql`checkpoint`.then(
    () => true,
    () => false,
  )

  context.log(`generating ${rows.toLocaleString('en-US')} contacts`)
  const contacts = generateContacts(rows, {
    organizationId: context.organizationId,
    productionId: context.productionId,
  })
  const samples = sampleContacts(contacts)

  let referenceDigest: { caseName: string; digest: string } | undefined
  const reset = async (): Promise<void> => {
    // audit_logs too: once audit triggers exist, each run must start from the same empty state.
    await sql`truncate contacts, audit_logs`
    if (canCheckpoint) await sql`checkpoint`
  }
  const verify = async (caseName: string): Promise<void> => {
    const [fingerprint] = await sql<{ n: number; digest: string }[]>`
      select count(*)::int as n, md5(coalesce(string_agg(t::text, E'\n' order by t.id), '')) as digest
      from (select ${sql.unsafe(COLUMN_LIST)}, deleted_at from contacts) t`
    if (fingerprint?.n !== rows) {
      throw new Error(`${caseName} left ${fingerprint?.n ?? 'no'} rows in contacts, expected exactly ${rows}`)
    }
    if (referenceDigest === undefined) referenceDigest = { caseName, digest: fingerprint.digest }
    else if (referenceDigest.digest !== fingerprint.digest) {
      throw new Error(
        `${caseName} stored different contents than ${referenceDigest.caseName} (md5 of all rows differs)`,
      )
    }
    await checkSamples(sql, caseName, samples)
  }

  const insertCases: { name: string; run: () => Promise<void> }[] = [
    { name: 'values', run: () => insertWithValues(sql, contacts) },
    // A chunk as large as the whole batch is the single statement: measure it once.
    ...[...new Set(UNNEST_CHUNKS.map((chunk) => (chunk >= rows ? Infinity : chunk)))].map((chunk) => ({
      name: unnestCaseName(chunk, rows),
      run: () => insertWithUnnest(sql, contacts, chunk),
    })),
    { name: 'copy', run: () => insertWithCopy(sql, contacts) },
  ]
  const cases: BenchCase[] = insertCases.map((c) => ({ ...c, setup: reset, teardown: () => verify(c.name) }))

  const unnestNames = insertCases.filter((c) => c.name.startsWith('unnest')).map((c) => c.name)
  const chosenUnnest = unnestCaseName(UNNEST_CHUNK_ROWS, rows)
  const unnestBaseline = unnestNames.includes(chosenUnnest) ? chosenUnnest : unnestNames[0]
  const result = await runBench(`${rows.toLocaleString('en-US')} contacts, one transaction per run`, cases, {
    rounds: context.rounds,
    warmupRounds: context.warmupRounds,
    baselines: ['copy', ...(unnestBaseline === undefined ? [] : [unnestBaseline])],
    ops: rows,
    opsUnit: 'rows',
    log: context.log,
  })
  await reset()

  const valuesStatements = Math.ceil(rows / VALUES_CHUNK_ROWS)
  const insertTriggers = triggers.filter((t) => t.onInsert).map((t) => t.name)
  const setup: NumbersTable = {
    title: 'What every run inserted into, and what it sent',
    header: ['what', 'value'],
    rows: [
      ['role', `${role.name} (superuser or BYPASSRLS)`],
      ['indexes on contacts', indexes.map((i) => i.name).join(', ')],
      ['foreign keys checked per row', String(foreignKeys)],
      ['triggers firing on insert', insertTriggers.join(', ') || 'none'],
      ['reset before each run', `TRUNCATE${canCheckpoint ? ' + CHECKPOINT' : ''}`],
      [
        'values: statements per run (rows each)',
        `${valuesStatements} (≤ ${VALUES_CHUNK_ROWS.toLocaleString('en-US')}; ${MAX_BIND_PARAMETERS.toLocaleString('en-US')} bind parameters max)`,
      ],
      ['copy: rows per write', COPY_ROWS_PER_WRITE.toLocaleString('en-US')],
      [`copy as ${APP_ROLE} in a tenant transaction`, copyRefusal],
    ],
  }
  return { results: [result], tables: [setup] }
}

async function insertWithValues(sql: Sql, contacts: readonly BenchContact[]): Promise<void> {
  await sql.begin(async (tx) => {
    for (let start = 0; start < contacts.length; start += VALUES_CHUNK_ROWS) {
      const rows = contacts.slice(start, start + VALUES_CHUNK_ROWS).map((c) => ({
        id: c.id,
        organization_id: c.organizationId,
        production_id: c.productionId,
        name: c.name,
        email: c.email,
        phone: c.phone,
        role: c.role,
        extraction_confidence: c.extractionConfidence,
        metadata: c.metadata as postgres.JSONValue,
      }))
      await tx`insert into contacts ${tx(rows, ...BENCH_CONTACT_COLUMNS)}`
    }
  })
}

/** Raw postgres.js `INSERT … SELECT * FROM unnest(…)` in chunks of `chunkRows`, one transaction (a reference for other suites). */
export async function insertWithUnnest(sql: Sql, contacts: readonly BenchContact[], chunkRows: number): Promise<void> {
  await sql.begin(async (tx) => {
    const step = Number.isFinite(chunkRows) ? chunkRows : contacts.length
    for (let start = 0; start < contacts.length; start += step) {
      const chunk = contacts.slice(start, start + step)
      await tx`
        insert into contacts (${tx.unsafe(COLUMN_LIST)})
        select * from unnest(
          ${chunk.map((c) => c.id)}::uuid[],
          ${chunk.map((c) => c.organizationId)}::uuid[],
          ${chunk.map((c) => c.productionId)}::uuid[],
          ${chunk.map((c) => c.name)}::text[],
          ${chunk.map((c) => c.email)}::text[],
          ${chunk.map((c) => c.phone)}::text[],
          ${chunk.map((c) => c.role)}::text[],
          ${chunk.map((c) => c.extractionConfidence)}::numeric[],
          ${chunk.map((c) => JSON.stringify(c.metadata))}::text[]::jsonb[]
        )`
    }
  })
}

/** `COPY contacts FROM STDIN` in one transaction, with a deadline (a reference for other suites). */
export async function insertWithCopy(sql: Sql, contacts: readonly BenchContact[]): Promise<void> {
  const copy = sql.begin(async (tx) => {
    const stream = await tx`copy contacts (${tx.unsafe(COLUMN_LIST)}) from stdin`.writable()
    await pipeline(Readable.from(copyText(contacts)), stream)
  })
  // postgres.js 3.4.9 never settles the writable when the server rejects the COPY data
  // (porsager/postgres#1173): without a deadline a bad row would hang the bench forever.
  const deadlineMs = 30_000 + contacts.length
  await withDeadline(
    copy,
    deadlineMs,
    `COPY did not finish within ${deadlineMs} ms: most likely the server rejected a row, which postgres.js never ` +
      'reports for COPY FROM STDIN (porsager/postgres#1173); check the server log',
  )
}

/**
 * Tries COPY as the app role inside a tenant transaction (rolled back) and returns the server's refusal,
 * or undefined if the COPY was accepted.
 */
async function copyRefusalUnderRls(sql: Sql, organizationId: string): Promise<string | undefined> {
  const attempt = sql.begin(async (tx) => {
    const settings = benchSettings(organizationId)
    await tx.unsafe(settings.text, settings.params)
    const stream = await tx`copy contacts (${tx.unsafe(COLUMN_LIST)}) from stdin`.writable()
    await pipeline(Readable.from([]), stream)
    throw new AcceptedCopy()
  })
  try {
    await withDeadline(attempt, 10_000, 'COPY as the app role neither failed nor finished within 10 s')
    return undefined
  } catch (error) {
    if (error instanceof AcceptedCopy) return undefined
    if (error instanceof postgres.PostgresError) return `${error.code}: ${error.message}`
    throw error
  }
}

class AcceptedCopy extends Error {}

async function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

function* copyText(contacts: readonly BenchContact[]): Generator<string> {
  let buffer = ''
  for (let i = 0; i < contacts.length; i++) {
    const c = contacts[i] as BenchContact
    buffer +=
      `${c.id}\t${c.organizationId}\t${c.productionId}\t${copyField(c.name)}\t${copyField(c.email)}\t` +
      `${copyField(c.phone)}\t${copyField(c.role)}\t${c.extractionConfidence === null ? '\\N' : String(c.extractionConfidence)}\t` +
      `${copyField(JSON.stringify(c.metadata))}\n`
    if ((i + 1) % COPY_ROWS_PER_WRITE === 0) {
      yield buffer
      buffer = ''
    }
  }
  if (buffer !== '') yield buffer
}

const COPY_SPECIAL = /[\\\t\n\r]/g
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }

/** A value in COPY text format: `\N` for NULL; backslash, tab, newline and carriage return escaped. */
function copyField(value: string | null): string {
  if (value === null) return '\\N'
  return value.replace(COPY_SPECIAL, (char) => COPY_ESCAPES[char] as string)
}

function unnestCaseName(chunkRows: number, rows: number): string {
  return Number.isFinite(chunkRows) && chunkRows < rows ? `unnest ×${chunkRows.toLocaleString('en-US')}` : 'unnest'
}

function parseChunkList(value: string | undefined): number[] | undefined {
  if (value === undefined || value.trim() === '') return undefined
  return value.split(',').map((part) => {
    const trimmed = part.trim()
    if (trimmed === 'all') return Infinity
    const n = Number(trimmed)
    if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_UNNEST_CHUNKS: "${trimmed}" is not a row count or "all"`)
    return n
  })
}

// Every 97th contact carries tabs, line breaks, quotes or backslashes: check a few of those and a few plain ones.
function sampleContacts(contacts: readonly BenchContact[]): BenchContact[] {
  const picks = new Set<number>()
  for (let i = 13; i < contacts.length && picks.size < 6; i += 97) picks.add(i)
  for (const fraction of [0, 0.25, 0.5, 0.75, 1])
    picks.add(Math.min(contacts.length - 1, Math.floor(fraction * contacts.length)))
  return [...picks].map((i) => contacts[i]).filter((c): c is BenchContact => c !== undefined)
}

async function checkSamples(sql: Sql, caseName: string, samples: readonly BenchContact[]): Promise<void> {
  const stored = await sql<
    {
      id: string
      organizationId: string
      productionId: string
      name: string
      email: string | null
      phone: string | null
      role: string | null
      extractionConfidence: string | null
      metadata: unknown
    }[]
  >`
    select id, organization_id as "organizationId", production_id as "productionId", name, email, phone, role,
           extraction_confidence as "extractionConfidence", metadata
    from contacts where id = any(${samples.map((s) => s.id)}::uuid[])`
  const byId = new Map(stored.map((row) => [row.id, row]))
  for (const expected of samples) {
    const row = byId.get(expected.id)
    const actual =
      row === undefined
        ? undefined
        : { ...row, extractionConfidence: row.extractionConfidence === null ? null : Number(row.extractionConfidence) }
    if (!isDeepStrictEqual(actual, expected)) {
      throw new Error(
        `${caseName} stored contact ${expected.id} wrongly:\n  expected ${JSON.stringify(expected)}\n  got      ${JSON.stringify(actual)}`,
      )
    }
  }
}
