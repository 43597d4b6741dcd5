// Over 350 lines because a suite is one experiment: fixture, every contender, the check that all return the same rows,
// the probes and the tables, kept together so what is measured reads in one place.
/**
 * The library against what users would write instead (issue 20, item 1): the same tenant unit of work —
 * a transaction, the tenant settings, the query, COMMIT — as the runtime login switched to the app role,
 * under the same RLS policies and audit triggers, through
 *
 * - **ours**: `db.tenant(orgId).contacts.findById / findMany / create / createMany`;
 * - **drizzle RLS**: drizzle's documented RLS pattern, `db.transaction(async (tx) => { await tx.execute(sql\`select
 *   set_config(…)\`); … })`, with the package's drizzle schema;
 * - **kysely + pg**: `db.transaction().execute(async (trx) => { await sql\`…\`.execute(trx); … })` over a `pg` pool;
 * - **prisma 7**: Prisma's row-level-security client extension (`$allOperations` runs `$transaction([$executeRaw\`…\`,
 *   query(args)])`) over `@prisma/adapter-pg`, its client generated from bench/prisma/schema.prisma when the suite starts (into node_modules/.cache);
 * - **postgres.js pipelined** (the limit): BEGIN, the settings, the prepared query and COMMIT written without
 *   waiting for one another on one reserved connection, by hand.
 *
 * Every peer sends the library's own settings statement (src/engine/settings-statement.ts: role, search path,
 * the primary check and `callsheet_enter_tenant` with the tenant proof, the audit context and the statement
 * timeout), as a template literal of its own API, so that RLS, the audit triggers and the server's work per
 * unit are the same for all and the figures compare the clients. Numbers only; BENCHMARKS.md has the analysis.
 */
