// Over 350 lines because it is the three sources of a test server (DATABASE_URL, testcontainers, local binaries) and the one
// lifecycle they share (free ports, socket dirs, exit handler, detached watchdog); split, that recipe would be restated.
/**
 * Finds or starts a real PostgreSQL server for the server-backed test suites and benchmarks.
 *
 * Sources, in order: `DATABASE_URL` (a server the user points at), testcontainers (a Docker
 * engine), and local PostgreSQL binaries (a throwaway primary + streaming replica in a temp dir).
 */
import { execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants as fsConstants, readdirSync, rmSync } from 'node:fs'
import { access, appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import postgres from 'postgres'
import { createRuntimeLogin } from '../src/migrations/migrate'
// Type-only: erased at runtime, so testcontainers is loaded only when that source is tried.
import type * as TestcontainersPostgres from '@testcontainers/postgresql'
import type * as Testcontainers from 'testcontainers'

/** Where a {@link PostgresServer} came from. */
type ServerSource = 'DATABASE_URL' | 'testcontainers' | 'local-binaries'

/** A reachable PostgreSQL server (and possibly a streaming replica of it). */
export interface PostgresServer {
  source: ServerSource
  /** superuser (or at least CREATEDB+CREATEROLE) connection URL to the primary, database "postgres" (or the DATABASE_URL as given) */
  adminUrl: string
  /** connection URL to a streaming replica of the primary, if this source provides one (local-binaries does; DATABASE_URL may via the first URL of env DATABASE_REPLICA_URLS; testcontainers: none) */
  replicaUrl?: string
  /** human-readable description, e.g. "local PostgreSQL 15.19 binaries (/usr/lib/postgresql/15/bin), primary :54xx + streaming replica :54yy" */
  description: string
  /** stops and removes whatever was started (no-op for DATABASE_URL). Must be idempotent. */
  stop(): Promise<void>
}

/** Outcome of {@link acquirePostgresServer}. */
export interface AcquireResult {
  server?: PostgresServer
  /** why each source was not usable, in order tried */
  attempts: { source: ServerSource; reason: string }[]
}

/** Options of {@link acquirePostgresServer}. */
export interface AcquireOptions {
  /** receives one progress line at a time (default: discarded) */
  log?: (line: string) => void
}

const execFileAsync = promisify(execFile)

const LOG_TAIL_LINES = 25
const PROBE_TIMEOUT_S = 5

/**
 * Returns a PostgreSQL server to test against, trying `DATABASE_URL`, then testcontainers, then
 * local binaries. A set but unreachable `DATABASE_URL` is reported, never silently replaced.
 */
export async function acquirePostgresServer(options: AcquireOptions = {}): Promise<AcquireResult> {
  const log = options.log ?? (() => {})
  const attempts: AcquireResult['attempts'] = []

  const databaseUrl = process.env.DATABASE_URL
  if (databaseUrl !== undefined && databaseUrl !== '') {
    if (emptyToUndefined(process.env.DATABASE_REPLICA_URL) !== undefined) {
      // The old name, read by nothing else: a silent test run without its replica would look like a pass.
      attempts.push({
        source: 'DATABASE_URL',
        reason:
          'DATABASE_REPLICA_URL is set: it is now DATABASE_REPLICA_URLS (comma-separated, as the library reads it)',
      })
      return { attempts }
    }
    const replicaUrl = firstReplicaUrl(process.env.DATABASE_REPLICA_URLS)
    try {
      const server = await fromDatabaseUrl(databaseUrl, replicaUrl)
      log(`using ${server.description}`)
      return { server, attempts }
    } catch (error) {
      attempts.push({ source: 'DATABASE_URL', reason: errorMessage(error) })
      return { attempts }
    }
  }
  attempts.push({ source: 'DATABASE_URL', reason: 'DATABASE_URL is not set' })

  try {
    const server = await fromTestcontainers(log)
    return { server, attempts }
  } catch (error) {
    const reason = errorMessage(error)
    log(`testcontainers not usable: ${reason}`)
    attempts.push({ source: 'testcontainers', reason })
  }

  try {
    const server = await fromLocalBinaries(log)
    return { server, attempts }
  } catch (error) {
    const reason = errorMessage(error)
    log(`local binaries not usable: ${reason}`)
    attempts.push({ source: 'local-binaries', reason })
  }

  return { attempts }
}

/**
 * Creates a fresh database on the server and returns its URL (same credentials/host as
 * `adminUrl`, database name replaced). `drop()` disconnects remaining sessions and is idempotent.
 */
export async function createScratchDatabase(
  adminUrl: string,
  prefix = 'cs_test',
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  // The name is interpolated into DDL (identifiers cannot be bound), so it is restricted to a safe alphabet.
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
    throw new Error(`invalid scratch database prefix ${JSON.stringify(prefix)}: use [a-z_][a-z0-9_]{0,40}`)
  }
  const name = `${prefix}_${randomBytes(4).toString('hex')}`
  await withAdmin(adminUrl, async (sql) => {
    await sql.unsafe(`CREATE DATABASE "${name}"`)
  })
  let dropped: Promise<void> | undefined
  return {
    url: withDatabase(adminUrl, name),
    name,
    drop() {
      dropped ??= withAdmin(adminUrl, async (sql) => {
        // FORCE (PostgreSQL 13+) terminates sessions a test left open, e.g. an unclosed pool.
        await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      }).catch((error: unknown) => {
        dropped = undefined // a failed drop may be retried
        throw error
      })
      return dropped
    },
  }
}

