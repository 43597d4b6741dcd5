import type { PGlite } from '@electric-sql/pglite'
import { createPglite, smallMemoryStartParams } from '../engine/pglite/create-pglite'
import { SnapshotFilesystem } from '../engine/pglite/data-dir-snapshot'
import { createDatabase, type Database } from '../client/create-database'
import type { DatabaseConfig } from '../client/config'
import { DatabaseClosedError } from '../errors'
import { capturePristine, pristineFromStored, resetToPristine, type PristineState } from './instance-reset'
import { loadTemplate, templateKey, type TemplateSnapshot, type TemplateSource } from './template-snapshot'
import { tuneWasmTiering } from './wasm-tiering'

/** Options of {@link createTestDatabase}: the parts of `DatabaseConfig` that make sense on PGlite, and the app's migrations. */
export interface TestDatabaseOptions extends Pick<DatabaseConfig, 'hooks' | 'logger' | 'onHookError'> {
  /**
   * The app's own drizzle-kit migrations folder (its drizzle.config `out`), applied to the template after
   * the library's, recorded in drizzle's default table. Part of the template's key: changing a migration
   * there rebuilds the template.
   */
  readonly appMigrationsFolder?: string
  /**
   * Whether this database may run on the PGlite instance of a closed test database, reset in place to the
   * template's state (20–80 ms instead of ≈ 0.25 s for a new instance), and may hand its own to the next one
   * when closed. A reset that cannot be proven complete (DDL, roles, an open transaction, …) is never
   * reused: that instance is closed and the next database starts a new one. `CALLSHEET_DB_TEST_REUSE=off`
   * turns reuse off for every database of the process.
   * @default true
   */
  readonly reuse?: boolean
}

/** A library `Database` on its own migrated in-memory PGlite, which it owns. */
export interface TestDatabase extends Database {
  /**
   * The PGlite under the database (for raw SQL as the owner, a superuser: RLS does not apply to it). Its
   * calls are refused with `DatabaseClosedError` once the database is closed, even when the instance lives
   * on for the next test database. Using anything but `query`, `exec`, `transaction`, `sql` and
   * `describeQuery` (e.g. `listen`, `Module`) keeps the instance from being reused.
   */
  readonly pglite: PGlite
  /**
   * Whether this database runs on the instance of an earlier, closed test database, reset in place (see
   * `TestDatabaseOptions.reuse`); `false` for a new instance.
   */
  readonly reused: boolean
  /**
   * Closes the database. Its PGlite is kept for the next test database of this process (reset in place
   * then; at most one idle instance) or closed (`reuse: false`, another instance already idle, or
   * `db.pglite` used beyond SQL). Idempotent. Any use afterwards, `pglite` included, raises
   * `DatabaseClosedError` (code `DATABASE_CLOSED`, not retryable).
   */
  close(): Promise<void>
}

/** What {@link prepareTestTemplate} did. */
export interface TestTemplateInfo {
  /**
   * `memory`: this process had it already; `cache`: loaded from the machine's cache; `built`: migrated
   * now (and cached, when `cacheFile` is set).
   */
  readonly source: TemplateSource
  /** The snapshot file on this machine, or `undefined` when the cache could not be written. */
  readonly cacheFile: string | undefined
  /** The template's key (a sha256 of the migrations it was made from, the PGlite version and the extensions). */
  readonly key: string
}

// The migrated templates this process has, by key. A failed template is not kept: the next call tries again.
const templates = new Map<string, Promise<TemplateSnapshot>>()

function template(appMigrationsFolder: string | undefined): {
  key: string
  loaded: Promise<TemplateSnapshot>
  /** Whether this call started loading it (else this process had it, or was getting it, already). */
  started: boolean
} {
  // Before the first PGlite of the process is made (the template's or a database's).
  tuneWasmTiering()
  const key = templateKey(appMigrationsFolder)
  let loaded = templates.get(key)
  const started = loaded === undefined
  if (loaded === undefined) {
    const attempt = loadTemplate(appMigrationsFolder)
    loaded = attempt
    templates.set(key, attempt)
    attempt.catch(() => {
      if (templates.get(key) === attempt) templates.delete(key)
    })
  }
  return { key, loaded, started }
}