import { execFileSync } from 'node:child_process'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { PrismaPg } from '@prisma/adapter-pg'
import { and, asc, eq, isNull, sql as drizzleSql, type SQL } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/postgres-js'
import { PgDialect } from 'drizzle-orm/pg-core'
import { Kysely, PostgresDialect, sql as kyselySql, type Generated, type RawBuilder } from 'kysely'
import pg from 'pg'
import postgres from 'postgres'
import { uuidv7 } from 'uuidv7'
import { createDatabase } from '../../src/client/create-database'
import { settingsParams, settingsStatementText } from '../../src/engine/settings-statement'
import { TenantProofs } from '../../src/engine/tenant-proof'
import { APP_ROLE, contacts } from '../../src/schema/index'
import { BENCH_CONTACT_COLUMNS, generateContacts, toCreateInput, type BenchContact } from '../fixtures/contacts'
import {
  formatMs,
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
import { BackendCpu } from '../server-cpu'
import { startCountingProxy } from '../counting-proxy'
import { makeWorkload, seed, unseed, type SeededOrganization, type Workload } from './tenant-reads'

const OURS = 'ours'
const DRIZZLE = 'drizzle RLS'
const KYSELY = 'kysely + pg'
const PRISMA = 'prisma 7'
const LIMIT = 'postgres.js pipelined'

/** Connections per pool: every contender gets its own pool of this size. */
const POOL_MAX = 16
const CONCURRENCY = 16
const PAGE = 50
/** createMany's batch: the issue's 10k (2,000 in a quick smoke run). */
const BATCH_ROWS = { default: 10_000, quick: 2_000 }
/** drizzle's and Kysely's `insert … values` chunk: 9 parameters a row, under the 65,535 bind parameters. */
const VALUES_CHUNK_ROWS = 5_000
/** The library's default `statementTimeoutMs` (src/client/config.ts): every peer sets the same. */
const STATEMENT_TIMEOUT_MS = 30_000
/** The audit context of every write unit: the audit rows must carry it (proof that the settings took). */
const REQUEST_ID = 'bench-peers'

// The targets of issue 20, item 2: Node CPU per unit ÷ the pipelined postgres.js unit.
const TARGETS = { findById: 1.5, findMany: 1.3 }

interface Sizes {
  organizations: number
  contactsPerOrganization: number
  /** operations per run at concurrency 1 */
  sequentialOps: number
  /** operations per worker per run at concurrency 16 */
  opsPerWorker: number
}

const SIZES: { default: Sizes; quick: Sizes } = {
  default: { organizations: 20, contactsPerOrganization: 2_000, sequentialOps: 600, opsPerWorker: 100 },
  quick: { organizations: 4, contactsPerOrganization: 200, sequentialOps: 150, opsPerWorker: 15 },
}
/** create runs fewer operations than the reads: each one is a durable commit. */
const CREATE_SHARE = 0.5
// Waits per operation are counted over this many sequential operations, spaced this far apart.
const PROBE_OPS = 50
const PROBE_GAP_MS = 3

type Sql = postgres.Sql
type Row = Record<string, unknown>
type Operation = 'findById' | 'findMany' | 'create'
const OPERATIONS: readonly Operation[] = ['findById', 'findMany', 'create']

/** One contender's client, over its own pool. */
interface Peer {
  findById(organizationId: string, id: string): Promise<Row | undefined>
  findMany(organizationId: string, productionId: string): Promise<readonly Row[]>
  create(organizationId: string, contact: BenchContact): Promise<Row>
  /** inserts every row in one unit; resolves to the count */
  createMany(organizationId: string, rows: readonly BenchContact[]): Promise<number>
  close(): Promise<void>
}

interface Contender {
  name: string
  open(url: string, max: number, applicationName: string): Peer
}

/** `npm run bench -- peers` */
export const peers: BenchSuite = {
  name: 'peers',
  usesRows: false,
  title:
    'The tenant unit (transaction + tenant settings + query, app role, RLS, audit triggers) through the library vs ' +
    "drizzle's RLS pattern, Kysely + pg, Prisma 7's RLS extension and hand-pipelined postgres.js: findById, findMany, " +
    `create at concurrency 1 and ${CONCURRENCY}, createMany ${BATCH_ROWS.default.toLocaleString('en-US')} rows`,
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
  const [role] = await admin<{ name: string; superuser: boolean }[]>`
    select current_user as name, rolsuper as superuser from pg_roles where rolname = current_user`
  if (role?.superuser !== true) {
    throw new Error(
      `peers seeds as the owner and removes each run's rows with triggers off (session_replication_role); ` +
        `${role?.name ?? 'this role'} is not a superuser`,
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

// ---------------------------------------------------------------------------------------------
// The tenant settings every peer sends: the library's statement, its parameters, a cached proof

const SETTINGS_TEXT = {
  read: settingsStatementText({ primary: 'read' }),
  write: settingsStatementText({ primary: 'write' }),
}

let proofs: TenantProofs | undefined
function proofOf(organizationId: string): string {
  proofs ??= new TenantProofs(process.env.CALLSHEET_SECRET)
  const proof = proofs.proof(organizationId)
  if (proof === '') throw new Error('CALLSHEET_SECRET is not set (bench/run.ts sets it)')
  return proof
}

/** `$1`…`$8` of the settings statement for a unit of `organizationId` (writes carry {@link REQUEST_ID}). */
function unitParams(organizationId: string, write: boolean): string[] {
  return settingsParams(
    {
      role: APP_ROLE,
      organizationId,
      proof: proofOf(organizationId),
      actorId: '',
      apiKeyId: '',
      requestId: write ? REQUEST_ID : '',
      ip: '',
    },
    STATEMENT_TIMEOUT_MS,
  ).map(String)
}

// As a user writes it with drizzle's `sql` (checked against SETTINGS_TEXT in checkSettingsTexts).
function drizzleEnter(organizationId: string, write: boolean): SQL {
  const [role, org, proof, actor, key, request, ip, timeout] = unitParams(organizationId, write)
  return write
    ? drizzleSql`select pg_catalog.set_config('role', ${role}, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), public.callsheet_require_primary(true), public.callsheet_enter_tenant(${org}, ${proof}, ${actor}, ${key}, ${request}, ${ip}, ${timeout})`
    : drizzleSql`select pg_catalog.set_config('role', ${role}, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), public.callsheet_require_primary(false), public.callsheet_enter_tenant(${org}, ${proof}, ${actor}, ${key}, ${request}, ${ip}, ${timeout})`
}

// As a user writes it with Kysely's `sql`.
function kyselyEnter(organizationId: string, write: boolean): RawBuilder<unknown> {
  const [role, org, proof, actor, key, request, ip, timeout] = unitParams(organizationId, write)
  return write
    ? kyselySql`select pg_catalog.set_config('role', ${role}, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), public.callsheet_require_primary(true), public.callsheet_enter_tenant(${org}, ${proof}, ${actor}, ${key}, ${request}, ${ip}, ${timeout})`
    : kyselySql`select pg_catalog.set_config('role', ${role}, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), public.callsheet_require_primary(false), public.callsheet_enter_tenant(${org}, ${proof}, ${actor}, ${key}, ${request}, ${ip}, ${timeout})`
}

/** The peers' template literals must render the library's statement text exactly (it changes with migrations). */
function checkSettingsTexts(): void {
  const dialect = new PgDialect()
  const org = uuidv7()
  const kysely = new Kysely<KyselyDatabase>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ max: 1 }) }),
  })
  for (const write of [false, true]) {
    const expected = SETTINGS_TEXT[write ? 'write' : 'read']
    const fromDrizzle = dialect.sqlToQuery(drizzleEnter(org, write)).sql
    const fromKysely = kyselyEnter(org, write).compile(kysely).sql
    for (const [who, text] of [
      [DRIZZLE, fromDrizzle],
      [KYSELY, fromKysely],
    ] as const) {
      if (text !== expected) {
        throw new Error(`${who}'s settings statement is not the library's:\n  ${text}\n  ${expected}`)
      }
    }
  }
  void kysely.destroy()
}

// ---------------------------------------------------------------------------------------------
// Contenders

const ours: Contender = {
  name: OURS,
  open(url, max, applicationName) {
    const db = createDatabase({
      primary: { url, connection: { application_name: applicationName } },
      pool: { max, idleTimeoutSeconds: 0 },
    })
    return {
      findById: async (organizationId, id) => (await db.tenant(organizationId).contacts.findById(id)) ?? undefined,
      findMany: async (organizationId, productionId) =>
        (await db.tenant(organizationId).contacts.findMany({ where: { productionId }, limit: PAGE })).rows,
      create: (organizationId, contact) =>
        db.tenant(organizationId, { requestId: REQUEST_ID }).contacts.create(toCreateInput(contact)),
      createMany: (organizationId, rows) =>
        db.tenant(organizationId, { requestId: REQUEST_ID }).contacts.createMany(
          rows.map((c) => toCreateInput(c)),
          { returning: 'count' },
        ),
      close: () => db.close(),
    }
  },
}

