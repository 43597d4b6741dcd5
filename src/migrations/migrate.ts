import type { PGlite } from '@electric-sql/pglite'
import { isPGlite } from '../engine/pglite/is-pglite'
import postgres from 'postgres'
import { InvalidConfigurationError, MigrationError, isCallsheetDbError } from '../errors'
import { migrationsFolder } from './migrations-folder'
import { readJournal } from './journal'
import { readMigrationFolder } from './apply-migrations'
import type { MigrationQuery } from './migrations-table'
import { appMigrations } from './app-migrations'
import { checkLockTimeout, citusTransactionSettings, lockTimeoutError, sessionSettings } from './lock-timeout'
import { Progress, type MigrateProgress, type MigrateReport } from './progress'
import { runSteps } from './run-steps'
import { APP_ROLE } from '../schema/columns'
import { installKeyStatements } from '../engine/tenant-proof'

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
   * After migrating, create (or bring in line) the login that serves requests: see
   * {@link createRuntimeLogin}. PostgreSQL server only.
   */
  runtimeLogin?: RuntimeLoginOptions
  /**
   * The deployment secret whose key the database keeps to verify tenant proofs (see
   * `DatabaseConfig.secret`): installed (or made current again) by this run, keeping the one installed
   * before it valid too, so that a rotation can roll out. Every process of the deployment must then be
   * given the same secret. Without one, no key is installed and tenant units on a server fail with
   * `TENANT_PROOF_REJECTED` until one is. `null`: none, whatever `CALLSHEET_SECRET` says (a copied template).
   * @default process.env.CALLSHEET_SECRET
   */
  secret?: string | null
  /**
   * The app's own drizzle-kit migrations folder (the one with `meta/_journal.json`), applied after the
   * library's in the same run — on a server under the same lock — and recorded where drizzle-kit records
   * them, `drizzle.__drizzle_migrations` (or {@link MigrateOptions.appMigrationsTable}). Every migration of its
   * journal must be recorded afterwards, or `MigrationsNotAppliedError`. See README "Your own tenant tables".
   */
  appMigrationsFolder?: string
  /**
   * Where the app's migrations are recorded, as in drizzle-kit's `migrations: { schema, table }`.
   * @default { schema: 'drizzle', table: '__drizzle_migrations' }
   */
  appMigrationsTable?: { readonly schema?: string; readonly table?: string }
  /**
   * On a PostgreSQL server, the longest migrate() waits for a lock another session holds (its
   * connection's `lock_timeout`; `statement_timeout` is off for it) before it gives up with the retryable
   * `MigrationLockTimeoutError` (`MIGRATION_LOCK_TIMEOUT`), rather than queue every query on that table
   * behind its own wait. The pending migrations run in one transaction, so none of them is applied then
   * (a `-- callsheet:no-transaction` migration runs outside it: those before it stay applied). On a Citus
   * coordinator it also bounds lock waits on the shards (set in each transaction, propagated to the
   * workers). 0: no limit. Not the wait for a concurrent migrate() (the advisory lock). Ignored on PGlite.
   * CLI: `--lock-timeout <ms>`.
   * @default 5000
   */
  lockTimeoutMs?: number
  /** Called at each step (see {@link MigrateProgress}); what it throws is ignored. */
  onProgress?: (event: MigrateProgress) => void
}

export type { MigrateProgress, MigrateReport } from './progress'

/** The runtime login {@link createRuntimeLogin} creates. */
export interface RuntimeLoginOptions {
  /** Its name: a plain lower-case role name. */
  name: string
  /**
   * Its password (stored as the server's `password_encryption` hash). Omitted: an existing login keeps
   * its password; a new one has none (it can then only log in where `pg_hba.conf` does not ask for one).
   */
  password?: string
  /**
   * The app role it becomes a member of.
   * @default 'callsheet_app'
   */
  appRole?: string
}

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/

// Any stable 64-bit number: it serialises concurrent migrate() calls against one database.
const MIGRATION_LOCK_KEY = 7_301_946_015_231_214n

