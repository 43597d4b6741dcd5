/**
 * A private PostgreSQL primary + asynchronous streaming replica started from local binaries, for
 * suites that need to control the replica (stop/start it, delay replay, wait for catch-up) —
 * which a shared server from `acquirePostgresServer` must not allow.
 *
 * Same recipe as the `local-binaries` source of `postgres-server.ts` (initdb, pg_basebackup -R
 * -X stream, trust auth, own ports and socket dir, exit handler + detached watchdog cleanup).
 * Scratch databases: `createScratchDatabase(handle.adminUrl)` on the primary; the database
 * reaches the replica through replication, at `withDatabase(handle.replicaUrl, scratch.name)`
 * (after {@link LocalClusterHandle.waitForReplicaCatchUp}, or poll).
 */
import { join } from 'node:path'
import {
  adminSql,
  chooseRunner,
  errorMessage,
  findBinDir,
  logTail,
  runCommand,
  sleep,
  startLocalBinaryCluster,
  startServer,
  waitForStreaming,
} from './postgres-server.js'

/** Options of {@link startLocalCluster}. */
export interface LocalClusterOptions {
  /** receives one progress line at a time (default: discarded) */
  log?: (line: string) => void
  /** extra settings appended to the primary's postgresql.conf (the replica inherits them: it copies that file) */
  primarySettings?: Record<string, string | number>
  /** extra settings for the replica (its postgresql.auto.conf, read last, so they win) */
  replicaSettings?: Record<string, string | number>
}

/** A running private primary + streaming replica; see {@link startLocalCluster}. */
export interface LocalClusterHandle {
  /** postgres superuser on the primary, database postgres */
  adminUrl: string
  /** postgres superuser on the replica, database postgres */
  replicaUrl: string
  primaryPort: number
  replicaPort: number
  /** the Unix socket directory of both servers (also the cluster's temp dir) */
  socketDir: string
  description: string
  /** `pg_ctl stop -m fast` the replica and wait until it is down; no-op when it is not running. */
  stopReplica(): Promise<void>
  /** Starts the replica again and waits until it is streaming and accepting connections; no-op when running. */
  startReplica(): Promise<void>
  /**
   * Sets `recovery_min_apply_delay` on the replica (ALTER SYSTEM + pg_reload_conf, no restart) and
   * waits until a new replica session reports it; 0 removes the delay. The replica must be running.
   */
  setReplicaApplyDelay(ms: number): Promise<void>
  /**
   * Restarts the primary (`pg_ctl restart -m <mode>`, waiting until it accepts connections again): `fast`
   * ends sessions and checkpoints, `immediate` is a crash (recovery on start). Returns how long it was
   * down, as pg_ctl saw it (for reports; no test may assert on it).
   */
  restartPrimary(mode: 'fast' | 'immediate'): Promise<{ downMs: number }>
  /** Waits until the replica's `pg_last_wal_replay_lsn()` reaches the primary's `pg_current_wal_lsn()` at call time. */
  waitForReplicaCatchUp(timeoutMs?: number): Promise<void>
  /** Stops both servers and removes the temp dir; idempotent. */
  stop(): Promise<void>
}

/** Settings the harness owns (ports, sockets, replication); overriding them would break the handle. */
const RESERVED_SETTINGS = [
  'port',
  'listen_addresses',
  'unix_socket_directories',
  'primary_conninfo',
  'hot_standby',
  'wal_level',
] as const

// Hang bounds, not speed checks: generous, because replay and start-up on a loaded machine take many times
// longer than on an idle one.
const DEFAULT_CATCH_UP_TIMEOUT_MS = 60_000
const STREAMING_TIMEOUT_MS = 60_000

/**
 * Whether {@link startLocalCluster} can work here: PostgreSQL binaries found (PG_BIN,
 * /usr/lib/postgresql/<v>/bin or pg_config) and, when root, a `postgres` OS user to run them as.
 * Does not start anything.
 */
export async function localBinariesAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    const binDir = await findBinDir()
    await chooseRunner()
    await runCommand(join(binDir, 'postgres'), ['--version'], { timeoutMs: 10_000 })
    return { ok: true }
  } catch (error) {
    return { ok: false, reason: errorMessage(error) }
  }
}