/** The login the server suites serve requests as (issue 14: two roles), one per cluster. */
export const RUNTIME_LOGIN = 'callsheet_runtime'
const RUNTIME_PASSWORD = 'callsheet-runtime-test-only'

/**
 * Creates (idempotently) the runtime login with the library's own `createRuntimeLogin`, as the owner of
 * the migrated database at `ownerUrl`, and returns that database's URL as the runtime login. Several
 * test files do this at once: role DDL racing on the shared catalog may fail with "tuple concurrently
 * updated", so it is tried again.
 */
export async function runtimeLoginUrl(ownerUrl: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      await createRuntimeLogin(ownerUrl, { name: RUNTIME_LOGIN, password: RUNTIME_PASSWORD })
      break
    } catch (error) {
      if (attempt >= 8) throw error
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80))
    }
  }
  return asRuntimeLogin(ownerUrl)
}

/** `url` (e.g. a replica's) as the runtime login {@link runtimeLoginUrl} created. */
export function asRuntimeLogin(url: string): string {
  return withLogin(url, RUNTIME_LOGIN, RUNTIME_PASSWORD)
}

/** Returns `url` with its user and password replaced. */
export function withLogin(url: string, user: string, password: string): string {
  const parsed = new URL(url)
  parsed.username = encodeURIComponent(user)
  parsed.password = encodeURIComponent(password)
  return parsed.toString()
}

/** Returns `url` with its database name replaced by `dbName`. */
export function withDatabase(url: string, dbName: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error(`not a parseable connection URL: ${redactUrl(url)}`)
  }
  parsed.pathname = `/${encodeURIComponent(dbName)}`
  return parsed.toString()
}

// ---------------------------------------------------------------------------------------------
// DATABASE_URL

async function fromDatabaseUrl(adminUrl: string, replicaUrl: string | undefined): Promise<PostgresServer> {
  let version: string
  try {
    version = await serverVersion(adminUrl)
  } catch (error) {
    throw new Error(`DATABASE_URL is set (${redactUrl(adminUrl)}) but not usable: ${errorMessage(error)}`)
  }
  if (replicaUrl !== undefined) {
    try {
      await serverVersion(replicaUrl)
    } catch (error) {
      throw new Error(`DATABASE_REPLICA_URLS is set (${redactUrl(replicaUrl)}) but not usable: ${errorMessage(error)}`)
    }
  }
  const replicaPart = replicaUrl === undefined ? '' : ` + replica ${redactUrl(replicaUrl)}`
  return {
    source: 'DATABASE_URL',
    adminUrl,
    ...(replicaUrl === undefined ? {} : { replicaUrl }),
    description: `DATABASE_URL ${redactUrl(adminUrl)} (${version})${replicaPart}`,
    stop: () => Promise.resolve(),
  }
}

// ---------------------------------------------------------------------------------------------
// testcontainers