/**
 * Applies the committed migrations in `drizzle/`, recording them in `callsheet_migrations.applied` (a
 * database migrated before that records them in drizzle's default table: migrate() first copies our rows
 * from there, leaving the table to the app), creates the coming months' audit-log partitions and
 * installs the deployment secret's key (see {@link MigrateOptions.secret}).
 * Idempotent: a second run changes nothing. Concurrent runs against one database wait for each other
 * (advisory lock); several databases in one cluster can each be migrated (the app role is created
 * idempotently).
 *
 * @param target a connection URL or a PGlite instance; defaults to `DATABASE_URL`.
 * @throws InvalidConfigurationError when no target is given and `DATABASE_URL` is not set.
 * @throws MigrationError when a migration fails; the failing run is rolled back. Also when drizzle's
 *   default table records some of our migrations but not those before them (nothing is guessed).
 * @throws MigrationsNotAppliedError when, after the run, a migration the package ships is not recorded.
 * @throws MigrationChangedError when the database records a shipped migration with another hash (its
 *   file changed after it was applied); nothing is applied.
 * @throws MigrationLockTimeoutError (retryable) when a lock wait exceeds {@link MigrateOptions.lockTimeoutMs}.
 * @returns what the run applied (see {@link MigrateReport}).
 *
 * @example
 * ```ts
 * await migrate(process.env.DATABASE_ADMIN_URL, { secret: process.env.CALLSHEET_SECRET })
 * ```
 */