/** A bench contact as an insert's values (the peers generate the id, as the library does). */
function insertValues(c: BenchContact) {
  return {
    id: uuidv7(),
    organizationId: c.organizationId,
    productionId: c.productionId,
    name: c.name,
    email: c.email,
    phone: c.phone,
    role: c.role,
    extractionConfidence: c.extractionConfidence,
    metadata: c.metadata,
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

// drizzle's RLS documentation: a transaction whose first statement is `select set_config(…)`.
const drizzleRls: Contender = {
  name: DRIZZLE,
  open(url, max, applicationName) {
    const client = postgres(url, { max, onnotice: () => {}, connection: { application_name: applicationName } })
    const db = drizzle(client)
    return {
      findById: (organizationId, id) =>
        db.transaction(async (tx) => {
          await tx.execute(drizzleEnter(organizationId, false))
          const [row] = await tx
            .select()
            .from(contacts)
            .where(and(eq(contacts.organizationId, organizationId), eq(contacts.id, id), isNull(contacts.deletedAt)))
            .limit(1)
          return row
        }),
      findMany: (organizationId, productionId) =>
        db.transaction(async (tx) => {
          await tx.execute(drizzleEnter(organizationId, false))
          return tx
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
            .limit(PAGE)
        }),
      create: (organizationId, contact) =>
        db.transaction(async (tx) => {
          await tx.execute(drizzleEnter(organizationId, true))
          const [row] = await tx.insert(contacts).values(insertValues(contact)).returning()
          return row as Row
        }),
      createMany: (organizationId, rows) =>
        db.transaction(async (tx) => {
          await tx.execute(drizzleEnter(organizationId, true))
          for (const chunk of chunks(rows, VALUES_CHUNK_ROWS)) await tx.insert(contacts).values(chunk.map(insertValues))
          return rows.length
        }),
      close: () => client.end({ timeout: 5 }),
    }
  },
}

/** The `contacts` table as a Kysely user declares it (snake_case, no camel-case plugin). */
interface KyselyDatabase {
  contacts: {
    id: string
    organization_id: string
    production_id: string
    department_id: string | null
    upload_id: string | null
    name: string
    email: string | null
    phone: string | null
    role: string | null
    extraction_confidence: number | string | null
    notes: string | null
    metadata: Generated<Record<string, unknown>>
    created_at: Generated<Date>
    updated_at: Generated<Date>
    deleted_at: Date | null
    deleted_with: string | null
  }
}

/** A contact as a row with the table's own (snake_case) column names: Kysely's and Prisma's insert input. */
function snakeCaseRow(c: BenchContact) {
  return {
    id: uuidv7(),
    organization_id: c.organizationId,
    production_id: c.productionId,
    name: c.name,
    email: c.email,
    phone: c.phone,
    role: c.role,
    extraction_confidence: c.extractionConfidence,
    // pg sends a plain object as JSON
    metadata: c.metadata,
  }
}

const kysely: Contender = {
  name: KYSELY,
  open(url, max, applicationName) {
    const pool = new pg.Pool({ connectionString: url, max, application_name: applicationName })
    const db = new Kysely<KyselyDatabase>({ dialect: new PostgresDialect({ pool }) })
    return {
      findById: (organizationId, id) =>
        db.transaction().execute(async (trx) => {
          await kyselyEnter(organizationId, false).execute(trx)
          return trx
            .selectFrom('contacts')
            .selectAll()
            .where('organization_id', '=', organizationId)
            .where('id', '=', id)
            .where('deleted_at', 'is', null)
            .limit(1)
            .executeTakeFirst()
        }),
      findMany: (organizationId, productionId) =>
        db.transaction().execute(async (trx) => {
          await kyselyEnter(organizationId, false).execute(trx)
          return trx
            .selectFrom('contacts')
            .selectAll()
            .where('organization_id', '=', organizationId)
            .where('production_id', '=', productionId)
            .where('deleted_at', 'is', null)
            .orderBy('created_at')
            .orderBy('id')
            .limit(PAGE)
            .execute()
        }),
      create: (organizationId, contact) =>
        db.transaction().execute(async (trx) => {
          await kyselyEnter(organizationId, true).execute(trx)
          return trx.insertInto('contacts').values(snakeCaseRow(contact)).returningAll().executeTakeFirstOrThrow()
        }),
      createMany: (organizationId, rows) =>
        db.transaction().execute(async (trx) => {
          await kyselyEnter(organizationId, true).execute(trx)
          for (const chunk of chunks(rows, VALUES_CHUNK_ROWS)) {
            await trx.insertInto('contacts').values(chunk.map(snakeCaseRow)).execute()
          }
          return rows.length
        }),
      close: () => db.destroy(),
    }
  },
}

const FIND_BY_ID_SQL = 'select * from contacts where organization_id = $1 and id = $2 and deleted_at is null limit 1'
const FIND_MANY_SQL =
  'select * from contacts where organization_id = $1 and production_id = $2 and deleted_at is null ' +
  `order by created_at, id limit ${PAGE}`
const CREATE_SQL =
  `insert into contacts (${BENCH_CONTACT_COLUMNS.join(', ')}) ` +
  'values ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb) returning *'
const CREATE_MANY_SQL =
  `insert into contacts (${BENCH_CONTACT_COLUMNS.join(', ')}) select * from unnest(` +
  '$1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::numeric[], ' +
  '$9::text[]::jsonb[])'

// The limit: the whole unit in one flight. A read answers once its rows are in and gives the connection back
// once its COMMIT is through (as the library does); a write answers after its COMMIT.
const pipelined: Contender = {
  name: LIMIT,
  open(url, max, applicationName) {
    const sql = postgres(url, { max, onnotice: () => {}, connection: { application_name: applicationName } })
    const unit = async (
      organizationId: string,
      write: boolean,
      text: string,
      params: postgres.ParameterOrJSON<never>[],
    ): Promise<Row[]> => {
      const conn = await sql.reserve()
      const release = () => conn.release()
      const begun = conn.unsafe(write ? 'begin' : 'begin read only').execute()
      const entered = conn
        .unsafe(SETTINGS_TEXT[write ? 'write' : 'read'], unitParams(organizationId, write), { prepare: true })
        .execute()
      const rows = conn.unsafe<Row[]>(text, params, { prepare: true }).execute()
      const committed = conn.unsafe('commit').execute()
      if (write) {
        try {
          await Promise.all([begun, entered, rows, committed])
        } finally {
          release()
        }
        return rows
      }
      committed.then(release, release)
      await Promise.all([begun, entered])
      return rows
    }
    return {
      findById: async (organizationId, id) =>
        (await unit(organizationId, false, FIND_BY_ID_SQL, [organizationId, id]))[0],
      findMany: (organizationId, productionId) =>
        unit(organizationId, false, FIND_MANY_SQL, [organizationId, productionId]),
      create: async (organizationId, c) =>
        (
          await unit(organizationId, true, CREATE_SQL, [
            uuidv7(),
            c.organizationId,
            c.productionId,
            c.name,
            c.email,
            c.phone,
            c.role,
            c.extractionConfidence,
            JSON.stringify(c.metadata),
          ])
        )[0] as Row,
      createMany: async (organizationId, rows) => {
        await unit(organizationId, true, CREATE_MANY_SQL, [
          rows.map(() => uuidv7()),
          rows.map((c) => c.organizationId),
          rows.map((c) => c.productionId),
          rows.map((c) => c.name),
          rows.map((c) => c.email),
          rows.map((c) => c.phone),
          rows.map((c) => c.role),
          rows.map((c) => c.extractionConfidence),
          rows.map((c) => JSON.stringify(c.metadata)),
        ] as never)
        return rows.length
      },
      close: () => sql.end({ timeout: 5 }),
    }
  },
}

// ---------------------------------------------------------------------------------------------
// Prisma 7: the client is generated when the suite starts (it is not committed)

const PRISMA_SCHEMA = fileURLToPath(new URL('../prisma/schema.prisma', import.meta.url))
// Where bench/prisma/schema.prisma's generator writes it: generated code stays out of the linted trees.
const PRISMA_CLIENT = new URL('../../node_modules/.cache/callsheet-bench/prisma-client/client.ts', import.meta.url).href

/** The parts of the generated client the suite uses. */
interface PrismaContacts {
  findFirst(args: object): Promise<Row | null>
  findMany(args: object): Promise<Row[]>
  create(args: object): Promise<Row>
  createMany(args: object): Promise<{ count: number }>
}
interface PrismaLike {
  contacts: PrismaContacts
  $extends(extension: object): PrismaLike
  $transaction(queries: readonly unknown[]): Promise<unknown[]>
  $executeRaw(query: PrismaSql): unknown
  $disconnect(): Promise<void>
}
interface PrismaSql {
  text: string
}
interface PrismaModule {
  PrismaClient: new (options: {
    adapter: unknown
    transactionOptions: { timeout: number; maxWait: number }
  }) => PrismaLike
  Prisma: { sql(strings: TemplateStringsArray, ...values: unknown[]): PrismaSql }
}

/**
 * Generates the Prisma client and loads it; the reason when it cannot. `prisma generate` never runs the schema
 * engine, but the CLI downloads one unless `PRISMA_SCHEMA_ENGINE_BINARY` names a file: /bin/false here, so that
 * an actual call would fail loudly (the registry is the only network this project may use).
 */
async function loadPrisma(log: (line: string) => void): Promise<PrismaModule | string> {
  try {
    execFileSync('npx', ['prisma', 'generate', '--schema', PRISMA_SCHEMA], {
      stdio: 'pipe',
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/false' },
    })
    return (await import(PRISMA_CLIENT)) as PrismaModule
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n').slice(0, 3).join(' ') : String(error)
    log(`prisma left out: ${reason}`)
    return reason
  }
}

function prismaContender(prisma: PrismaModule): Contender {
  const { Prisma } = prisma
  // As a user writes it with Prisma's `sql` (checked against SETTINGS_TEXT before the first unit).
  const enter = (organizationId: string, write: boolean): PrismaSql => {
    const [role, org, proof, actor, apiKey, request, ip, timeout] = unitParams(organizationId, write)
    return write
      ? Prisma.sql`select pg_catalog.set_config('role', ${role}, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), public.callsheet_require_primary(true), public.callsheet_enter_tenant(${org}, ${proof}, ${actor}, ${apiKey}, ${request}, ${ip}, ${timeout})`
      : Prisma.sql`select pg_catalog.set_config('role', ${role}, true), pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true), public.callsheet_require_primary(false), public.callsheet_enter_tenant(${org}, ${proof}, ${actor}, ${apiKey}, ${request}, ${ip}, ${timeout})`
  }
  for (const write of [false, true]) {
    const text = enter(uuidv7(), write).text
    if (text !== SETTINGS_TEXT[write ? 'write' : 'read']) {
      throw new Error(`${PRISMA}'s settings statement is not the library's:\n  ${text}`)
    }
  }
  return {
    name: PRISMA,
    open(url, max, applicationName) {
      const base = new prisma.PrismaClient({
        adapter: new PrismaPg({ connectionString: url, max, application_name: applicationName }),
        // Prisma's defaults (5 s per transaction, 2 s to get a connection) fail a 10k createMany and a
        // c=16 burst on a loaded 2-core machine; what a user would raise for such work.
        transactionOptions: { timeout: 60_000, maxWait: 60_000 },
      })
      // Prisma's row-level-security extension: every operation in a batch transaction after the settings.
      const forTenant = (organizationId: string, write: boolean): PrismaLike =>
        base.$extends({
          query: {
            $allModels: {
              async $allOperations({ args, query }: { args: unknown; query: (args: unknown) => unknown }) {
                const [, result] = await base.$transaction([
                  base.$executeRaw(enter(organizationId, write)),
                  query(args),
                ])
                return result
              },
            },
          },
        })
      return {
        findById: async (organizationId, id) =>
          (await forTenant(organizationId, false).contacts.findFirst({
            where: { organization_id: organizationId, id, deleted_at: null },
          })) ?? undefined,
        findMany: (organizationId, productionId) =>
          forTenant(organizationId, false).contacts.findMany({
            where: { organization_id: organizationId, production_id: productionId, deleted_at: null },
            orderBy: [{ created_at: 'asc' }, { id: 'asc' }],
            take: PAGE,
          }),
        create: (organizationId, contact) =>
          forTenant(organizationId, true).contacts.create({ data: snakeCaseRow(contact) }),
        createMany: async (organizationId, rows) =>
          (await forTenant(organizationId, true).contacts.createMany({ data: rows.map(snakeCaseRow) })).count,
        close: () => base.$disconnect(),
      }
    },
  }
}

const BASE_CONTENDERS: readonly Contender[] = [ours, drizzleRls, kysely, pipelined]

function appName(caseName: string): string {
  return `bench-peers-${caseName.replace(/[^a-z0-9.]+/gi, '-').replace(/-+$/, '')}`.slice(0, 63)
}

// ---------------------------------------------------------------------------------------------
// The write fixture: one organization whose rows every write run removes again

interface WriteTarget {
  organizationId: string
  productionId: string
  /** inputs for create, by operation index (distinct e-mails: the live-unique key) */
  inputs: BenchContact[]
  batch: BenchContact[]
}

async function makeWriteTarget(admin: Sql, creates: number, batchRows: number): Promise<WriteTarget> {
  const organizationId = uuidv7()
  const productionId = uuidv7()
  await admin`insert into organizations (id, name, slug) values (${organizationId}, 'Peers Writes', 'bench-peers-writes')`
  await admin`
    insert into productions (id, organization_id, title, code, status)
    values (${productionId}, ${organizationId}, 'Peers', 'PEERS-1', 'production')`
  return {
    organizationId,
    productionId,
    inputs: generateContacts(creates, { organizationId, productionId, seed: 20 }),
    batch: generateContacts(batchRows, { organizationId, productionId, seed: 21 }),
  }
}

/** Checks that `expected` contacts and as many insert audit rows with {@link REQUEST_ID} were written, then removes them. */
async function checkAndClearWrites(admin: Sql, target: WriteTarget, expected: number, who: string): Promise<void> {
  const [found] = await admin<{ contacts: number; audit: number }[]>`
    select (select count(*)::int from contacts where organization_id = ${target.organizationId}) as contacts,
           (select count(*)::int from audit_logs
            where organization_id = ${target.organizationId} and entity_type = 'contacts' and action = 'insert'
              and request_id = ${REQUEST_ID}) as audit`
  await clearWrites(admin, target)
  if (found?.contacts !== expected || found.audit !== expected) {
    throw new Error(
      `${who}: ${found?.contacts} contacts and ${found?.audit} insert audit rows carrying the unit's request id, ` +
        `expected ${expected} of each`,
    )
  }
}

// Untimed; triggers off so that removing them writes no audit rows of its own.
async function clearWrites(admin: Sql, target: WriteTarget): Promise<void> {
  await admin.begin(async (tx) => {
    await tx`set local session_replication_role = replica`
    await tx`delete from contacts where organization_id = ${target.organizationId}`
    await tx`delete from audit_logs where organization_id = ${target.organizationId}`
  })
}

async function removeWriteTarget(admin: Sql, target: WriteTarget): Promise<void> {
  await clearWrites(admin, target)
  await admin`delete from productions where organization_id = ${target.organizationId}`
  await admin`delete from organizations where id = ${target.organizationId}`
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface CaseMetrics {
  /** per measured run: every operation's latency in ms */
  latencies: Float64Array[]
  clientCpuMicros: number
  serverMicros: number
  measuredOps: number
}

function newMetrics(): CaseMetrics {
  return { latencies: [], clientCpuMicros: 0, serverMicros: 0, measuredOps: 0 }
}

const key = (operation: string, concurrency: number, name: string): string => `${operation}/${concurrency}/${name}`

async function measure(
  admin: Sql,
  context: SuiteContext,
  sizes: Sizes,
  organizations: readonly SeededOrganization[],
): Promise<SuiteReport> {
  checkSettingsTexts()
  const prisma = await loadPrisma(context.log)
  const contenders =
    typeof prisma === 'string' ? BASE_CONTENDERS : [...BASE_CONTENDERS.slice(0, 3), prismaContender(prisma), pipelined]
  const totalOps = { sequential: sizes.sequentialOps, concurrent: CONCURRENCY * sizes.opsPerWorker }
  const workload = makeWorkload(organizations, Math.max(totalOps.sequential, totalOps.concurrent))
  const createOps = {
    sequential: Math.round(totalOps.sequential * CREATE_SHARE),
    concurrent: CONCURRENCY * Math.round(sizes.opsPerWorker * CREATE_SHARE),
  }
  const batchRows = context.quick ? BATCH_ROWS.quick : BATCH_ROWS.default
  const target = await makeWriteTarget(
    admin,
    Math.max(createOps.sequential, createOps.concurrent, PROBE_OPS * 2),
    batchRows,
  )
  try {
    await checkAgreement(admin, context.runtimeUrl, contenders, organizations, target)
    context.log('every contender returns the same rows; another tenant’s id finds nothing; writes are audited')
    context.log('counting client→server flights per operation through a TCP proxy')
    const flights = await countFlights(admin, context.runtimeUrl, contenders, workload, target)

    const serverCpu = context.server.source === 'local-binaries' ? new BackendCpu(admin) : undefined
    const clients = new Map<string, Peer>()
    const results: BenchResult[] = []
    const metrics = new Map<string, CaseMetrics>()
    try {
      for (const contender of contenders) {
        const peer = contender.open(context.runtimeUrl, POOL_MAX, appName(contender.name))
        clients.set(contender.name, peer)
        // Every connection of the pool opened, its statements prepared, before anything is timed.
        for (const operation of ['findById', 'findMany'] as const) {
          await Promise.all(
            Array.from({ length: CONCURRENCY }, (_, w) =>
              runOps(peer, operation, workload, target, w * 4, 4, new Float64Array(4), 0),
            ),
          )
        }
      }
      context.log('pools opened and warmed')

      for (const operation of OPERATIONS) {
        for (const concurrency of [1, CONCURRENCY]) {
          const ops =
            operation === 'create'
              ? concurrency === 1
                ? createOps.sequential
                : createOps.concurrent
              : concurrency === 1
                ? totalOps.sequential
                : totalOps.concurrent
          const cases = contenders.map((contender): BenchCase => {
            const peer = clients.get(contender.name) as Peer
            const m = newMetrics()
            metrics.set(key(operation, concurrency, contender.name), m)
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
                    runOps(peer, operation, workload, target, w * perWorker, perWorker, latencies, w * perWorker),
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
                const serverAfter = await serverCpu?.ticks(appName(contender.name))
                if (failures > 0) {
                  throw new Error(`${contender.name} ${operation}: ${failures} of ${ops} operations answered wrongly`)
                }
                if (operation === 'create') {
                  await checkAndClearWrites(admin, target, ops, `${contender.name} create`)
                }
                if (runs >= context.warmupRounds) {
                  m.measuredOps += ops
                  m.serverMicros +=
                    serverBefore === undefined || serverAfter === undefined ? Number.NaN : serverAfter - serverBefore
                }
                runs++
              },
            }
          })
          const title = `${operation}${operation === 'findMany' ? ` (${PAGE} rows)` : ''}, concurrency ${concurrency}: ${ops.toLocaleString('en-US')} units per run`
          context.log(`bench: ${title}`)
          results.push(
            await runBench(title, cases, {
              rounds: context.rounds,
              warmupRounds: context.warmupRounds,
              baselines: [OURS, LIMIT],
              opsUnit: 'ops',
              log: context.log,
            }),
          )
        }
      }

      // createMany: one unit of BATCH_ROWS rows per run.
      const batchCases = contenders.map((contender): BenchCase => {
        const peer = clients.get(contender.name) as Peer
        const m = newMetrics()
        metrics.set(key('createMany', 1, contender.name), m)
        let runs = 0
        let serverBefore: number | undefined
        return {
          name: contender.name,
          ops: batchRows,
          setup: async () => {
            serverBefore = await serverCpu?.ticks(appName(contender.name))
          },
          run: async () => {
            const cpuBefore = process.cpuUsage()
            const t0 = performance.now()
            const count = await peer.createMany(target.organizationId, target.batch)
            const elapsed = performance.now() - t0
            const cpu = process.cpuUsage(cpuBefore)
            if (count !== batchRows) throw new Error(`${contender.name} createMany answered ${count}`)
            if (runs >= context.warmupRounds) {
              m.latencies.push(Float64Array.of(elapsed))
              m.clientCpuMicros += cpu.user + cpu.system
            }
          },
          teardown: async () => {
            const serverAfter = await serverCpu?.ticks(appName(contender.name))
            await checkAndClearWrites(admin, target, batchRows, `${contender.name} createMany`)
            if (runs >= context.warmupRounds) {
              m.measuredOps += 1
              m.serverMicros +=
                serverBefore === undefined || serverAfter === undefined ? Number.NaN : serverAfter - serverBefore
            }
            runs++
          },
        }
      })
      const batchTitle = `createMany: ${batchRows.toLocaleString('en-US')} rows in one unit per run`
      context.log(`bench: ${batchTitle}`)
      results.push(
        await runBench(batchTitle, batchCases, {
          rounds: context.rounds,
          warmupRounds: context.warmupRounds,
          baselines: [OURS, LIMIT],
          opsUnit: 'rows',
          log: context.log,
        }),
      )
    } finally {
      await Promise.all([...clients.values()].map((c) => c.close()))
    }
    return {
      results,
      tables: buildTables({
        names: contenders.map((c) => c.name),
        results,
        metrics,
        flights,
        serverKnown: serverCpu !== undefined,
        prismaLeftOut: typeof prisma === 'string' ? prisma : undefined,
      }),
    }
  } finally {
    await removeWriteTarget(admin, target)
  }
}

/**
 * Runs `count` operations one after another from index `start`, recording each latency at
 * `latencies[offset + i]`. Returns how many answered wrongly.
 */
async function runOps(
  peer: Peer,
  operation: Operation,
  workload: Workload,
  target: WriteTarget,
  start: number,
  count: number,
  latencies: Float64Array,
  offset: number,
): Promise<number> {
  let failures = 0
  for (let i = 0; i < count; i++) {
    const t0 = performance.now()
    if (operation === 'findById') {
      const op = workload.byId[(start + i) % workload.byId.length] as Workload['byId'][number]
      const row = await peer.findById(op.organizationId, op.id)
      latencies[offset + i] = performance.now() - t0
      if (row?.id !== op.id) failures++
    } else if (operation === 'findMany') {
      const op = workload.many[(start + i) % workload.many.length] as Workload['many'][number]
      const rows = await peer.findMany(op.organizationId, op.productionId)
      latencies[offset + i] = performance.now() - t0
      if (rows.length !== PAGE) failures++
    } else {
      const input = target.inputs[(start + i) % target.inputs.length] as BenchContact
      const row = await peer.create(target.organizationId, input)
      latencies[offset + i] = performance.now() - t0
      if (row.name !== input.name) failures++
    }
  }
  return failures
}

// ---------------------------------------------------------------------------------------------
// Checks and probes (untimed)

/** A row as comparable text, whichever client read it (camelCase or snake_case, numeric as text or number). */
function canonical(row: Row | undefined, withIdentity = true): string {
  if (row === undefined) return 'none'
  const pick = (camel: string, snake: string): unknown => (camel in row ? row[camel] : row[snake])
  const confidence = pick('extractionConfidence', 'extraction_confidence')
  const created = pick('createdAt', 'created_at')
  const metadata = row.metadata as Record<string, unknown>
  return JSON.stringify([
    withIdentity ? row.id : '',
    pick('organizationId', 'organization_id'),
    pick('productionId', 'production_id'),
    row.name,
    row.email,
    row.phone,
    row.role,
    confidence === null ? null : Number(confidence),
    Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => a.localeCompare(b))),
    pick('deletedAt', 'deleted_at') ?? null,
    withIdentity ? new Date(created as string | Date).getTime() : '',
  ])
}

