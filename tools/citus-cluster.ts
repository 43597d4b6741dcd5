// Over 350 lines because a Citus cluster is three nodes plus the per-database extension and node registration, on the
// same lifecycle recipe as postgres-server.ts (whose helpers it reuses).
/**
 * A throwaway Citus cluster (a coordinator and N workers, default two) started from local
 * PostgreSQL binaries that have the Citus extension installed (`.ci/run` installs it with
 * `bash ../shared/citus/install.sh` for PostgreSQL 15).
 *
 * Same recipe as the `local-binaries` source of `postgres-server.ts`: initdb with trust auth, own
 * free ports and socket dir, run as the `postgres` OS user when root, exit handler + detached
 * watchdog cleanup. Each node preloads `citus`; the `postgres` database of every node has the
 * extension, and the coordinator knows itself (`citus_set_coordinator_host`) and its workers
 * (`citus_add_node`). Citus metadata is per database, so tests use {@link CitusClusterHandle.createDatabase}.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chown, mkdtemp, rm, appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type postgres from 'postgres'
import {
  OS_USER,
  adminSql,
  chooseRunner,
  configLines,
  errorMessage,
  findBinDir,
  freePort,
  initdb,
  isExecutable,
  logTail,
  osUserIds,
  registerClusterCleanup,
  runCommand,
  startServer,
  withDatabase,
  type Runner,
} from './postgres-server.js'

/** Options of {@link startCitusCluster}. */
export interface CitusClusterOptions {
  /** receives one progress line at a time (default: discarded) */
  log?: (line: string) => void
  /**
   * number of worker nodes
   * @default 2
   */
  workers?: number
  /** extra settings appended to every node's postgresql.conf (e.g. `{ 'citus.shard_count': 8 }`) */
  settings?: Record<string, string | number>
}

/** A scratch database that exists on every node of the cluster, with Citus set up in it. */
export interface CitusScratchDatabase {
  name: string
  /** postgres superuser on the coordinator, this database */
  url: string
  /** postgres superuser on each worker, this database (for inspecting shards; the application talks to the coordinator) */
  workerUrls: string[]
  /** drops the database on every node, terminating sessions left open; idempotent */
  drop(): Promise<void>
}

/** A running Citus cluster; see {@link startCitusCluster}. */
export interface CitusClusterHandle {
  /** postgres superuser on the coordinator, database postgres (Citus is set up in it) */
  coordinatorUrl: string
  /** postgres superuser on each worker, database postgres */
  workerUrls: string[]
  /** the Unix socket directory of every node (also the cluster's temp dir) */
  socketDir: string
  description: string
  /**
   * Creates a database on every node (Citus 13 propagates `CREATE DATABASE` from the coordinator when
   * `citus.enable_create_database_propagation` is on, which this cluster sets), creates the citus
   * extension in it on every node, and registers the coordinator and workers in its metadata.
   * @default prefix 'cs_citus'
   */
  createDatabase(prefix?: string): Promise<CitusScratchDatabase>
  /** stops every node and removes the temp dir; idempotent */
  stop(): Promise<void>
}

/** Settings the harness owns; overriding them would break the handle or Citus itself. */
const RESERVED_SETTINGS = ['port', 'listen_addresses', 'unix_socket_directories', 'shared_preload_libraries'] as const

const NODE_HOST = '127.0.0.1'

/**
 * Whether {@link startCitusCluster} can work here: PostgreSQL binaries found, `citus.so` in their
 * `pkglibdir`, and (when root) a `postgres` OS user. Starts nothing.
 */
export async function citusAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    const binDir = await findBinDir()
    await chooseRunner()
    const libDir = await pkgLibDir(binDir)
    const citusLib = join(libDir, 'citus.so')
    if (!existsSync(citusLib)) {
      return { ok: false, reason: `${citusLib} missing: install Citus (bash ../shared/citus/install.sh)` }
    }
    return { ok: true }
  } catch (error) {
    return { ok: false, reason: errorMessage(error) }
  }
}

/**
 * Starts a NEW coordinator + workers in a temp dir. Call `stop()` when done (also cleaned up on
 * process exit, or by a watchdog when the process is killed).
 * @throws Error when binaries or Citus are missing, or a node does not start (with its log tail)
 */