export async function migrate(target?: MigrationTarget, options: MigrateOptions = {}): Promise<MigrateReport> {
  const monthsAhead = options.auditPartitionMonthsAhead ?? 3
  if (!Number.isInteger(monthsAhead) || monthsAhead < 0 || monthsAhead > 120) {
    throw new InvalidConfigurationError(
      `auditPartitionMonthsAhead must be an integer from 0 to 120, got ${monthsAhead}`,
    )
  }
  const resolved = target ?? process.env.DATABASE_ADMIN_URL
  if (resolved === undefined || resolved === '') {
    throw new InvalidConfigurationError(
      "migrate() needs a target: pass a URL or a PGlite instance, or set DATABASE_ADMIN_URL (the owner's URL)",
    )
  }
  const secret = options.secret === null ? undefined : (options.secret ?? (process.env.CALLSHEET_SECRET || undefined))
  if (secret !== undefined && (secret.length < 32 || secret.length > 1024 || !/^[\x21-\x7E]+$/.test(secret))) {
    throw new InvalidConfigurationError('secret must be 32 to 1024 printable ASCII characters without spaces')
  }
  const keyStatements = secret === undefined ? [] : installKeyStatements(secret)
  const lockTimeoutMs = checkLockTimeout(options.lockTimeoutMs)
  const app = appMigrations(options)
  const progress = new Progress(options.onProgress)
  try {
    const folder = migrationsFolder()
    // The same files, read the same way, as drizzle's migrator reads them.
    const journal = readJournal(folder)
    const ours = readMigrationFolder(folder)
    if (isPGlite(resolved)) {
      if (options.runtimeLogin !== undefined)
        throw new InvalidConfigurationError('runtimeLogin is for PostgreSQL servers: PGlite has a single user')
      // A single session: no lock to wait for, so lockTimeoutMs does not apply.
      const pg = resolved
      return await runSteps(
        {
          query: async <T>(text: string, params?: unknown[]) => (await pg.query<T>(text, params)).rows,
          transaction: (run) =>
            pg.transaction((tx) =>
              run(async <T>(text: string, params?: unknown[]) => (await tx.query<T>(text, params)).rows),
            ),
          afterOurs: async () => {
            await pg.query('select callsheet_ensure_audit_partitions($1)', [monthsAhead])
            for (const statement of keyStatements) await pg.query(statement.text, statement.params)
          },
        },
        ours,
        journal,
        app,
        progress,
      )
    }
    if (options.runtimeLogin !== undefined) checkRuntimeLoginOptions(options.runtimeLogin)
    // One dedicated connection: the advisory lock, the migrations and the unlock must share a session.
    const client = postgres(resolved, { max: 1, onnotice: () => {} })
    try {
      await client`select pg_advisory_lock(${MIGRATION_LOCK_KEY.toString()}::bigint)`
      try {
        const settings = sessionSettings(lockTimeoutMs)
        await client.unsafe(settings.text, settings.params)
        const unsafe =
          (sql: postgres.Sql | postgres.TransactionSql) =>
          <T>(text: string, params?: unknown[]) =>
            sql.unsafe(text, params as never[]) as unknown as Promise<T[]>
        const [citus] = await client<
          { on: boolean }[]
        >`select exists (select 1 from pg_catalog.pg_extension where extname = 'citus') as on`
        const opening = citus?.on === true ? citusTransactionSettings(lockTimeoutMs) : []
        const transaction = <T>(run: (tx: MigrationQuery) => Promise<T>) =>
          client.begin(async (tx) => {
            for (const statement of opening) await tx.unsafe(statement)
            return run(unsafe(tx))
          }) as Promise<T>
        return await runSteps(
          {
            query: unsafe(client),
            transaction,
            afterOurs: async () => {
              // In a transaction of its own: on Citus, new partitions of distributed audit_logs reach the shards.
              await transaction((tx) => tx('select callsheet_ensure_audit_partitions($1)', [monthsAhead]))
              if (options.runtimeLogin !== undefined) await ensureRuntimeLogin(client, options.runtimeLogin)
              for (const statement of keyStatements) await client.unsafe(statement.text, statement.params)
            },
          },
          ours,
          journal,
          app,
          progress,
        )
      } finally {
        // A lost connection has released the lock already; do not let the unlock hide the real error.
        await client`select pg_advisory_unlock(${MIGRATION_LOCK_KEY.toString()}::bigint)`.catch(() => undefined)
      }
    } finally {
      await client.end({ timeout: 5 })
    }
  } catch (error) {
    const folder = progress.phase === 'app-applying' ? app?.config.migrationsFolder : migrationsFolder()
    const timedOut = lockTimeoutError(error, lockTimeoutMs, progress.phase, progress.migrations, folder)
    if (timedOut) throw timedOut
    // Ours already say what failed (configuration, an adoption refused, migrations not applied).
    if (isCallsheetDbError(error)) throw error
    const detail =
      error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)
    throw new MigrationError(`migration failed: ${detail}`, { cause: error })
  }
}

function checkRuntimeLoginOptions(login: RuntimeLoginOptions): void {
  if (typeof login !== 'object' || login === null)
    throw new InvalidConfigurationError('runtimeLogin must be an object { name, password? }')
  if (typeof login.name !== 'string' || !ROLE_NAME.test(login.name))
    throw new InvalidConfigurationError('runtimeLogin.name must be a plain lower-case role name')
  const appRole = login.appRole ?? APP_ROLE
  if (typeof appRole !== 'string' || !ROLE_NAME.test(appRole))
    throw new InvalidConfigurationError('runtimeLogin.appRole must be a plain lower-case role name')
  if (login.name === appRole) throw new InvalidConfigurationError('runtimeLogin.name must differ from the app role')
  if (login.password !== undefined && (typeof login.password !== 'string' || login.password === ''))
    throw new InvalidConfigurationError('runtimeLogin.password must be a non-empty string')
}

