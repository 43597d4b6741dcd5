import { describe, beforeAll, afterAll, inject, it } from 'vitest'
import postgres from 'postgres'
import type { PGlite } from '@electric-sql/pglite'
import { createPglite } from '../../src/engine/pglite/create-pglite'
import { migrate } from '../../src/migrations/migrate'
import { createDatabase, type Database } from '../../src/client/create-database'
import type { DatabaseConfig } from '../../src/client/config'
import { distribute } from '../../src/distribution/distribute'
import { createScratchDatabase, runtimeLoginUrl } from '../../tools/postgres-server'
import { createCitusScratchDatabase } from '../../tools/citus-cluster'
import { pgliteRunner, postgresRunner, type SqlRunner } from './sql-runner'

/** The engines a suite runs on: PGlite and PostgreSQL always, Citus for the suites that opt in. */
export type EngineName = 'pglite' | 'postgres' | 'citus'

/** Which engines beyond the default two a suite runs on. */
export interface EngineOptions {
  /** Also run on the Citus cluster (schema migrated, then `distribute()`d). @default false */
  readonly citus?: boolean
  /** Only these engines (e.g. `['citus']` for a suite about shards); none available → one skipped test. */
  readonly only?: readonly EngineName[]
}

/** The Citus cluster of the run (coordinator + workers), when the global setup could start one. */
interface ProvidedCitus {
  coordinatorUrl: string
  workerUrls: string[]
  description: string
}

/** What the global setup found: a real server to test against, or why there is none. */
interface ProvidedServer {
  adminUrl: string
  replicaUrl?: string
  description: string
  source: string
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresServer: ProvidedServer | null
    citusCluster: ProvidedCitus | null
    /** Whether a failover suite can start a pg_auto_failover formation (each starts its own), or why not. */
    autoFailover: { ok: true } | { ok: false; reason: string }
  }
}

/** One isolated, migrated database on one engine, owned by the test file that opened it. */
export interface TestEngine {
  readonly name: EngineName
  /** Runs SQL as the database owner (a superuser in tests: RLS does not apply to it). */
  readonly admin: SqlRunner
  /**
   * postgres: the scratch database's URL as the runtime login (`callsheet_runtime`: a NOINHERIT member of
   * callsheet_app, no privilege of its own), as production connects; pglite: undefined.
   */
  readonly url: string | undefined
  /** postgres: the scratch database's URL as its owner (the migrating superuser); pglite: undefined. */
  readonly ownerUrl: string | undefined
  /** postgres: the underlying postgres.js client; pglite: the PGlite instance. */
  readonly pglite: PGlite | undefined
  readonly sql: postgres.Sql | undefined
  /** citus: each worker's URL as the superuser, this database (to inspect shards). */
  readonly workerUrls?: readonly string[]
  close(): Promise<void>
}

/**
 * The engines available to this run: PGlite always, PostgreSQL when the global setup found a server,
 * Citus when it started a cluster and the suite opts in.
 */
export function availableEngines(options: EngineOptions = {}): EngineName[] {
  const engines: EngineName[] = inject('postgresServer') ? ['pglite', 'postgres'] : ['pglite']
  if ((options.citus === true || options.only?.includes('citus') === true) && inject('citusCluster')) {
    engines.push('citus')
  }
  const wanted = options.only === undefined ? engines : engines.filter((name) => options.only?.includes(name))
  // Mutation testing (scripts/mutation-check.ts): CALLSHEET_ENGINES=postgres runs only the named engines.
  // Unset (the normal case): every available engine.
  const only = process.env.CALLSHEET_ENGINES?.split(',')
    .map((name) => name.trim())
    .filter(Boolean)
  return only === undefined || only.length === 0 ? wanted : wanted.filter((name) => only.includes(name))
}

/**
 * Mutation testing (scripts/mutation-check.ts): SQL run as the owner right after each engine's database
 * is migrated, to break one guarantee on purpose and see the isolation suites fail. Unset: nothing runs.
 */
async function applyMutation(admin: SqlRunner): Promise<void> {
  const mutation = process.env.CALLSHEET_MUTATION_SQL
  if (mutation !== undefined && mutation.trim() !== '') await admin.exec(mutation)
}