async function fromTestcontainers(log: (line: string) => void): Promise<PostgresServer> {
  let testcontainers: typeof Testcontainers
  let pgModule: typeof TestcontainersPostgres
  try {
    testcontainers = await import('testcontainers')
    pgModule = await import('@testcontainers/postgresql')
  } catch (error) {
    throw new Error(`cannot load @testcontainers/postgresql: ${errorMessage(error)}`)
  }
  try {
    await testcontainers.getContainerRuntimeClient()
  } catch (error) {
    throw new Error(`no container runtime: ${errorMessage(error)}`)
  }
  const image = 'postgres:15-alpine'
  log(`starting ${image} with testcontainers`)
  const started = Date.now()
  const container = await new pgModule.PostgreSqlContainer(image).start()
  const adminUrl = withDatabase(container.getConnectionUri(), 'postgres')
  let stopped: Promise<void> | undefined
  const server: PostgresServer = {
    source: 'testcontainers',
    adminUrl,
    description: `testcontainers ${image} on ${container.getHost()}:${container.getPort()}`,
    stop() {
      stopped ??= container.stop().then(() => undefined)
      return stopped
    },
  }
  try {
    const version = await serverVersion(adminUrl)
    server.description += ` (${version})`
  } catch (error) {
    await server.stop().catch(() => {})
    throw new Error(`container started but not reachable: ${errorMessage(error)}`)
  }
  log(`${server.description} up in ${Date.now() - started} ms`)
  return server
}

// ---------------------------------------------------------------------------------------------
// local binaries

const REQUIRED_BINARIES = ['initdb', 'pg_ctl', 'pg_basebackup', 'postgres'] as const
export const OS_USER = 'postgres'

/** How commands are run: directly, or (when we are root) as the `postgres` OS user. */
export type Runner = { kind: 'self' } | { kind: 'runuser'; path: string } | { kind: 'su'; path: string }

interface LocalCluster {
  binDir: string
  runner: Runner
  root: string
  primaryDir: string
  replicaDir: string
  primaryLog: string
  replicaLog: string
}

async function fromLocalBinaries(log: (line: string) => void): Promise<PostgresServer> {
  const started = await startLocalBinaryCluster(log)
  return {
    source: 'local-binaries',
    adminUrl: started.adminUrl,
    replicaUrl: started.replicaUrl,
    description: started.description,
    stop: started.stop,
  }
}

/** Extra server settings for {@link startLocalBinaryCluster}. */
export interface LocalClusterSettings {
  /** appended to the primary's postgresql.conf (the replica copies that file, so it inherits them) */
  primary?: Record<string, string | number>
  /** appended to the replica's postgresql.auto.conf (read last, so they win over the primary's) */
  replica?: Record<string, string | number>
}

/** A running local primary + streaming replica, as started by {@link startLocalBinaryCluster}. */
export interface StartedLocalCluster {
  cluster: LocalCluster
  /** runs a binary of `cluster.binDir` the way the servers run (as the `postgres` OS user when root) */
  run: Run
  version: string
  primaryPort: number
  replicaPort: number
  adminUrl: string
  replicaUrl: string
  description: string
  /** stops both servers and removes the temp dir; idempotent */
  stop(): Promise<void>
}

/**
 * Starts a throwaway primary + asynchronous streaming replica from local binaries in a new temp
 * dir, with exit handler and watchdog cleanup. Used by the `local-binaries` source and by
 * `local-cluster.ts` for suites that need a private cluster.
 */