/**
 * Makes sure the migrated template is ready, without opening a database: from this process's memory,
 * else the machine's cache (`node_modules/.cache/callsheet-db`, or `CALLSHEET_DB_CACHE_DIR`), else
 * built by migrating a PGlite (≈ 4–6 s) and cached. Call it from a test runner's global setup so
 * that parallel workers find the cache instead of each building it.
 *
 * @throws MigrationError when the migrations (the library's or the app's) cannot be applied.
 *
 * @example
 * ```ts
 * // vitest.config.ts: test.globalSetup: ['./test/global-setup.ts']
 * export default async function setup() {
 *   await prepareTestTemplate()
 * }
 * ```
 */
export async function prepareTestTemplate(
  options: Pick<TestDatabaseOptions, 'appMigrationsFolder'> = {},
): Promise<TestTemplateInfo> {
  const { key, loaded, started } = template(options.appMigrationsFolder)
  const result = await loaded
  return { source: started ? result.source : 'memory', cacheFile: result.cacheFile, key }
}

/**
 * A fresh, migrated, in-memory database for one test file (or one test): the library's full
 * `Database` API on its own PGlite, with RLS, triggers and extensions as in production.
 *
 * Each database starts from a snapshot of a migrated template's data directory (see
 * {@link prepareTestTemplate}): no migration runs at start-up once the machine's cache has the template
 * for these migrations. A database opened after another was closed runs on that one's PGlite, reset in
 * place to the template's state when the reset is provably complete (see `TestDatabaseOptions.reuse`,
 * docs/testing.md). Measured on a 2-core machine (BENCHMARKS.md, "test-database"): the first call in a
 * process ≈ 0.3–0.4 s (PGlite's WebAssembly start), a later one on a new instance ≈ 0.25 s, on a reused one 20–80 ms
 * (see there); a process holding one database ≈ 300 MB RSS. Close each database when done.
 *
 * @throws MigrationError if the template has to be built and the migrations cannot be applied (the next
 *   call retries).
 *
 * @example
 * ```ts
 * import { createTestDatabase, type TestDatabase } from '@callsheet/db/testing'
 * let db: TestDatabase
 * beforeAll(async () => { db = await createTestDatabase() })
 * afterAll(() => db.close())
 * it('creates', async () => {
 *   const org = await db.organizations.create({ name: 'Acme', slug: 'acme' })
 *   await db.tenant(org.id).departments.create({ name: 'Camera', code: 'CAM' })
 * })
 * ```
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const reuse = options.reuse ?? reuseByEnvironment()
  const { key, loaded } = template(options.appMigrationsFolder)
  const instance = (reuse ? await takeIdle(key) : undefined) ?? (await startInstance(key, await loaded, reuse))
  const lease: Lease = { closed: false, spoiled: undefined }
  const pglite = leasedPglite(instance.pglite, lease)
  let db: Database
  try {
    db = createDatabase({
      hooks: options.hooks,
      logger: options.logger,
      onHookError: options.onHookError,
      // The lease, not the instance: a new object, so the database gets its own tenant-proof key.
      primary: pglite,
    })
  } catch (error) {
    await instance.pglite.close()
    throw error
  }
  let closing: Promise<void> | undefined
  // Explicit delegation (not a spread): keeps working if `Database` becomes a class, and the compiler
  // flags any member added to `Database` that is not forwarded here.
  const testDb: TestDatabase = {
    get engine() {
      return db.engine
    },
    get organizations() {
      return db.organizations
    },
    get apiKeys() {
      return db.apiKeys
    },
    tenant: (organizationId, context, tenantOptions) => db.tenant(organizationId, context, tenantOptions),
    get maintenance() {
      return db.maintenance
    },
    migrate: (migrateOptions) => db.migrate(migrateOptions),
    distribute: (distributeOptions) => db.distribute(distributeOptions),
    stats: () => db.stats(),
    measureReplicaLag: () => db.measureReplicaLag(),
    get monitoring() {
      return db.monitoring
    },
    get $primary() {
      return db.$primary
    },
    pglite,
    reused: instance.uses > 1,
    close() {
      closing ??= (async () => {
        lease.closed = true
        try {
          await db.close()
        } finally {
          await release(instance, reuse && lease.spoiled === undefined)
        }
      })()
      return closing
    },
  }
  return testDb
}

/** A PGlite a test database runs on, and what it looked like fresh (`undefined`: never to be reused). */
interface Instance {
  readonly pglite: PGlite
  readonly key: string
  readonly pristine: PristineState | undefined
  /** How many test databases have run on it, this one included. */
  uses: number
}