/**
 * Creates the login that serves requests, or brings an existing one in line: LOGIN, NOSUPERUSER,
 * NOCREATEDB, NOCREATEROLE, NOBYPASSRLS, NOREPLICATION and NOINHERIT, a member of the app role, with
 * CONNECT on the database. NOINHERIT: the login holds no privilege of its own, so SQL injected into a
 * tenant unit that runs `RESET ROLE` is left with nothing (not even the app role's grants); the library
 * switches to the app role inside every unit. Idempotent, and safe to run from several processes at once.
 *
 * Run it as the owner that ran {@link migrate} (it needs CREATEROLE or superuser, and the right to grant
 * the app role). `migrate(url, { runtimeLogin })` does the same after migrating.
 *
 * @param target the owner's connection URL; defaults to `DATABASE_URL`.
 * @throws InvalidConfigurationError on a bad name or password, or no target.
 * @throws MigrationError when the server refuses (e.g. the connecting role may not create roles).
 *
 * @example
 * ```ts
 * await createRuntimeLogin(process.env.DATABASE_ADMIN_URL, {
 *   name: 'callsheet_runtime',
 *   password: process.env.CALLSHEET_RUNTIME_PASSWORD,
 * })
 * // the app then connects as postgres://callsheet_runtime:…@host/db
 * ```
 */
export async function createRuntimeLogin(target: string | undefined, login: RuntimeLoginOptions): Promise<void> {
  checkRuntimeLoginOptions(login)
  const url = target ?? process.env.DATABASE_ADMIN_URL
  if (url === undefined || url === '')
    throw new InvalidConfigurationError("createRuntimeLogin() needs the owner's URL, or DATABASE_ADMIN_URL set")
  if (typeof url !== 'string' || !/^postgres(ql)?:\/\//.test(url))
    throw new InvalidConfigurationError('createRuntimeLogin() needs a postgres:// URL (PGlite has a single user)')
  const client = postgres(url, { max: 1, onnotice: () => {} })
  try {
    await ensureRuntimeLogin(client, login)
  } catch (error) {
    const detail =
      error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)
    throw new MigrationError(`creating runtime login ${login.name} failed: ${detail}`, { cause: error })
  } finally {
    await client.end({ timeout: 5 })
  }
}

// The names are checked against ROLE_NAME before they reach this SQL, so they need no quoting beyond
// %I. The password travels as a transaction-local setting rather than in the statement text, so that a
// statement log does not show it.
async function ensureRuntimeLogin(client: postgres.Sql, login: RuntimeLoginOptions): Promise<void> {
  const appRole = login.appRole ?? APP_ROLE
  await client.begin(async (tx) => {
    await tx`select set_config('callsheet.runtime_login', ${login.name}, true),
                    set_config('callsheet.runtime_app_role', ${appRole}, true),
                    set_config('callsheet.runtime_password', ${login.password ?? ''}, true)`
    await tx.unsafe(RUNTIME_LOGIN_SQL)
  })
}

const RUNTIME_LOGIN_SQL = `DO $runtime_login$
DECLARE
  login text := current_setting('callsheet.runtime_login');
  app_role text := current_setting('callsheet.runtime_app_role');
  secret text := current_setting('callsheet.runtime_password');
  r pg_catalog.pg_roles%ROWTYPE;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = app_role) THEN
    RAISE EXCEPTION 'role % does not exist: run migrate() first', app_role;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = login) THEN
    BEGIN
      EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION NOINHERIT', login);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created by a concurrent run
    END;
  END IF;
  SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname = login;
  -- Only what differs is altered: a non-superuser with CREATEROLE may not even name SUPERUSER or BYPASSRLS.
  IF r.rolsuper THEN EXECUTE format('ALTER ROLE %I NOSUPERUSER', login); END IF;
  IF r.rolbypassrls THEN EXECUTE format('ALTER ROLE %I NOBYPASSRLS', login); END IF;
  IF r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolinherit OR NOT r.rolcanlogin THEN
    EXECUTE format('ALTER ROLE %I LOGIN NOCREATEROLE NOCREATEDB NOREPLICATION NOINHERIT', login);
  END IF;
  IF secret <> '' THEN
    EXECUTE format('ALTER ROLE %I PASSWORD %L', login, secret);
  END IF;
  IF NOT pg_catalog.pg_has_role(login, app_role, 'MEMBER') THEN
    BEGIN
      EXECUTE format('GRANT %I TO %I', app_role, login);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), login);
END
$runtime_login$`