export async function startLocalBinaryCluster(
  log: (line: string) => void,
  settings: LocalClusterSettings = {},
): Promise<StartedLocalCluster> {
  const binDir = await findBinDir()
  const runner = await chooseRunner()
  const version = (await runCommand(join(binDir, 'postgres'), ['--version'], { timeoutMs: 10_000 })).stdout.trim()

  const started = Date.now()
  const root = await mkdtemp(join(tmpdir(), 'callsheet-pg-'))
  const cluster: LocalCluster = {
    binDir,
    runner,
    root,
    primaryDir: join(root, 'primary'),
    replicaDir: join(root, 'replica'),
    primaryLog: join(root, 'primary.log'),
    replicaLog: join(root, 'replica.log'),
  }
  // Registered before anything starts, so a failure or crash part-way still cleans up.
  const cleanup = registerClusterCleanup({
    binDir: cluster.binDir,
    runner: cluster.runner,
    root: cluster.root,
    dataDirs: [cluster.replicaDir, cluster.primaryDir],
    name: 'callsheet-pg-watchdog',
  })
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= stopCluster(cluster).finally(() => cleanup.unregister())
    return stopped
  }

  try {
    if (runner.kind !== 'self') {
      const { uid, gid } = await osUserIds(OS_USER)
      await chown(root, uid, gid)
    }
    const run = (binary: string, args: string[], timeoutMs: number): Promise<CommandOutput> =>
      runCommand(join(binDir, binary), args, { timeoutMs, runner, cwd: root })

    log(`initdb ${cluster.primaryDir} (${version}, ${binDir})`)
    await initdb(run, cluster.primaryDir)
    const primaryPort = await freePort()
    await appendFile(
      join(cluster.primaryDir, 'postgresql.conf'),
      configLines({
        listen_addresses: '127.0.0.1',
        port: primaryPort,
        unix_socket_directories: root,
        wal_level: 'replica',
        max_wal_senders: 5,
        fsync: 'off',
        max_connections: 200,
        shared_buffers: '128MB',
        hot_standby: 'on',
        hot_standby_feedback: 'on',
      }) + (settings.primary === undefined ? '' : configLines(settings.primary)),
    )
    await ensureReplicationTrust(cluster.primaryDir)
    log(`starting primary on 127.0.0.1:${primaryPort}`)
    await startServer(run, cluster.primaryDir, cluster.primaryLog)

    log(`pg_basebackup -> ${cluster.replicaDir}`)
    try {
      await run(
        'pg_basebackup',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(primaryPort),
          '-U',
          'postgres',
          '-D',
          cluster.replicaDir,
          '-R',
          '-X',
          'stream',
          '--checkpoint=fast',
          '--no-sync',
        ],
        60_000,
      )
    } catch (error) {
      throw new Error(
        `pg_basebackup failed: ${errorMessage(error)}\nprimary log:\n${await logTail(cluster.primaryLog)}`,
      )
    }
    const replicaPort = await freePort()
    // postgresql.auto.conf is read after postgresql.conf (copied from the primary), so these win.
    await appendFile(
      join(cluster.replicaDir, 'postgresql.auto.conf'),
      configLines({ ...settings.replica, port: replicaPort }),
    )
    log(`starting replica on 127.0.0.1:${replicaPort}`)
    await startServer(run, cluster.replicaDir, cluster.replicaLog)

    const adminUrl = `postgres://postgres@127.0.0.1:${primaryPort}/postgres`
    const replicaUrl = `postgres://postgres@127.0.0.1:${replicaPort}/postgres`
    await waitForStreaming(adminUrl, replicaUrl, 60_000).catch(async (error: unknown) => {
      throw new Error(
        `${errorMessage(error)}\nprimary log:\n${await logTail(cluster.primaryLog)}\nreplica log:\n${await logTail(cluster.replicaLog)}`,
      )
    })

    const asUser = runner.kind === 'self' ? '' : `, run as OS user ${OS_USER}`
    const description =
      `local ${version.replace(/^postgres \(PostgreSQL\) /, 'PostgreSQL ')} binaries (${binDir}), ` +
      `primary :${primaryPort} + streaming replica :${replicaPort} in ${root}${asUser}`
    log(`${description} up in ${Date.now() - started} ms`)
    return { cluster, run, version, primaryPort, replicaPort, adminUrl, replicaUrl, description, stop }
  } catch (error) {
    await stop().catch(() => {})
    throw error
  }
}

export async function findBinDir(): Promise<string> {
  const fromEnv = emptyToUndefined(process.env.PG_BIN)
  if (fromEnv !== undefined) {
    const missing = missingBinaries(fromEnv)
    if (missing.length > 0) throw new Error(`PG_BIN=${fromEnv} lacks ${missing.join(', ')}`)
    return fromEnv
  }
  const base = '/usr/lib/postgresql'
  let versions: string[] = []
  try {
    versions = readdirSync(base).filter((entry) => /^\d+(\.\d+)?$/.test(entry))
  } catch {
    // no Debian-style installation; fall through to pg_config
  }
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
  for (const version of versions) {
    const dir = join(base, version, 'bin')
    if (missingBinaries(dir).length === 0) return dir
  }
  let pgConfigDir: string
  try {
    pgConfigDir = (await runCommand('pg_config', ['--bindir'], { timeoutMs: 10_000 })).stdout.trim()
  } catch (error) {
    throw new Error(
      `no PostgreSQL binaries: PG_BIN unset, none complete under ${base}/*/bin, pg_config unusable (${errorMessage(error)})`,
    )
  }
  const missing = missingBinaries(pgConfigDir)
  if (missing.length > 0) {
    throw new Error(`no PostgreSQL binaries: pg_config --bindir is ${pgConfigDir}, which lacks ${missing.join(', ')}`)
  }
  return pgConfigDir
}

