import { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { InvalidConfigurationError, MigrationError } from '../errors'
import { migrationsFolder } from './migrations-folder'
import { installKeyStatements } from './tenant-proof'

/** Where {@link migrate} applies the migrations. */
export type MigrationTarget = string | PGlite

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /**
   * How many months of audit-log partitions to create ahead of the current one.
   * @default 3
   */
  auditPartitionMonthsAhead?: number
  /**
   * The deployment secret whose key the database keeps to verify tenant proofs (see
   * `DatabaseConfig.secret`): installed (or made current again) by this run, keeping the one installed
   * before it valid too, so that a rotation can roll out. Every process of the deployment must then be
   * given the same secret. Without one, no key is installed and tenant units on a server fail with
   * `TENANT_PROOF_REJECTED` until one is.
   * @default process.env.CALLSHEET_SECRET
   */
  secret?: string
}

// Any stable 64-bit number: it serialises concurrent migrate() calls against one database.
const MIGRATION_LOCK_KEY = 7_301_946_015_231_214n

/**
 * Applies the committed migrations in `drizzle/`, creates the coming months' audit-log partitions and
 * installs the deployment secret's key (see {@link MigrateOptions.secret}).
 * Idempotent: a second run changes nothing. Concurrent runs against one database wait for each other
 * (advisory lock); several databases in one cluster can each be migrated (the app role is created
 * idempotently).
 *
 * @param target a connection URL or a PGlite instance; defaults to `DATABASE_URL`.
 * @throws InvalidConfigurationError when no target is given and `DATABASE_URL` is not set.
 * @throws MigrationError when a migration fails; the failing run is rolled back.
 *
 * @example
 * ```ts
 * await migrate(process.env.DATABASE_URL, { secret: process.env.CALLSHEET_SECRET })
 * ```
 */
export async function migrate(target?: MigrationTarget, options: MigrateOptions = {}): Promise<void> {
  const monthsAhead = options.auditPartitionMonthsAhead ?? 3
  if (!Number.isInteger(monthsAhead) || monthsAhead < 0 || monthsAhead > 120) {
    throw new InvalidConfigurationError(
      `auditPartitionMonthsAhead must be an integer from 0 to 120, got ${monthsAhead}`,
    )
  }
  const resolved = target ?? process.env.DATABASE_URL
  if (resolved === undefined || resolved === '') {
    throw new InvalidConfigurationError(
      'migrate() needs a target: pass a URL or a PGlite instance, or set DATABASE_URL',
    )
  }
  const secret = options.secret ?? (process.env.CALLSHEET_SECRET || undefined)
  if (secret !== undefined && (secret.length < 32 || secret.length > 1024 || !/^[\x21-\x7E]+$/.test(secret))) {
    throw new InvalidConfigurationError('secret must be 32 to 1024 printable ASCII characters without spaces')
  }
  const keyStatements = secret === undefined ? [] : installKeyStatements(secret)
  const folder = migrationsFolder()
  try {
    if (resolved instanceof PGlite) {
      await migratePglite(drizzlePglite(resolved), { migrationsFolder: folder })
      await resolved.query('select callsheet_ensure_audit_partitions($1)', [monthsAhead])
      for (const statement of keyStatements) await resolved.query(statement.text, statement.params)
      return
    }
    // One dedicated connection: the advisory lock, the migrations and the unlock must share a session.
    const client = postgres(resolved, { max: 1, onnotice: () => {} })
    try {
      await client`select pg_advisory_lock(${MIGRATION_LOCK_KEY.toString()}::bigint)`
      try {
        await migratePostgres(drizzlePostgres(client), { migrationsFolder: folder })
        await client`select callsheet_ensure_audit_partitions(${monthsAhead})`
        for (const statement of keyStatements) await client.unsafe(statement.text, statement.params)
      } finally {
        // A lost connection has released the lock already; do not let the unlock hide the real error.
        await client`select pg_advisory_unlock(${MIGRATION_LOCK_KEY.toString()}::bigint)`.catch(() => undefined)
      }
    } finally {
      await client.end({ timeout: 5 })
    }
  } catch (error) {
    if (error instanceof InvalidConfigurationError) throw error
    const detail =
      error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)
    throw new MigrationError(`migration failed: ${detail}`, { cause: error })
  }
}