export async function startCitusCluster(options: CitusClusterOptions = {}): Promise<CitusClusterHandle> {
  const log = options.log ?? (() => {})
  const workerCount = options.workers ?? 2
  if (!Number.isInteger(workerCount) || workerCount < 1) {
    throw new Error(`workers must be a positive integer, got ${workerCount}`)
  }
  const reserved = Object.keys(options.settings ?? {}).filter((key) =>
    (RESERVED_SETTINGS as readonly string[]).includes(key.toLowerCase()),
  )
  if (reserved.length > 0) throw new Error(`settings may not set ${reserved.join(', ')}: the harness owns them`)

  const binDir = await findBinDir()
  const runner = await chooseRunner()
  const citusLib = join(await pkgLibDir(binDir), 'citus.so')
  if (!existsSync(citusLib)) throw new Error(`${citusLib} missing: install Citus (bash ../shared/citus/install.sh)`)

  const started = Date.now()
  const root = await mkdtemp(join(tmpdir(), 'callsheet-citus-'))
  const nodes: CitusNode[] = ['coordinator', ...Array.from({ length: workerCount }, (_, i) => `worker${i + 1}`)].map(
    (name) => ({ name, dataDir: join(root, name), logFile: join(root, `${name}.log`), port: 0 }),
  )
  // Registered before anything starts, so a failure or crash part-way still cleans up.
  const cleanup = registerClusterCleanup({
    binDir,
    runner,
    root,
    dataDirs: nodes.map((node) => node.dataDir),
    name: 'callsheet-citus-watchdog',
  })
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= stopNodes(binDir, runner, root, nodes).finally(() => cleanup.unregister())
    return stopped
  }

  try {
    if (runner.kind !== 'self') {
      const { uid, gid } = await osUserIds(OS_USER)
      await chown(root, uid, gid)
    }
    const run = (binary: string, args: string[], timeoutMs: number): ReturnType<typeof runCommand> =>
      runCommand(join(binDir, binary), args, { timeoutMs, runner, cwd: root })

    log(`initdb ${nodes.length} nodes in ${root}`)
    await Promise.all(nodes.map((node) => initdb(run, node.dataDir)))
    for (const node of nodes) {
      node.port = await freePort()
      await appendFile(
        join(node.dataDir, 'postgresql.conf'),
        configLines({
          listen_addresses: NODE_HOST,
          port: node.port,
          unix_socket_directories: root,
          shared_preload_libraries: 'citus',
          fsync: 'off',
          synchronous_commit: 'off',
          full_page_writes: 'off',
          max_connections: 200,
          shared_buffers: '64MB',
          // Citus commits multi-node transactions with two-phase commit.
          max_prepared_transactions: 100,
          // Shard moves (citus_move_shard_placement) use logical replication by default.
          wal_level: 'logical',
          max_replication_slots: 10,
          max_wal_senders: 10,
          'citus.enable_create_database_propagation': 'on',
        }) + (options.settings === undefined ? '' : configLines(options.settings)),
      )
    }
    log(`starting ${nodes.map((node) => `${node.name} :${node.port}`).join(', ')}`)
    await Promise.all(nodes.map((node) => startServer(run, node.dataDir, node.logFile)))

    const [coordinator, ...workers] = nodes as [CitusNode, ...CitusNode[]]
    const urlOf = (node: CitusNode, database = 'postgres'): string =>
      `postgres://postgres@${NODE_HOST}:${node.port}/${database}`
    await setUpCitus(
      urlOf(coordinator),
      workers.map((worker) => urlOf(worker)),
      coordinator.port,
      workers.map((worker) => worker.port),
    ).catch(async (error: unknown) => {
      const tails = await Promise.all(nodes.map(async (node) => `${node.name} log:\n${await logTail(node.logFile)}`))
      throw new Error(`${errorMessage(error)}\n${tails.join('\n')}`)
    })

    const version = (await runCommand(join(binDir, 'postgres'), ['--version'], { timeoutMs: 10_000 })).stdout.trim()
    const citusVersion = await withSql(urlOf(coordinator), async (sql) => {
      const [row] = await sql<{ v: string }[]>`select extversion as v from pg_extension where extname = 'citus'`
      return row?.v ?? '?'
    })
    const asUser = runner.kind === 'self' ? '' : `, run as OS user ${OS_USER}`
    const description =
      `Citus ${citusVersion} on local ${version.replace(/^postgres \(PostgreSQL\) /, 'PostgreSQL ')} (${binDir}), ` +
      `coordinator :${coordinator.port} + workers ${workers.map((worker) => `:${worker.port}`).join(', ')} in ${root}${asUser}`
    log(`${description} up in ${Date.now() - started} ms`)

    return {
      coordinatorUrl: urlOf(coordinator),
      workerUrls: workers.map((worker) => urlOf(worker)),
      socketDir: root,
      description,
      createDatabase: (prefix = 'cs_citus') =>
        createCitusDatabase(
          urlOf(coordinator),
          workers.map((worker) => urlOf(worker)),
          coordinator.port,
          workers.map((worker) => worker.port),
          prefix,
        ),
      stop,
    }
  } catch (error) {
    await stop().catch(() => {})
    throw error
  }
}

interface CitusNode {
  name: string
  dataDir: string
  logFile: string
  port: number
}