function missingBinaries(dir: string): string[] {
  return REQUIRED_BINARIES.filter((name) => !isExecutable(join(dir, name)))
}

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The server refuses to run as root, so as root everything runs as the `postgres` OS user. */
export async function chooseRunner(): Promise<Runner> {
  if (process.getuid?.() !== 0) return { kind: 'self' }
  try {
    await osUserIds(OS_USER)
  } catch (error) {
    throw new Error(
      `running as root, and PostgreSQL refuses to run as root; the OS user "${OS_USER}" to run it as is not usable (${errorMessage(error)}). ` +
        `Create it (e.g. install the postgresql package or "useradd --system ${OS_USER}") or run the tests as a non-root user.`,
    )
  }
  const runuser = findOnPath('runuser', ['/usr/sbin', '/sbin'])
  if (runuser !== undefined) return { kind: 'runuser', path: runuser }
  const su = findOnPath('su', ['/usr/bin', '/bin'])
  if (su !== undefined) return { kind: 'su', path: su }
  throw new Error(`running as root, and neither runuser nor su is available to run PostgreSQL as "${OS_USER}"`)
}

export function findOnPath(name: string, extraDirs: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs]
  return dirs.map((dir) => join(dir, name)).find(isExecutable)
}

export async function osUserIds(user: string): Promise<{ uid: number; gid: number }> {
  const [uidOut, gidOut] = await Promise.all([
    runCommand('id', ['-u', user], { timeoutMs: 5_000 }),
    runCommand('id', ['-g', user], { timeoutMs: 5_000 }),
  ])
  return { uid: Number(uidOut.stdout.trim()), gid: Number(gidOut.stdout.trim()) }
}

export type Run = (binary: string, args: string[], timeoutMs: number) => Promise<CommandOutput>

/** initdb with trust auth and user `postgres`, C.UTF-8 locale when the machine has it (else C). */
export async function initdb(run: Run, dataDir: string): Promise<void> {
  const args = ['-D', dataDir, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--no-sync']
  try {
    // C.UTF-8 keeps pg_trgm and ILIKE aware of non-ASCII letters; plain C does not.
    await run('initdb', [...args, '--locale=C.UTF-8'], 60_000)
  } catch (utf8Error) {
    await rm(dataDir, { recursive: true, force: true })
    try {
      await run('initdb', [...args, '--locale=C'], 60_000)
    } catch (cError) {
      throw new Error(`initdb failed: ${errorMessage(utf8Error)}\nretry with --locale=C: ${errorMessage(cError)}`)
    }
  }
}

/** initdb --auth=trust already writes this line; ensuring it keeps the harness working if that default changes. */
async function ensureReplicationTrust(dataDir: string): Promise<void> {
  const hbaPath = join(dataDir, 'pg_hba.conf')
  const hba = await readFile(hbaPath, 'utf8')
  const present = hba
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim().split(/\s+/))
    .some(
      (f) => f[0] === 'host' && f[1] === 'replication' && f[2] === 'all' && f[3] === '127.0.0.1/32' && f[4] === 'trust',
    )
  if (!present) await appendFile(hbaPath, '\nhost replication all 127.0.0.1/32 trust\n')
}

export async function startServer(run: Run, dataDir: string, logFile: string): Promise<void> {
  try {
    await run('pg_ctl', ['-w', '-t', '60', '-D', dataDir, '-l', logFile, 'start'], 70_000)
  } catch (error) {
    throw new Error(
      `pg_ctl start failed for ${dataDir}: ${errorMessage(error)}\nserver log:\n${await logTail(logFile)}`,
    )
  }
}