/**
 * Every contender: the same row by id and none for another tenant's id, the same ordered page, the same
 * created row (but its id) with its audit row, and the same count from createMany.
 */
async function checkAgreement(
  admin: Sql,
  url: string,
  contenders: readonly Contender[],
  organizations: readonly SeededOrganization[],
  target: WriteTarget,
): Promise<void> {
  const answers = new Map<string, string>()
  for (const contender of contenders) {
    const peer = contender.open(url, 2, appName(`check-${contender.name}`))
    try {
      const parts: string[] = []
      for (const org of organizations.slice(0, 3)) {
        const id = org.contactIds[Math.floor(org.contactIds.length / 2)] as string
        parts.push(canonical(await peer.findById(org.id, id)))
        const foreign = (organizations.find((o) => o.id !== org.id) as SeededOrganization).contactIds[0] as string
        const leaked = await peer.findById(org.id, foreign)
        if (leaked !== undefined) throw new Error(`${contender.name} found another tenant's contact`)
        parts.push((await peer.findMany(org.id, org.productionId)).map((r) => canonical(r)).join('\n'))
      }
      const created = await peer.create(target.organizationId, target.inputs[0] as BenchContact)
      parts.push(canonical(created, false))
      await checkAndClearWrites(admin, target, 1, `${contender.name} create`)
      parts.push(String(await peer.createMany(target.organizationId, target.batch.slice(0, 100))))
      await checkAndClearWrites(admin, target, 100, `${contender.name} createMany`)
      answers.set(contender.name, parts.join('|'))
    } finally {
      await peer.close()
    }
  }
  const expected = answers.get(OURS)
  for (const [name, answer] of answers) {
    if (answer !== expected) throw new Error(`${name} returned different rows than ${OURS}`)
  }
}