/** One test database's hold on an instance. */
interface Lease {
  closed: boolean
  /** The first member of the PGlite used that the reset cannot see the effects of (the instance is then closed). */
  spoiled: string | undefined
}

// At most one idle instance per process (a PGlite holds ≈ 200 MB): a closed test database's, not reset yet.
let idle: Instance | undefined

const reuseByEnvironment = (): boolean => !/^(0|off|false|no)$/i.test(process.env.CALLSHEET_DB_TEST_REUSE ?? '')

async function startInstance(
  key: string,
  { snapshot, builtMonth, pristine: stored }: TemplateSnapshot,
  reuse: boolean,
): Promise<Instance> {
  const pglite = await createPglite({ fs: new SnapshotFilesystem(snapshot), startParams: [...smallMemoryStartParams] })
  try {
    const month = new Date().toISOString().slice(0, 7)
    // A template from an earlier month lacks the months since: create them as migrate() would have.
    if (builtMonth !== month) await pglite.query('select callsheet_ensure_audit_partitions(3)')
    // The snapshot's stored state applies while the instance is exactly the snapshot (nothing added at
    // start); else it is read from this instance (≈ 0.5 s), before the test can touch it.
    const pristine = !reuse
      ? undefined
      : ((stored !== undefined && stored.month === month && builtMonth === month
          ? await pristineFromStored(pglite, stored)
          : undefined) ?? (await capturePristine(pglite, month)))
    return { pglite, key, pristine, uses: 1 }
  } catch (error) {
    await pglite.close()
    throw error
  }
}

/** The idle instance for `key`, reset to the template's state; `undefined` when there is none or it cannot be reset. */
async function takeIdle(key: string): Promise<Instance | undefined> {
  const instance = idle
  if (instance?.key !== key || instance.pristine === undefined) return undefined
  idle = undefined
  const refused = await resetToPristine(instance.pglite, instance.pristine).catch((error: unknown) => String(error))
  if (refused !== undefined) {
    if (!instance.pglite.closed) await instance.pglite.close()
    return undefined
  }
  instance.uses++
  return instance
}

async function release(instance: Instance, reusable: boolean): Promise<void> {
  if (reusable && idle === undefined && instance.pristine !== undefined && !instance.pglite.closed) {
    idle = instance
    return
  }
  if (!instance.pglite.closed) await instance.pglite.close()
}

// What the reset sees the effects of (SQL, in the database) or what changes nothing; any other member
// (listeners, the Emscripten module and its filesystem, close, dumps) keeps the instance from being reused.
const LEASED_MEMBERS = new Set([
  'query',
  'exec',
  'transaction',
  'sql',
  'describeQuery',
  'closed',
  'ready',
  'waitReady',
  'isInTransaction',
  // isPGlite() looks for it (createDatabase on this PGlite): the protocol runs SQL, as query() does.
  'execProtocolRawSync',
  'then',
  // drizzle's is() reads it
  'constructor',
])

/**
 * The instance as one test database sees it: every call refused with `DatabaseClosedError` once that
 * database is closed, and a note of any member used whose effects a reset cannot see.
 */
function leasedPglite(pg: PGlite, lease: Lease): PGlite {
  return new Proxy(pg, {
    get(target, property) {
      if (property === 'closed') return lease.closed || target.closed
      if (typeof property === 'string' && !LEASED_MEMBERS.has(property)) lease.spoiled ??= property
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) =>
        lease.closed
          ? Promise.reject(new DatabaseClosedError("a call on the test database's PGlite"))
          : (value as (...a: unknown[]) => unknown).apply(target, args)
    },
  })
}

/**
 * Forgets the migrated templates this process keeps in memory for {@link createTestDatabase} (~35 MB
 * each) and closes the idle PGlite kept for the next test database (≈ 200 MB), e.g. in a long-lived
 * process after the tests. The machine's cache stays. Neither keeps a process from exiting, so calling it
 * is never needed for that.
 *
 * @example
 * ```ts
 * afterAll(() => disposeTestTemplate())
 * ```
 */
export async function disposeTestTemplate(): Promise<void> {
  const current = [...templates.values()]
  templates.clear()
  const instance = idle
  idle = undefined
  if (instance && !instance.pglite.closed) await instance.pglite.close()
  // Wait for a template being made so its PGlite is closed before this resolves.
  await Promise.all(current.map((t) => t.catch(() => undefined)))
}