export async function waitForStreaming(primaryUrl: string, replicaUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const replica = adminSql(replicaUrl)
  const primary = adminSql(primaryUrl)
  let last = 'not checked yet'
  try {
    for (;;) {
      try {
        const [recovery] = await replica<{ inRecovery: boolean }[]>`select pg_is_in_recovery() as "inRecovery"`
        if (recovery?.inRecovery !== true) {
          last = 'replica is not in recovery'
        } else {
          const [streaming] = await primary<{ n: number }[]>`
            select count(*)::int as n from pg_stat_replication where state = 'streaming'`
          if ((streaming?.n ?? 0) > 0) return
          last = 'primary pg_stat_replication shows no streaming replica'
        }
      } catch (error) {
        last = errorMessage(error)
      }
      if (Date.now() > deadline) throw new Error(`replica not streaming after ${timeoutMs} ms: ${last}`)
      await sleep(50)
    }
  } finally {
    await Promise.all([replica.end({ timeout: 1 }), primary.end({ timeout: 1 })])
  }
}

async function stopCluster(cluster: LocalCluster): Promise<void> {
  const failures: string[] = []
  for (const dataDir of [cluster.replicaDir, cluster.primaryDir]) {
    if (!(await exists(join(dataDir, 'postmaster.pid')))) continue
    try {
      await runCommand(join(cluster.binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], {
        timeoutMs: 35_000,
        runner: cluster.runner,
        cwd: cluster.root,
      })
    } catch (error) {
      failures.push(`pg_ctl stop ${dataDir}: ${errorMessage(error)}`)
    }
  }
  await rm(cluster.root, { recursive: true, force: true })
  if (failures.length > 0) throw new Error(failures.join('\n'))
}

/**
 * Two safety nets for runs that never call stop(): an exit handler (normal exit, uncaught error),
 * and a detached watchdog that outlives a killed process (SIGKILL, Ctrl-C, CI timeout) — the
 * postmaster runs in its own session, so signals to the test process never reach it.
 */
export function registerClusterCleanup(options: {
  readonly binDir: string
  readonly runner: Runner
  /** The cluster's temporary folder: every data directory is a subfolder of it; removed at the end. */
  readonly root: string
  readonly dataDirs: readonly string[]
  /** The watchdog's process name (`ps`). */
  readonly name: string
}): { unregister(): void } {
  const { binDir, runner, root, dataDirs, name } = options
  const pgCtl = runnerArgv(runner, join(binDir, 'pg_ctl'), [])
  const onExit = (): void => {
    for (const dataDir of dataDirs) {
      try {
        const [file, ...args] = runnerArgv(runner, join(binDir, 'pg_ctl'), [
          '-D',
          dataDir,
          '-m',
          'immediate',
          '-w',
          '-t',
          '10',
          'stop',
        ]) as [string, ...string[]]
        accessSync(join(dataDir, 'postmaster.pid'))
        execFileSync(file, args, { stdio: 'ignore', timeout: 15_000, cwd: tmpdir() })
      } catch {
        // best effort: the process is exiting anyway
      }
    }
    try {
      rmSync(root, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
  process.on('exit', onExit)

  // Every subfolder with a postmaster.pid is a data directory of this cluster (the others are skipped).
  const script = [
    'parent=$1; dir=$2; shift 2',
    'while kill -0 "$parent" 2>/dev/null; do sleep 1; done',
    'for d in "$dir"/*/; do',
    '  [ -f "$d/postmaster.pid" ] && "$@" -D "$d" -m immediate -w -t 10 stop >/dev/null 2>&1',
    'done',
    'rm -rf "$dir"',
  ].join('\n')
  let watchdogPid: number | undefined
  try {
    const watchdog = spawn('/bin/sh', ['-c', script, name, String(process.pid), root, ...pgCtl], {
      detached: true,
      stdio: 'ignore',
      cwd: tmpdir(),
    })
    watchdog.on('error', () => {})
    watchdog.unref()
    watchdogPid = watchdog.pid
  } catch {
    // the exit handler still covers ordinary exits
  }

  return {
    unregister() {
      process.off('exit', onExit)
      if (watchdogPid !== undefined) {
        try {
          process.kill(-watchdogPid, 'SIGTERM')
        } catch {
          // already gone
        }
      }
    },
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : undefined
      server.close(() => (port === undefined ? reject(new Error('could not determine a free port')) : resolve(port)))
    })
  })
}

