import type { PGlite } from '@electric-sql/pglite'
import { createPglite, smallMemoryStartParams } from '../engine/pglite/create-pglite'
import { SnapshotFilesystem } from '../engine/pglite/data-dir-snapshot'
import { createDatabase, type Database } from '../client/create-database'
import type { DatabaseConfig } from '../client/config'
import { loadTemplate, templateKey, type TemplateSnapshot, type TemplateSource } from './template-snapshot'

/** Options of {@link createTestDatabase}: the parts of `DatabaseConfig` that make sense on PGlite, and the app's migrations. */
export interface TestDatabaseOptions extends Pick<DatabaseConfig, 'hooks' | 'logger' | 'onHookError'> {
  /**
   * The app's own drizzle-kit migrations folder (its drizzle.config `out`), applied to the template after
   * the library's, recorded in drizzle's default table. Part of the template's key: changing a migration
   * there rebuilds the template.
   */
  readonly appMigrationsFolder?: string
}

/** A library `Database` on its own migrated in-memory PGlite, which it owns. */
export interface TestDatabase extends Database {
  /** The PGlite under the database (for raw SQL as the owner, a superuser: RLS does not apply to it). */
  readonly pglite: PGlite
  /**
   * Closes the database and its PGlite. Idempotent. Any use afterwards raises `DatabaseClosedError`
   * (code `DATABASE_CLOSED`, not retryable).
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
 * for these migrations. Measured on a 2-core machine (BENCHMARKS.md, "Test database"): the first call in
 * a process ≈ 1 s (PGlite's WebAssembly start), each later one ≈ 0.2–0.3 s; a process holding one
 * database ≈ 300 MB RSS. Close each database when done: an open PGlite keeps the process from exiting.
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
  const { snapshot, builtMonth } = await template(options.appMigrationsFolder).loaded
  const pglite = await createPglite({ fs: new SnapshotFilesystem(snapshot), startParams: [...smallMemoryStartParams] })
  let db: Database
  try {
    // A template from an earlier month lacks the months since: create them as migrate() would have.
    if (builtMonth !== new Date().toISOString().slice(0, 7)) {
      await pglite.query('select callsheet_ensure_audit_partitions(3)')
    }
    db = createDatabase({
      hooks: options.hooks,
      logger: options.logger,
      onHookError: options.onHookError,
      primary: pglite,
    })
  } catch (error) {
    await pglite.close()
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
    close() {
      closing ??= (async () => {
        try {
          await db.close()
        } finally {
          if (!pglite.closed) await pglite.close()
        }
      })()
      return closing
    },
  }
  return testDb
}

/**
 * Forgets the migrated templates this process keeps in memory for {@link createTestDatabase} (~35 MB
 * each), e.g. in a long-lived process after the tests. The machine's cache stays. No PGlite stays open
 * for a template, so calling it is never needed for a process to exit.
 *
 * @example
 * ```ts
 * afterAll(() => disposeTestTemplate())
 * ```
 */
export async function disposeTestTemplate(): Promise<void> {
  const current = [...templates.values()]
  templates.clear()
  // Wait for a template being made so its PGlite is closed before this resolves.
  await Promise.all(current.map((t) => t.catch(() => undefined)))
}