/** Opens a freshly migrated, isolated database on `name`. */
export async function openEngine(name: EngineName): Promise<TestEngine> {
  if (name === 'pglite') {
    const pg = await createPglite()
    await migrate(pg)
    await applyMutation(pgliteRunner(pg))
    return {
      name,
      admin: pgliteRunner(pg),
      url: undefined,
      ownerUrl: undefined,
      pglite: pg,
      sql: undefined,
      close: () => pg.close(),
    }
  }
  if (name === 'citus') return openCitus()
  const server = inject('postgresServer')
  if (!server) throw new Error('no PostgreSQL server in this run')
  const scratch = await createScratchDatabase(server.adminUrl)
  await migrate(scratch.url)
  const url = await runtimeLoginUrl(scratch.url)
  const sql = postgres(scratch.url, { max: 4, onnotice: () => {} })
  await applyMutation(postgresRunner(sql)).catch(async (error: unknown) => {
    await sql.end({ timeout: 5 })
    await scratch.drop()
    throw error
  })
  return {
    name,
    admin: postgresRunner(sql),
    url,
    ownerUrl: scratch.url,
    pglite: undefined,
    sql,
    async close() {
      await sql.end({ timeout: 5 })
      await scratch.drop()
    },
  }
}

/** A database on every node of the run's Citus cluster, migrated, then distributed. */
async function openCitus(): Promise<TestEngine> {
  const cluster = inject('citusCluster')
  if (!cluster) throw new Error('no Citus cluster in this run')
  const scratch = await createCitusScratchDatabase(cluster.coordinatorUrl, cluster.workerUrls)
  const sql = postgres(scratch.url, { max: 4, onnotice: () => {} })
  try {
    await migrate(scratch.url)
    await distribute(sql)
    // Roles propagate from the coordinator: the runtime login exists on the workers too.
    const url = await runtimeLoginUrl(scratch.url)
    await applyMutation(postgresRunner(sql))
    return {
      name: 'citus',
      admin: postgresRunner(sql),
      url,
      ownerUrl: scratch.url,
      pglite: undefined,
      sql,
      workerUrls: scratch.workerUrls,
      async close() {
        await sql.end({ timeout: 5 })
        await scratch.drop()
      },
    }
  } catch (error) {
    await sql.end({ timeout: 5 })
    await scratch.drop()
    throw error
  }
}

/** A suite limited by `only` to engines this run lacks: one skipped test says so (a file with none fails). */
function skipWhenNoEngine(title: string, options: EngineOptions): boolean {
  if (options.only === undefined || availableEngines(options).length > 0) return false
  describe.skip(title, () => {
    it(`needs ${options.only?.join(' or ') ?? ''}, which this run does not have`, () => {})
  })
  return true
}

/**
 * Declares the same suite once per available engine, each with its own freshly migrated database
 * (`describe('x [pglite]')`, `describe('x [postgres]')`, with `{ citus: true }` also `'x [citus]'`).
 * The reporter counts tests per engine from these suffixes.
 *
 * @example
 * ```ts
 * describeEachEngine('isolation', (engine) => {
 *   it('…', async () => { await engine().admin.query('select 1') })
 * })
 * ```
 */
export function describeEachEngine(
  title: string,
  body: (engine: () => TestEngine) => void,
  options: EngineOptions = {},
): void {
  if (skipWhenNoEngine(title, options)) return
  for (const name of availableEngines(options)) {
    describe(`${title} [${name}]`, () => {
      let current: TestEngine | undefined
      beforeAll(async () => {
        current = await openEngine(name)
      })
      afterAll(async () => {
        await current?.close()
      })
      body(() => {
        if (!current) throw new Error(`engine ${name} is not open (beforeAll failed?)`)
        return current
      })
    })
  }
}

/** A migrated engine plus a library `Database` on it. */
export interface TestDatabase {
  readonly engine: TestEngine
  readonly db: Database
}

/**
 * Like {@link describeEachEngine}, with a `Database` (createDatabase) open on each engine's database.
 * `config` is merged into the database config (e.g. hooks, logger). On PostgreSQL the database connects
 * as the runtime login, with the owner as its `admin` connection (for organizations.findMany and
 * maintenance) unless `config` names `admin` itself (`admin: undefined` for none).
 */
export function describeEachDatabase(
  title: string,
  body: (ctx: () => TestDatabase) => void,
  config: Omit<DatabaseConfig, 'primary'> = {},
  options: EngineOptions = {},
): void {
  if (skipWhenNoEngine(title, options)) return
  for (const name of availableEngines(options)) {
    describe(`${title} [${name}]`, () => {
      let current: TestDatabase | undefined
      beforeAll(async () => {
        const engine = await openEngine(name)
        const primary = engine.pglite ?? engine.url
        if (!primary) throw new Error('engine has no target')
        const admin = engine.ownerUrl !== undefined && !('admin' in config) ? { admin: engine.ownerUrl } : {}
        current = { engine, db: createDatabase({ pool: { max: 4 }, ...admin, ...config, primary }) }
      })
      afterAll(async () => {
        await current?.db.close()
        await current?.engine.close()
      })
      body(() => {
        if (!current) throw new Error(`database on ${name} is not open (beforeAll failed?)`)
        return current
      })
    })
  }
}