/** postgresql.conf lines for `settings`, strings quoted. */
export function configLines(settings: Record<string, string | number>): string {
  const lines = Object.entries(settings).map(([key, value]) =>
    typeof value === 'number' ? `${key} = ${value}` : `${key} = '${value.replace(/'/g, "''")}'`,
  )
  return `\n# callsheet test harness\n${lines.join('\n')}\n`
}

export async function logTail(path: string): Promise<string> {
  try {
    const text = await readFile(path, 'utf8')
    return text
      .trimEnd()
      .split('\n')
      .slice(-LOG_TAIL_LINES)
      .map((line) => `  | ${line}`)
      .join('\n')
  } catch (error) {
    return `  (no log: ${errorMessage(error)})`
  }
}

// ---------------------------------------------------------------------------------------------
// commands and connections

export interface CommandOutput {
  stdout: string
  stderr: string
}

/** The argv that runs `file` the way `runner` says (as the `postgres` OS user when root). */
export function runnerArgv(runner: Runner, file: string, args: string[]): string[] {
  switch (runner.kind) {
    case 'self':
      return [file, ...args]
    case 'runuser':
      return [runner.path, '-u', OS_USER, '--', file, ...args]
    case 'su':
      // su hands arguments after the user to the shell: they become $0 and $@ of the -c script.
      return [runner.path, '-s', '/bin/sh', '-c', 'exec "$0" "$@"', OS_USER, file, ...args]
  }
}

/** Environment for PostgreSQL tools: inherited PG* variables (PGDATA, PGPORT, PGOPTIONS …) would change what they do. */
function toolEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG')))
}

export async function runCommand(
  file: string,
  args: string[],
  options: { timeoutMs: number; runner?: Runner; cwd?: string },
): Promise<CommandOutput> {
  const [command, ...argv] = runnerArgv(options.runner ?? { kind: 'self' }, file, args) as [string, ...string[]]
  try {
    const { stdout, stderr } = await execFileAsync(command, argv, {
      timeout: options.timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 16 * 1024 * 1024,
      env: toolEnv(),
      encoding: 'utf8',
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    })
    return { stdout, stderr }
  } catch (error) {
    throw new Error(describeCommandFailure([command, ...argv], options.timeoutMs, error))
  }
}

function describeCommandFailure(argv: string[], timeoutMs: number, error: unknown): string {
  const shown = argv.join(' ')
  if (!(error instanceof Error)) return `${shown}: ${String(error)}`
  const details = error as Error & {
    code?: unknown
    signal?: unknown
    killed?: unknown
    stderr?: unknown
    stdout?: unknown
  }
  let status: string
  if (details.killed === true) status = `timed out after ${timeoutMs} ms`
  else if (details.code === 'ENOENT') status = 'not found'
  else if (typeof details.code === 'number') status = `exit code ${details.code}`
  else if (typeof details.signal === 'string') status = `killed by ${details.signal}`
  else status = error.message
  const output = [details.stderr, details.stdout]
    .filter((part): part is string => typeof part === 'string' && part.trim() !== '')
    .join('\n')
    .trim()
    .split('\n')
    .slice(-LOG_TAIL_LINES)
    .join('\n')
  return output === '' ? `${shown}: ${status}` : `${shown}: ${status}\n${output}`
}

export function adminSql(url: string): postgres.Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connect_timeout: PROBE_TIMEOUT_S,
    idle_timeout: 5,
    connection: { application_name: 'callsheet-test-harness' },
  })
}

async function withAdmin<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = adminSql(url)
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

async function serverVersion(url: string): Promise<string> {
  return withAdmin(url, async (sql) => {
    const [row] = await sql<{ version: string }[]>`select version()`
    const version = row?.version ?? 'unknown version'
    return version.replace(/ on .*$/, '')
  })
}

// ---------------------------------------------------------------------------------------------
// small helpers

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '<unparseable URL>'
  }
}

/** The first URL of a comma-separated `DATABASE_REPLICA_URLS` (the suites need one replica; the rest are not used). */
function firstReplicaUrl(value: string | undefined): string | undefined {
  return emptyToUndefined(
    value
      ?.split(',')
      .map((url) => url.trim())
      .find((url) => url !== ''),
  )
}

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

export function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(errorMessage).join('; ')
  }
  return error instanceof Error ? error.message : String(error)
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