/** The extension on every node first: `citus_add_node` checks the worker has it. */
async function setUpCitus(
  coordinatorUrl: string,
  workerUrls: string[],
  coordinatorPort: number,
  workerPorts: number[],
): Promise<void> {
  await Promise.all(
    [coordinatorUrl, ...workerUrls].map((url) =>
      withSql(url, async (sql) => {
        await sql`create extension if not exists citus`
      }),
    ),
  )
  await withSql(coordinatorUrl, async (sql) => {
    await sql`select citus_set_coordinator_host(${NODE_HOST}, ${coordinatorPort})`
    // One at a time: each citus_add_node syncs metadata to the nodes already added.
    for (const port of workerPorts) await sql`select citus_add_node(${NODE_HOST}, ${port})`
  })
}

/**
 * {@link CitusClusterHandle.createDatabase} from another process (a test worker): the cluster is known
 * by its superuser URLs (the ports are read from them).
 */
export function createCitusScratchDatabase(
  coordinatorUrl: string,
  workerUrls: readonly string[],
  prefix = 'cs_citus',
): Promise<CitusScratchDatabase> {
  const portOf = (url: string): number => Number(new URL(url).port)
  return createCitusDatabase(coordinatorUrl, [...workerUrls], portOf(coordinatorUrl), workerUrls.map(portOf), prefix)
}

async function createCitusDatabase(
  coordinatorUrl: string,
  workerUrls: string[],
  coordinatorPort: number,
  workerPorts: number[],
  prefix: string,
): Promise<CitusScratchDatabase> {
  // The name is interpolated into DDL (identifiers cannot be bound), so it is restricted to a safe alphabet.
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
    throw new Error(`invalid scratch database prefix ${JSON.stringify(prefix)}: use [a-z_][a-z0-9_]{0,40}`)
  }
  const name = `${prefix}_${randomBytes(4).toString('hex')}`
  await withSql(coordinatorUrl, async (sql) => {
    await sql.unsafe(`create database "${name}"`)
  })
  const url = withDatabase(coordinatorUrl, name)
  const dbWorkerUrls = workerUrls.map((workerUrl) => withDatabase(workerUrl, name))
  let dropped: Promise<void> | undefined
  const scratch: CitusScratchDatabase = {
    name,
    url,
    workerUrls: dbWorkerUrls,
    drop() {
      dropped ??= (async () => {
        // The coordinator's cached connections to the workers (and a test's) make the propagated DROP
        // fail with "being accessed by other users" on a worker: end them there, and again if one raced in.
        for (let attempt = 1; ; attempt++) {
          for (const workerUrl of workerUrls)
            await withSql(workerUrl, async (sql) => {
              await sql.unsafe(
                `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}' and pid <> pg_backend_pid()`,
              )
            })
          try {
            await withSql(coordinatorUrl, async (sql) => {
              // Propagated to the workers like CREATE DATABASE; FORCE ends sessions a test left open.
              await sql.unsafe(`drop database if exists "${name}" with (force)`)
            })
            return
          } catch (error) {
            if ((error as { code?: string }).code !== '55006' || attempt >= 5) throw error
            await new Promise((resolve) => setTimeout(resolve, 200 * attempt))
          }
        }
      })().catch((error: unknown) => {
        dropped = undefined // a failed drop may be retried
        throw error
      })
      return dropped
    },
  }
  try {
    await setUpCitus(url, dbWorkerUrls, coordinatorPort, workerPorts)
  } catch (error) {
    await scratch.drop().catch(() => {})
    throw error
  }
  return scratch
}

async function pkgLibDir(binDir: string): Promise<string> {
  const pgConfig = join(binDir, 'pg_config')
  if (isExecutable(pgConfig)) {
    return (await runCommand(pgConfig, ['--pkglibdir'], { timeoutMs: 10_000 })).stdout.trim()
  }
  // Debian keeps pg_config out of the versioned bin dir; its pkglibdir is the sibling lib dir.
  return join(binDir, '..', 'lib')
}

async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = adminSql(url)
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

async function stopNodes(binDir: string, runner: Runner, root: string, nodes: CitusNode[]): Promise<void> {
  const failures: string[] = []
  await Promise.all(
    nodes.map(async (node) => {
      if (!existsSync(join(node.dataDir, 'postmaster.pid'))) return
      try {
        await runCommand(join(binDir, 'pg_ctl'), ['-D', node.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], {
          timeoutMs: 35_000,
          runner,
          cwd: root,
        })
      } catch (error) {
        failures.push(`pg_ctl stop ${node.dataDir}: ${errorMessage(error)}`)
      }
    }),
  )
  await rm(root, { recursive: true, force: true })
  if (failures.length > 0) throw new Error(failures.join('\n'))
}