/**
 * Starts a NEW private primary + asynchronous streaming replica (no synchronous_standby_names)
 * in a temp dir. Call `stop()` when done (also cleaned up on process exit or by a watchdog when
 * the process is killed).
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalClusterHandle> {
  const log = options.log ?? (() => {})
  for (const [name, settings] of [
    ['primarySettings', options.primarySettings],
    ['replicaSettings', options.replicaSettings],
  ] as const) {
    const reserved = Object.keys(settings ?? {}).filter((key) =>
      (RESERVED_SETTINGS as readonly string[]).includes(key.toLowerCase()),
    )
    if (reserved.length > 0) throw new Error(`${name} may not set ${reserved.join(', ')}: the harness owns them`)
  }

  const started = await startLocalBinaryCluster(log, {
    ...(options.primarySettings === undefined ? {} : { primary: options.primarySettings }),
    ...(options.replicaSettings === undefined ? {} : { replica: options.replicaSettings }),
  })
  const { cluster, run, adminUrl, replicaUrl } = started

  // Replica lifecycle calls are serialised so stop/start/stop from a test cannot interleave.
  let replicaQueue: Promise<unknown> = Promise.resolve()
  const serialised = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = replicaQueue.then(fn, fn)
    replicaQueue = next.catch(() => {})
    return next
  }
  let stopped = false
  const assertRunning = (what: string): void => {
    if (stopped) throw new Error(`${what}: the local cluster has been stopped`)
  }

  const replicaRunning = async (): Promise<boolean> => {
    try {
      await run('pg_ctl', ['-D', cluster.replicaDir, 'status'], 10_000)
      return true
    } catch {
      // pg_ctl status exits 3 when no server runs (4 when the data dir is missing)
      return false
    }
  }

  const handle: LocalClusterHandle = {
    adminUrl,
    replicaUrl,
    primaryPort: started.primaryPort,
    replicaPort: started.replicaPort,
    socketDir: cluster.root,
    description: started.description,

    stopReplica: () =>
      serialised(async () => {
        assertRunning('stopReplica')
        if (!(await replicaRunning())) return
        const t0 = Date.now()
        try {
          await run('pg_ctl', ['-D', cluster.replicaDir, '-m', 'fast', '-w', '-t', '60', 'stop'], 70_000)
        } catch (error) {
          throw new Error(
            `pg_ctl stop of the replica failed: ${errorMessage(error)}\nreplica log:\n${await logTail(cluster.replicaLog)}`,
          )
        }
        log(`replica :${started.replicaPort} stopped in ${Date.now() - t0} ms`)
      }),

    startReplica: () =>
      serialised(async () => {
        assertRunning('startReplica')
        if (await replicaRunning()) return
        const t0 = Date.now()
        await startServer(run, cluster.replicaDir, cluster.replicaLog)
        await waitForStreaming(adminUrl, replicaUrl, STREAMING_TIMEOUT_MS).catch(async (error: unknown) => {
          throw new Error(
            `${errorMessage(error)}\nprimary log:\n${await logTail(cluster.primaryLog)}\nreplica log:\n${await logTail(cluster.replicaLog)}`,
          )
        })
        log(`replica :${started.replicaPort} started and streaming in ${Date.now() - t0} ms`)
      }),

    restartPrimary: (mode) =>
      serialised(async () => {
        assertRunning('restartPrimary')
        const t0 = Date.now()
        try {
          await run(
            'pg_ctl',
            ['-D', cluster.primaryDir, '-m', mode, '-w', '-t', '60', '-l', cluster.primaryLog, 'restart'],
            70_000,
          )
        } catch (error) {
          throw new Error(
            `pg_ctl restart -m ${mode} of the primary failed: ${errorMessage(error)}\nprimary log:\n${await logTail(cluster.primaryLog)}`,
          )
        }
        const downMs = Date.now() - t0
        log(`primary :${started.primaryPort} restarted (-m ${mode}) in ${downMs} ms`)
        return { downMs }
      }),

    setReplicaApplyDelay: (ms) =>
      serialised(async () => {
        assertRunning('setReplicaApplyDelay')
        if (!Number.isInteger(ms) || ms < 0)
          throw new Error(`apply delay must be a non-negative integer (ms), got ${ms}`)
        const sql = adminSql(replicaUrl)
        try {
          // ALTER SYSTEM works on a hot standby: it writes postgresql.auto.conf, not WAL.
          if (ms === 0) await sql`alter system reset recovery_min_apply_delay`
          else await sql.unsafe(`alter system set recovery_min_apply_delay = '${ms}ms'`)
          await sql`select pg_reload_conf()`
        } finally {
          await sql.end({ timeout: 5 })
        }
        // The reload is asynchronous (SIGHUP via the postmaster): poll new sessions until it shows.
        const deadline = Date.now() + 60_000
        let last = 'not checked yet'
        for (;;) {
          const probe = adminSql(replicaUrl)
          try {
            const [row] = await probe<{ setting: string; shown: string }[]>`
              select setting, current_setting('recovery_min_apply_delay') as shown
              from pg_settings where name = 'recovery_min_apply_delay'`
            if (row?.setting === String(ms)) {
              log(`replica recovery_min_apply_delay = ${row.shown}`)
              return
            }
            last = `SHOW recovery_min_apply_delay = ${row?.shown ?? '?'}`
          } catch (error) {
            last = errorMessage(error)
          } finally {
            await probe.end({ timeout: 5 })
          }
          if (Date.now() > deadline) {
            throw new Error(`replica recovery_min_apply_delay not ${ms}ms after reload: ${last}`)
          }
          await sleep(20)
        }
      }),

    async waitForReplicaCatchUp(timeoutMs = DEFAULT_CATCH_UP_TIMEOUT_MS) {
      assertRunning('waitForReplicaCatchUp')
      const primary = adminSql(adminUrl)
      let target: string
      try {
        const [row] = await primary<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`
        if (row === undefined) throw new Error('pg_current_wal_lsn() returned no row')
        target = row.lsn
      } finally {
        await primary.end({ timeout: 5 })
      }
      const replica = adminSql(replicaUrl)
      const deadline = Date.now() + timeoutMs
      let last = 'not checked yet'
      try {
        for (;;) {
          try {
            const [row] = await replica<{ ok: boolean | null; replay: string | null; delay: string }[]>`
              select pg_last_wal_replay_lsn() >= ${target}::pg_lsn as ok,
                     pg_last_wal_replay_lsn()::text as replay,
                     current_setting('recovery_min_apply_delay') as delay`
            if (row?.ok === true) return
            last = `replay LSN ${row?.replay ?? 'null'} (recovery_min_apply_delay ${row?.delay ?? '?'})`
          } catch (error) {
            last = errorMessage(error) // e.g. the replica is stopped; keep trying until the deadline
          }
          if (Date.now() > deadline) {
            throw new Error(`replica did not replay up to primary LSN ${target} within ${timeoutMs} ms: ${last}`)
          }
          await sleep(20)
        }
      } finally {
        await replica.end({ timeout: 1 })
      }
    },

    async stop() {
      stopped = true
      await replicaQueue
      await started.stop()
    },
  }
  return handle
}
