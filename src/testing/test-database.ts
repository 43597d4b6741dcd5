import type { PGlite } from '@electric-sql/pglite'
import { createPglite } from '../engine/pglite/create-pglite'
import { migrate } from '../migrations/migrate'
import { createDatabase, type Database } from '../client/create-database'
import type { DatabaseConfig } from '../client/config'

/** Options of {@link createTestDatabase}: the parts of `DatabaseConfig` that make sense on PGlite. */
export type TestDatabaseOptions = Pick<DatabaseConfig, 'hooks' | 'logger' | 'onHookError'>

/** A library `Database` on its own migrated in-memory PGlite, which it owns. */
export interface TestDatabase extends Database {
  /** The PGlite under the database (for raw SQL as the owner, a superuser: RLS does not apply to it). */
  readonly pglite: PGlite
  /** Closes the database and its PGlite. Idempotent. */
  close(): Promise<void>
}

// The migrated template's data directory (a tarball, ~40 MB), made once per process. The template
// PGlite itself is closed as soon as it is dumped: nothing stays open that would keep the process
// alive, and each test database starts from the tarball (what `PGlite#clone()` does, minus re-dumping
// the template every time).
let template: Promise<Blob> | undefined

async function makeTemplate(): Promise<Blob> {
  const pg = await createPglite()
  try {
    await migrate(pg)
    const dump = await pg.dumpDataDir('none')
    return dump
  } finally {
    await pg.close()
  }
}

function templateDataDir(): Promise<Blob> {
  if (!template) {
    const made = makeTemplate()
    template = made
    // A failed template is not cached: the next call tries again.
    made.catch(() => {
      if (template === made) template = undefined
    })
  }
  return template
}

/**
 * A fresh, migrated, in-memory database for one test file (or one test): the library's full
 * `Database` API on its own PGlite, with RLS, triggers and extensions as in production.
 *
 * The first call in a process creates and migrates a template (~2–4 s, ~550 MB RSS, the PGlite WASM
 * runtime) and keeps only its data directory; every call then starts a copy of it (~0.5 s, ~200 MB
 * each). Concurrent first calls share one template. Close each database when done: an open PGlite
 * keeps the process from exiting.
 *
 * @throws MigrationError if the template cannot be migrated (the next call retries).
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
  const dataDir = await templateDataDir()
  const pglite = await createPglite({ loadDataDir: dataDir })
  let db: Database
  try {
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
 * Forgets the migrated template kept by {@link createTestDatabase} (its ~40 MB data directory), e.g.
 * in a long-lived process after the tests. No PGlite stays open for the template, so calling it is
 * never needed for a process to exit; the next `createTestDatabase` makes a new template.
 *
 * @example
 * ```ts
 * afterAll(() => disposeTestTemplate())
 * ```
 */
export async function disposeTestTemplate(): Promise<void> {
  const current = template
  template = undefined
  // Wait for a template being made so its PGlite is closed before this resolves.
  await current?.catch(() => undefined)
}