/** Client→server TCP reads at a counting proxy per operation: while it is pending, and after its answer. */
interface Flights {
  waits: number
  after: number
}

async function countFlights(
  admin: Sql,
  url: string,
  contenders: readonly Contender[],
  workload: Workload,
  target: WriteTarget,
): Promise<Map<string, Flights>> {
  const parsed = new URL(url)
  const proxy = await startCountingProxy(parsed.hostname, Number(parsed.port || 5432))
  const out = new Map<string, Flights>()
  const one = new Float64Array(1)
  try {
    for (const contender of contenders) {
      const peer = contender.open(proxy.proxied(url), 1, appName(`probe-${contender.name}`))
      try {
        for (const operation of OPERATIONS) {
          await runOps(peer, operation, workload, target, 0, PROBE_OPS, new Float64Array(PROBE_OPS), 0)
          await sleep(PROBE_GAP_MS)
          let waits = 0
          let after = 0
          for (let i = 0; i < PROBE_OPS; i++) {
            const before = proxy.counts.toServer
            if ((await runOps(peer, operation, workload, target, PROBE_OPS + i, 1, one, 0)) > 0) {
              throw new Error(`${contender.name} ${operation} answered wrongly through the proxy`)
            }
            const answered = proxy.counts.toServer
            await sleep(PROBE_GAP_MS)
            waits += answered - before
            after += proxy.counts.toServer - answered
          }
          out.set(`${contender.name}/${operation}`, { waits: waits / PROBE_OPS, after: after / PROBE_OPS })
          if (operation === 'create') await clearWrites(admin, target)
        }
      } finally {
        await peer.close()
      }
    }
  } finally {
    await proxy.close()
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// The report

interface TablesInput {
  names: readonly string[]
  results: readonly BenchResult[]
  metrics: Map<string, CaseMetrics>
  flights: Map<string, Flights>
  serverKnown: boolean
  /** why Prisma is not among the cases, when it is not */
  prismaLeftOut: string | undefined
}

function buildTables(input: TablesInput): NumbersTable[] {
  const { names, results, metrics, flights, serverKnown } = input
  const result = (operation: Operation, concurrency: number): BenchResult =>
    results[OPERATIONS.indexOf(operation) * 2 + (concurrency === 1 ? 0 : 1)] as BenchResult
  const rate = (r: BenchResult, name: string): number =>
    r.cases.find((c) => c.name === name)?.opsPerSecond?.median ?? Number.NaN
  const m = (operation: string, concurrency: number, name: string): CaseMetrics =>
    metrics.get(key(operation, concurrency, name)) as CaseMetrics
  const nodeCpu = (operation: string, concurrency: number, name: string): number => {
    const x = m(operation, concurrency, name)
    return x.clientCpuMicros / x.measuredOps
  }
  const serverCpu = (operation: string, concurrency: number, name: string): number => {
    const x = m(operation, concurrency, name)
    return serverKnown ? x.serverMicros / x.measuredOps : Number.NaN
  }
  const us = (micros: number): string => (Number.isFinite(micros) ? Math.round(micros).toLocaleString('en-US') : 'n/a')
  const count = (n: number): string => (Number.isFinite(n) ? (Number.isInteger(n) ? String(n) : n.toFixed(2)) : 'n/a')

  const cpuRatio = (operation: Operation, concurrency: number): number =>
    nodeCpu(operation, concurrency, OURS) / nodeCpu(operation, concurrency, LIMIT)
  const targetRows: string[][] = (['findById', 'findMany'] as const).flatMap((operation) =>
    [1, CONCURRENCY].map((concurrency) => {
      const ratio = cpuRatio(operation, concurrency)
      return [
        `${operation} Node CPU ÷ ${LIMIT}`,
        `c=${concurrency}`,
        `${us(nodeCpu(operation, concurrency, OURS))} ÷ ${us(nodeCpu(operation, concurrency, LIMIT))} µs = ${formatRatio(ratio)}`,
        `≤ ${formatRatio(TARGETS[operation])}`,
        ratio <= TARGETS[operation] ? 'met' : '**missed**',
      ]
    }),
  )
  for (const operation of OPERATIONS) {
    const r = result(operation, CONCURRENCY)
    const own = rate(r, OURS)
    const others = names.filter((n) => n !== OURS && n !== LIMIT)
    const slowest = Math.max(...others.map((n) => rate(r, n)))
    targetRows.push([
      `${operation} c=${CONCURRENCY} ops/s, ours ÷ each peer`,
      `c=${CONCURRENCY}`,
      others.map((n) => `${n} ${formatRatio(own / rate(r, n))}`).join(', ') +
        `; ${LIMIT} ${formatRatio(own / rate(r, LIMIT))}`,
      '> 1.00× vs every peer',
      own > slowest ? 'met' : '**missed**',
    ])
  }
  const targets: NumbersTable = {
    title: `Targets (issue 20, item 2; ${cpus().length} cores): Node CPU per unit ÷ ${LIMIT}'s, and c=${CONCURRENCY} throughput vs every peer`,
    header: ['what', 'concurrency', 'measured', 'target', 'verdict'],
    rows: targetRows,
  }

  const detailRows: string[][] = []
  for (const operation of OPERATIONS) {
    for (const concurrency of [1, CONCURRENCY]) {
      const r = result(operation, concurrency)
      for (const name of names) {
        const all = Float64Array.from(m(operation, concurrency, name).latencies.flatMap((run) => [...run])).sort()
        const f = flights.get(`${name}/${operation}`)
        detailRows.push([
          `${operation} c=${concurrency}`,
          name,
          `${us(quantile(all, 0.5) * 1000)} / ${us(quantile(all, 0.95) * 1000)}`,
          formatRate(rate(r, name)),
          formatRatio(rate(r, name) / rate(r, OURS)),
          formatRatio(rate(r, name) / rate(r, LIMIT)),
          us(nodeCpu(operation, concurrency, name)),
          us(serverCpu(operation, concurrency, name)),
          f === undefined ? 'n/a' : `${count(f.waits)} / ${count(f.after)}`,
        ])
      }
    }
  }
  const detail: NumbersTable = {
    title:
      'Per case: latency per unit pooled over the measured rounds; ops/s of the median run; CPU ÷ units ' +
      `(Node: this whole process; server: the case's backends, /proc ticks); waits / sent after answer: TCP reads ` +
      `at a counting proxy over ${PROBE_OPS} sequential units`,
    header: [
      'operation',
      'case',
      'latency median / p95 µs',
      'ops/s',
      `ops/s ÷ ${OURS}`,
      `ops/s ÷ ${LIMIT}`,
      'Node CPU µs/op',
      'server CPU µs/op',
      'waits / sent after answer',
    ],
    rows: detailRows,
  }

  const batch = results[results.length - 1] as BenchResult
  const batchTable: NumbersTable = {
    title: `createMany, ${batch.cases[0]?.ops?.toLocaleString('en-US') ?? '?'} rows in one unit (per run)`,
    header: [
      'case',
      'how',
      'median ms',
      'rows/s',
      `rows/s ÷ ${OURS}`,
      `rows/s ÷ ${LIMIT}`,
      'Node CPU ms/run',
      'server CPU ms/run',
    ],
    rows: names.map((name) => {
      const c = batch.cases.find((x) => x.name === name)
      return [
        name,
        BATCH_HOW[name] ?? '',
        formatMs(c?.medianMs ?? Number.NaN),
        formatRate(rate(batch, name)),
        formatRatio(rate(batch, name) / rate(batch, OURS)),
        formatRatio(rate(batch, name) / rate(batch, LIMIT)),
        formatMs(nodeCpu('createMany', 1, name) / 1000),
        formatMs(serverCpu('createMany', 1, name) / 1000),
      ]
    }),
  }
  const tables = [targets, detail, batchTable]
  if (input.prismaLeftOut !== undefined) {
    tables.push({ title: 'Left out of this run', header: ['case', 'why'], rows: [[PRISMA, input.prismaLeftOut]] })
  }
  return tables
}

const BATCH_HOW: Record<string, string> = {
  [OURS]: "`createMany(rows, { returning: 'count' })`",
  [DRIZZLE]: `\`insert(contacts).values(chunk)\` × ${VALUES_CHUNK_ROWS.toLocaleString('en-US')} rows`,
  [KYSELY]: `\`insertInto('contacts').values(chunk)\` × ${VALUES_CHUNK_ROWS.toLocaleString('en-US')} rows`,
  [PRISMA]: '`contacts.createMany({ data })` (Prisma chunks by the parameter limit)',
  [LIMIT]: 'one prepared `insert … select * from unnest($1::uuid[], …)`',
}
