// Over 350 lines because a formation is a monitor, two keepers that must stay running, and five faults, each measured;
// the lifecycle recipe (ports, temp dir, runner, cleanup) is postgres-server.ts's, whose helpers it reuses.
/**
 * A throwaway pg_auto_failover formation (a monitor, a primary and a secondary) started from local
 * binaries (Debian package `postgresql-15-auto-failover`: `pg_autoctl`, and the `pgautofailover`
 * extension of the PostgreSQL 15 binaries), for the failover suites.
 *
 * Same recipe as `postgres-server.ts`: own free ports and temp dir, run as the `postgres` OS user when
 * root, trust auth, no SSL (tests only), exit handler + detached watchdog cleanup. Each node's
 * `pg_autoctl run` is a background process of ours, in its own process group behind a small
 * supervisor shell that kills that group when this process dies (so no keeper outlives the run and
 * restarts a server the watchdog stopped). pg_autoctl keeps its configuration and state under the
 * formation's temp dir (XDG_CONFIG_HOME / XDG_DATA_HOME), never in the OS user's home.
 *
 * The monitor's failure detection is shortened ({@link FAST_MONITOR_SETTINGS}): with pg_auto_failover's
 * defaults a killed primary is replaced after ~50 s (20 s "unhealthy" + 30 s demote timeout), too slow
 * for CI. Every fault reports the time it measured, so a suite compares its latencies to those.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, openSync, closeSync } from 'node:fs'
import { appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import {
  OS_USER,
  chooseRunner,
  runnerArgv,
  configLines,
  errorMessage,
  findBinDir,
  findOnPath,
  freePort,
  isExecutable,
  logTail,
  osUserIds,
  registerClusterCleanup,
  runCommand,
  sleep,
  type CommandOutput,
} from './postgres-server.js'

/** Options of {@link startAutoFailover}. */
export interface AutoFailoverOptions {
  /** receives one progress line at a time (default: discarded) */
  log?: (line: string) => void
  /**
   * The nodes' `wal_retrieve_retry_interval` in ms (PostgreSQL's default: 5000); see where it is set.
   * @default 500
   */
  walRetrieveRetryIntervalMs?: number
  /**
   * `pgautofailover.*` settings of the monitor (ms), over {@link FAST_MONITOR_SETTINGS}; pass pg_auto_failover's
   * defaults (e.g. `{ node_considered_unhealthy_timeout: 20000, primary_demote_timeout: 30000 }`) to measure those.
   */
  monitorSettings?: Record<string, number>
  /**
   * The keeper's `timeout.network_partition_timeout` (s): how long a primary that lost the monitor and its
   * standby keeps serving before it demotes itself. Kept below the monitor's demote timeout.
   * @default 3
   */
  networkPartitionTimeoutSeconds?: number
}

/** One Postgres node of the formation. */
export interface FormationNode {
  readonly name: string
  readonly port: number
  readonly dataDir: string
  /** postgres superuser on this node only, database postgres */
  readonly url: string
}

/** A node's state as the monitor records it. */
interface NodeState {
  readonly name: string
  readonly port: number
  readonly reported: string
  readonly goal: string
  readonly health: number
}

/** What {@link AutoFailoverHandle.performFailover} measured. */
interface SwitchoverReport {
  readonly from: string
  readonly to: string
  /** last moment the old primary accepted writes → first moment the new one did (polled every {@link PROBE_INTERVAL_MS} ms) */
  readonly switchoverMs: number
  /** `pg_autoctl perform failover` until the formation is primary + secondary again */
  readonly totalMs: number
}

/** What {@link AutoFailoverHandle.killPrimaryNode} measured. */
interface PromotionReport {
  readonly killed: string
  readonly promoted: string
  /** SIGKILL of the primary node → the secondary accepts writes */
  readonly promotionMs: number
  /** the killed node's keeper started again → formation primary + secondary again */
  readonly rejoinMs: number
}

/** What {@link AutoFailoverHandle.restartPrimary} measured. */
interface RestartReport {
  readonly node: string
  readonly mode: 'fast' | 'immediate'
  /** last answer before the restart → first answer after it (polled every {@link PROBE_INTERVAL_MS} ms) */
  readonly downtimeMs: number
  /**
   * last answer before the restart → first write committed after it. Longer than `downtimeMs` when the
   * primary is back before its synchronous standby: pg_auto_failover makes the secondary synchronous, and
   * a COMMIT waits until the secondary's WAL receiver has reconnected (it retries every
   * `wal_retrieve_retry_interval`, 5 s by default).
   */
  readonly writeDowntimeMs: number
  /** set when the monitor failed over during the restart: the new primary, and the monitor's event text */
  readonly failedOverTo?: string
  readonly failoverReason?: string
  /** set when `pg_ctl restart` itself failed (e.g. the keeper had started the server first): its message */
  readonly pgCtl?: string
}

/** A running formation; see {@link startAutoFailover}. */
export interface AutoFailoverHandle {
  readonly nodes: readonly FormationNode[]
  /** the monitor as pg_autoctl's nodes use it (`pg_autoctl show uri`): autoctl_node, database pg_auto_failover */
  readonly monitorUrl: string
  description: string
  /** postgres superuser on both nodes, as `pg_autoctl show uri --formation default` gives it (with `database`). */
  formationUrl(database?: string): string
  /** `pg_autoctl show uri --formation default` as the tool prints it. */
  showUri(): Promise<string>
  /** The nodes' states, as the monitor records them. */
  state(): Promise<NodeState[]>
  /** The node the monitor has as primary (and that reports it). @throws when there is none. */
  currentPrimary(): Promise<FormationNode>
  /** Waits until one node is `primary` and the other `secondary` (both reported and assigned). */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** `pg_autoctl perform failover`, then waits until the roles have swapped and the formation is whole. */
  performFailover(): Promise<SwitchoverReport>
  /**
   * SIGKILLs the primary node's keeper and Postgres (its whole process group), waits for the monitor to
   * promote the secondary, then starts the old node's keeper again and waits until it is the secondary.
   */
  killPrimaryNode(): Promise<PromotionReport>
  /**
   * `pg_ctl restart -m <mode>` of the primary (its keeper keeps running); measures the downtime. The
   * secondary has candidate priority 0 meanwhile, so that a restart stays a restart; should the monitor
   * fail over anyway, the report says so.
   */
  restartPrimary(mode: 'fast' | 'immediate'): Promise<RestartReport>
  /**
   * `pg_terminate_backend` of every client backend on every node (a pool may hold connections to the
   * standby too), except the postgres superuser's and pg_auto_failover's own; only those of `database`
   * when given. Returns how many were terminated on each node.
   */
  terminateAppBackends(database?: string): Promise<Record<string, number>>
  /** Stops every keeper and server and removes the temp dir; idempotent. */
  stop(): Promise<void>
}

/** The monitor's failure detection, shortened for tests (pg_auto_failover defaults in comments). */
const FAST_MONITOR_SETTINGS: Readonly<Record<string, number>> = {
  health_check_period: 1000, // 5000
  health_check_timeout: 1000, // 5000
  health_check_max_retries: 1, // 2
  health_check_retry_delay: 500, // 2000
  node_considered_unhealthy_timeout: 3000, // 20000
  primary_demote_timeout: 5000, // 30000
}

/** pg_autoctl's default candidate priority, given back to the secondary after a restart. */
const CANDIDATE_PRIORITY = 50

/** How often the fault probes ask a node whether it answers / accepts writes. */
const PROBE_INTERVAL_MS = 25

const HOST = '127.0.0.1'
const FORMATION = 'default'
// Hang bounds, not speed checks: generous for a busy 2-core CI machine.
const HEALTHY_TIMEOUT_MS = 120_000
const COMMAND_TIMEOUT_MS = 120_000

/** Where pg_autoctl is: PG_AUTOCTL, the PATH, /usr/bin, or the PostgreSQL bin dir. */
function findPgAutoctl(binDir: string): string | undefined {
  const fromEnv = process.env.PG_AUTOCTL
  if (fromEnv !== undefined && fromEnv !== '') return isExecutable(fromEnv) ? fromEnv : undefined
  return findOnPath('pg_autoctl', ['/usr/bin', binDir])
}

/**
 * Whether {@link startAutoFailover} can work here: PostgreSQL binaries, `pg_autoctl`, the
 * `pgautofailover` extension of those binaries and (when root) a `postgres` OS user. Starts nothing.
 */
export async function autoFailoverAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    const binDir = await findBinDir()
    await chooseRunner()
    const autoctl = findPgAutoctl(binDir)
    if (autoctl === undefined) {
      return { ok: false, reason: 'pg_autoctl not found: apt-get install postgresql-15-auto-failover' }
    }
    const control = join(await shareDir(binDir), 'extension', 'pgautofailover.control')
    if (!existsSync(control)) {
      return { ok: false, reason: `${control} missing: install postgresql-<major>-auto-failover for ${binDir}` }
    }
    return { ok: true }
  } catch (error) {
    return { ok: false, reason: errorMessage(error) }
  }
}

/**
 * Starts a NEW monitor + primary + secondary in a temp dir and waits until the monitor reports
 * primary/secondary. Call `stop()` when done (also cleaned up on process exit, or by a watchdog and
 * the keepers' supervisors when the process is killed).
 * @throws Error when a binary is missing or the formation does not come up (with the logs' tails)
 */
export async function startAutoFailover(options: AutoFailoverOptions = {}): Promise<AutoFailoverHandle> {
  const log = options.log ?? (() => {})
  const binDir = await findBinDir()
  const runner = await chooseRunner()
  const autoctl = findPgAutoctl(binDir)
  if (autoctl === undefined) throw new Error('pg_autoctl not found: apt-get install postgresql-15-auto-failover')
  const available = await autoFailoverAvailable()
  if (!available.ok) throw new Error(available.reason)

  const started = Date.now()
  const root = await mkdtemp(join(tmpdir(), 'callsheet-paf-'))
  const monitor = { name: 'monitor', dataDir: join(root, 'monitor'), logFile: join(root, 'monitor.log'), port: 0 }
  const nodes = ['node1', 'node2'].map((name) => ({
    name,
    dataDir: join(root, name),
    logFile: join(root, `${name}.log`),
    port: 0,
    url: '',
  }))
  const cleanup = registerClusterCleanup({
    binDir,
    runner,
    root,
    dataDirs: [...nodes.map((node) => node.dataDir), monitor.dataDir],
    name: 'callsheet-paf-watchdog',
  })
  const keepers = new Map<string, ChildProcess>()
  const env = [
    `XDG_CONFIG_HOME=${join(root, 'config')}`,
    `XDG_DATA_HOME=${join(root, 'data')}`,
    `XDG_RUNTIME_DIR=${join(root, 'run')}`,
    `PATH=${binDir}:/usr/bin:/bin`,
  ]
  const autoctlRun = (args: string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<CommandOutput> =>
    runCommand('/usr/bin/env', [...env, autoctl, ...args], { timeoutMs, runner, cwd: root })
  const pgCtl = (args: string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<CommandOutput> =>
    runCommand(join(binDir, 'pg_ctl'), args, { timeoutMs, runner, cwd: root })

  /** `pg_autoctl run` of one data dir, in its own process group behind a supervisor shell. */
  const startKeeper = (name: string, dataDir: string, logFile: string): void => {
    const fd = openSync(logFile, 'a')
    const script = [
      'parent=$1; shift',
      // SIGTERM to the group is for the keeper (it stops Postgres, then exits): the supervisor outlives it.
      "trap 'stopping=1' TERM",
      '"$@" & child=$!',
      'while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done',
      // Our process died (or the keeper did): take the keeper, its services and Postgres along.
      'kill -KILL -- -$$',
    ].join('\n')
    const argv = runnerArgv(runner, '/usr/bin/env', [...env, autoctl, 'run', '--pgdata', dataDir])
    const child = spawn('/bin/sh', ['-c', script, `callsheet-paf-${name}`, String(process.pid), ...argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd: root,
    })
    closeSync(fd)
    child.on('error', () => {})
    child.unref()
    keepers.set(name, child)
  }
  const killKeeper = async (name: string, signal: NodeJS.Signals): Promise<void> => {
    const child = keepers.get(name)
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      process.kill(-child.pid, signal)
    } catch {
      return // already gone
    }
    await Promise.race([exited, sleep(30_000)])
  }

  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      const failures: string[] = []
      await Promise.all(
        [...keepers.keys()].map(async (name) => {
          await killKeeper(name, 'SIGTERM') // pg_autoctl stops its Postgres (fast) on SIGTERM
          await killKeeper(name, 'SIGKILL')
        }),
      )
      for (const dataDir of [...nodes.map((node) => node.dataDir), monitor.dataDir]) {
        if (!existsSync(join(dataDir, 'postmaster.pid'))) continue
        await pgCtl(['-D', dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], 35_000).catch((error: unknown) => {
          if (existsSync(join(dataDir, 'postmaster.pid')))
            failures.push(`pg_ctl stop ${dataDir}: ${errorMessage(error)}`)
        })
      }
      await rm(root, { recursive: true, force: true })
      if (failures.length > 0) throw new Error(failures.join('\n'))
    })().finally(() => cleanup.unregister())
    return stopped
  }
  const logTails = async (): Promise<string> =>
    (
      await Promise.all([monitor, ...nodes].map(async (node) => `${node.name} log:\n${await logTail(node.logFile)}`))
    ).join('\n')

  try {
    if (runner.kind !== 'self') {
      const { uid, gid } = await osUserIds(OS_USER)
      await chown(root, uid, gid)
    }
    const common = ['--hostname', HOST, '--auth', 'trust', '--no-ssl', '--pgctl', join(binDir, 'pg_ctl')]

    monitor.port = await freePort()
    log(`pg_autoctl create monitor :${monitor.port} in ${root}`)
    await autoctlRun(['create', 'monitor', '--pgdata', monitor.dataDir, '--pgport', String(monitor.port), ...common])
    startKeeper('monitor', monitor.dataDir, monitor.logFile)
    const monitorUrl = `postgres://autoctl_node@${HOST}:${monitor.port}/pg_auto_failover?sslmode=disable`
    const monitorAdminUrl = `postgres://postgres@${HOST}:${monitor.port}/pg_auto_failover`
    const monitorSql = postgres(monitorAdminUrl, {
      max: 1,
      onnotice: () => {},
      connect_timeout: 5,
      connection: { application_name: 'callsheet-test-harness' },
    })
    const closeMonitorSql = async (): Promise<void> => {
      await monitorSql.end({ timeout: 1 }).catch(() => {})
    }
    const stopAll = stop
    const stopWithMonitor = (): Promise<void> => closeMonitorSql().then(stopAll)

    await waitUntil('monitor accepts connections', HEALTHY_TIMEOUT_MS, async () => {
      await monitorSql`select 1`
      return true
    })
    const settings = { ...FAST_MONITOR_SETTINGS, ...options.monitorSettings }
    const applyMonitorSettings = async (values: Record<string, number>): Promise<void> => {
      for (const [name, value] of Object.entries(values)) {
        if (!/^[a-z_]+$/.test(name) || !Number.isInteger(value)) throw new Error(`bad monitor setting ${name}=${value}`)
        await monitorSql.unsafe(`alter system set pgautofailover.${name} = ${value}`)
      }
      await monitorSql`select pg_reload_conf()`
    }
    await applyMonitorSettings(settings)

    for (const [index, node] of nodes.entries()) {
      node.port = await freePort()
      node.url = `postgres://postgres@${HOST}:${node.port}/postgres`
      log(`pg_autoctl create postgres ${node.name} :${node.port}`)
      await autoctlRun([
        'create',
        'postgres',
        '--pgdata',
        node.dataDir,
        '--pgport',
        String(node.port),
        '--name',
        node.name,
        '--monitor',
        monitorUrl,
        ...common,
      ])
      await autoctlRun([
        'config',
        'set',
        '--pgdata',
        node.dataDir,
        'timeout.network_partition_timeout',
        String(options.networkPartitionTimeoutSeconds ?? 3),
      ])
      // The secondary copies this file from the primary (pg_basebackup), so it gets these too.
      // wal_retrieve_retry_interval: how soon a standby's WAL receiver reconnects after its primary restarted.
      // pg_auto_failover makes the secondary synchronous, so until it has reconnected every COMMIT on the
      // restarted primary waits: with the default 5 s, commits stalled 4.4 s after a `restart -m fast`
      // (measured, issue 17) while the server itself was back within 1 s.
      if (index === 0)
        await appendFile(
          join(node.dataDir, 'postgresql.conf'),
          configLines({ fsync: 'off', wal_retrieve_retry_interval: `${options.walRetrieveRetryIntervalMs ?? 500}ms` }),
        )
      startKeeper(node.name, node.dataDir, node.logFile)
    }

    const state = async (): Promise<NodeState[]> => {
      const rows = await monitorSql<{ name: string; port: number; reported: string; goal: string; health: number }[]>`
        select nodename as name, nodeport as port, reportedstate::text as reported, goalstate::text as goal, health
        from pgautofailover.node where formationid = ${FORMATION} order by nodeid`
      return rows.map((row) => ({ ...row }))
    }
    const nodeByName = (name: string): FormationNode => {
      const node = nodes.find((candidate) => candidate.name === name)
      if (node === undefined) throw new Error(`the monitor names an unknown node ${name}`)
      return node
    }
    const healthy = async (): Promise<NodeState | undefined> => {
      const states = await state()
      const primary = states.find((s) => s.reported === 'primary' && s.goal === 'primary')
      const secondary = states.find((s) => s.reported === 'secondary' && s.goal === 'secondary')
      return states.length === 2 && secondary !== undefined ? primary : undefined
    }
    const waitHealthy = async (timeoutMs = HEALTHY_TIMEOUT_MS): Promise<void> => {
      await waitUntil('formation primary + secondary', timeoutMs, async () => (await healthy()) !== undefined).catch(
        async (error: unknown) => {
          const states = await state().catch(() => [])
          throw new Error(`${errorMessage(error)}\nstates: ${JSON.stringify(states)}\n${await logTails()}`)
        },
      )
    }
    const currentPrimary = async (): Promise<FormationNode> => {
      const states = await state()
      const primary = states.find(
        (s) => ['primary', 'wait_primary', 'single'].includes(s.reported) && s.goal === s.reported,
      )
      if (primary === undefined) throw new Error(`no primary in the formation now: ${JSON.stringify(states)}`)
      return nodeByName(primary.name)
    }

    const secondaryOf = (primary: FormationNode): FormationNode => nodes.find((node) => node !== primary) ?? primary
    const setCandidatePriority = async (node: FormationNode, priority: number): Promise<void> => {
      await autoctlRun(['set', 'node', 'candidate-priority', '--pgdata', node.dataDir, String(priority)])
    }

    await waitHealthy()
    const formationUrl = (database = 'postgres'): string =>
      `postgres://postgres@${nodes.map((node) => `${HOST}:${node.port}`).join(',')}/${database}?target_session_attrs=read-write`
    const asUser = runner.kind === 'self' ? '' : `, run as OS user ${OS_USER}`
    const version = (await autoctlRun(['--version'], 10_000)).stdout.split('\n')[0]?.trim() ?? 'pg_autoctl'
    const description =
      `${version} formation: monitor :${monitor.port}, ${nodes.map((node) => `${node.name} :${node.port}`).join(', ')} ` +
      `(${binDir}) in ${root}${asUser}`
    log(`${description} up in ${Date.now() - started} ms`)

    // One fault at a time: they restart keepers and read the roles.
    let queue: Promise<unknown> = Promise.resolve()
    const serialised = <T>(fn: () => Promise<T>): Promise<T> => {
      const next = queue.then(fn, fn)
      queue = next.catch(() => {})
      return next
    }

    return {
      nodes,
      monitorUrl,
      description,
      formationUrl,
      showUri: async () =>
        (await autoctlRun(['show', 'uri', '--monitor', monitorUrl, '--formation', FORMATION], 30_000)).stdout.trim(),
      state,
      currentPrimary,
      waitHealthy,

      performFailover: () =>
        serialised(async () => {
          await waitHealthy()
          const from = await currentPrimary()
          const to = nodes.find((node) => node !== from) ?? from
          const t0 = Date.now()
          const probes = [writableProbe(from.url), writableProbe(to.url)] as const
          try {
            await autoctlRun(['perform', 'failover', '--monitor', monitorUrl, '--formation', FORMATION])
            await waitUntil(`${to.name} primary`, HEALTHY_TIMEOUT_MS, async () => (await currentPrimary()) === to)
            await waitUntil(
              `${to.name} accepts writes`,
              HEALTHY_TIMEOUT_MS,
              () => probes[1].writableSince() !== undefined,
            )
            await waitHealthy()
          } finally {
            await Promise.all(probes.map((probe) => probe.stop()))
          }
          const lastOld = probes[0].lastWritable() ?? t0
          const firstNew = probes[1].writableSince() ?? Date.now()
          const report = { from: from.name, to: to.name, switchoverMs: firstNew - lastOld, totalMs: Date.now() - t0 }
          log(
            `failover ${report.from} → ${report.to}: writes stopped for ${report.switchoverMs} ms, whole in ${report.totalMs} ms`,
          )
          return report
        }),

      killPrimaryNode: () =>
        serialised(async () => {
          await waitHealthy()
          const victim = await currentPrimary()
          const survivor = nodes.find((node) => node !== victim) ?? victim
          const probe = writableProbe(survivor.url)
          let promotionMs: number
          const t0 = Date.now()
          try {
            await Promise.all([killPostmaster(victim.dataDir), killKeeper(victim.name, 'SIGKILL')])
            await waitUntil(`${survivor.name} promoted`, HEALTHY_TIMEOUT_MS, () => probe.writableSince() !== undefined)
            promotionMs = (probe.writableSince() ?? Date.now()) - t0
          } finally {
            await probe.stop()
          }
          await waitUntil(`monitor has ${survivor.name} as primary`, HEALTHY_TIMEOUT_MS, async () => {
            return (await currentPrimary()) === survivor
          })
          const t1 = Date.now()
          startKeeper(victim.name, victim.dataDir, join(root, `${victim.name}.log`))
          await waitHealthy()
          const report = { killed: victim.name, promoted: survivor.name, promotionMs, rejoinMs: Date.now() - t1 }
          log(
            `killed ${report.killed}: ${report.promoted} took writes after ${promotionMs} ms; rejoined in ${report.rejoinMs} ms`,
          )
          return report
        }),

      restartPrimary: (mode) =>
        serialised(async () => {
          await waitHealthy()
          const primary = await currentPrimary()
          const probe = writableProbe(primary.url)
          let pgCtlNote: string | undefined
          let report: RestartReport
          try {
            await waitUntil(`${primary.name} answers`, HEALTHY_TIMEOUT_MS, () => probe.lastAnswer() !== undefined)
            // A restart is not a failover: while it runs, the secondary may not be promoted (candidate
            // priority 0); the shortened detection alone turned 1–2 s restarts under load into failovers.
            await setCandidatePriority(secondaryOf(primary), 0)
            const before = probe.lastAnswer() ?? Date.now()
            const logFile = join(root, `${primary.name}.pg.log`)
            await pgCtl(['-D', primary.dataDir, '-m', mode, '-w', '-t', '60', 'restart', '-l', logFile]).catch(
              (error: unknown) => {
                // The keeper may start the stopped server before pg_ctl does ("could not start server"):
                // the restart happened all the same; the probe below says when it answers again.
                pgCtlNote = errorMessage(error).split('\n')[0]
              },
            )
            await waitUntil(`${primary.name} answers again`, HEALTHY_TIMEOUT_MS, () => {
              const down = probe.firstFailure()
              return down !== undefined && (probe.lastAnswer() ?? 0) > down
            })
            const down = probe.firstFailure() ?? before
            const lastBefore = probe.lastAnswerBefore(down) ?? before
            const back = probe.firstAnswerAfter(down) ?? Date.now()
            const committed = await firstCommit(primary.url)
            report = {
              node: primary.name,
              mode,
              downtimeMs: back - lastBefore,
              writeDowntimeMs: committed - lastBefore,
            }
          } finally {
            await probe.stop()
          }
          // The secondary a candidate again only once the monitor has heard from the restarted node's keeper
          // (Postgres running) and has every node healthy again.
          const restarted = Date.now()
          await waitUntil('the monitor sees the restarted node healthy', HEALTHY_TIMEOUT_MS, async () => {
            const rows = await monitorSql<{ ok: boolean }[]>`
              select bool_and(health = 1 and reportedpgisrunning
                              and (nodename <> ${primary.name} or reporttime > to_timestamp(${restarted / 1000}))) as ok
              from pgautofailover.node where formationid = ${FORMATION}`
            return rows[0]?.ok === true
          }).catch(() => {})
          await setCandidatePriority(secondaryOf(primary), CANDIDATE_PRIORITY)
          await waitHealthy()
          // Should the monitor have failed over anyway, the report says so, with its reason.
          const after = await currentPrimary()
          if (after !== primary) {
            const [event] = await monitorSql<{ reason: string }[]>`
              select description as reason from pgautofailover.event
              where formationid = ${FORMATION} and goalstate = 'draining'
                and eventtime >= to_timestamp(${(Date.now() - 600_000) / 1000})
              order by eventid desc limit 1`
            report = { ...report, failedOverTo: after.name, failoverReason: event?.reason ?? 'reason not recorded' }
          }
          if (pgCtlNote !== undefined) report = { ...report, pgCtl: pgCtlNote }
          log(`restart -m ${mode} of ${primary.name}: ${JSON.stringify(report)}`)
          return report
        }),

      terminateAppBackends: (database) =>
        serialised(async () => {
          const counts = await Promise.all(
            nodes.map(async (node) => {
              const sql = postgres(node.url, { max: 1, onnotice: () => {}, connect_timeout: 5 })
              try {
                const rows = await sql<{ n: number }[]>`
                  select count(*) filter (where pg_terminate_backend(pid, 5000))::int as n
                  from pg_stat_activity
                  where backend_type = 'client backend' and pid <> pg_backend_pid()
                    and usename <> 'postgres' and usename not like 'pgautofailover%' and usename <> 'autoctl_node'
                    and (${database ?? null}::text is null or datname = ${database ?? null})`
                return rows[0]?.n ?? 0
              } finally {
                await sql.end({ timeout: 1 })
              }
            }),
          )
          const terminated = Object.fromEntries(nodes.map((node, i) => [node.name, counts[i] ?? 0]))
          log(`terminated app backends: ${JSON.stringify(terminated)}`)
          return terminated
        }),

      stop: stopWithMonitor,
    }
  } catch (error) {
    await stop().catch(() => {})
    throw new Error(`${errorMessage(error)}\n${await logTails().catch(() => '')}`)
  }
}

/** `url`s as one multi-host URL: `postgres://user:password@h1:p1,h2:p2/database?params`. */
export function multiHostUrl(
  urls: readonly string[],
  parts: { user: string; password?: string; database: string; params?: Record<string, string> },
): string {
  const hosts = urls.map((url) => {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || '5432'}`
  })
  const auth =
    encodeURIComponent(parts.user) + (parts.password === undefined ? '' : `:${encodeURIComponent(parts.password)}`)
  const query = new URLSearchParams(parts.params ?? {}).toString()
  return `postgres://${auth}@${hosts.join(',')}/${encodeURIComponent(parts.database)}${query === '' ? '' : `?${query}`}`
}

/** One connection for a probe (as the postgres superuser, whom terminateAppBackends spares): short connect timeout. */
function probeSql(url: string): postgres.Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connect_timeout: 2,
    idle_timeout: 0,
    connection: { application_name: 'callsheet-test-probe' },
  })
}

/** When a write (a transaction with a transaction id, so its COMMIT waits for synchronous replication) first commits on `url`. */
async function firstCommit(url: string): Promise<number> {
  const sql = probeSql(url)
  try {
    await waitUntil('a write commits', HEALTHY_TIMEOUT_MS, async () => {
      await sql`select txid_current()`
      return true
    })
    return Date.now()
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {})
  }
}

/**
 * Polls one node every {@link PROBE_INTERVAL_MS} ms on a fresh-when-needed connection: whether it answers
 * and whether it accepts writes (not in recovery, not read-only), with the times seen.
 */
function writableProbe(url: string): {
  lastAnswer(): number | undefined
  lastAnswerBefore(t: number): number | undefined
  firstAnswerAfter(t: number): number | undefined
  firstFailure(): number | undefined
  lastWritable(): number | undefined
  writableSince(): number | undefined
  stop(): Promise<void>
} {
  const sql = probeSql(url)
  const answers: number[] = []
  let failure: number | undefined
  let writableSince: number | undefined
  let lastWritable: number | undefined
  let running = true
  const loop = (async () => {
    while (running) {
      try {
        const [row] = await sql<{ writable: boolean }[]>`
          select not pg_is_in_recovery() and current_setting('transaction_read_only') = 'off' as writable`
        const now = Date.now()
        answers.push(now)
        if (row?.writable === true) {
          writableSince ??= now
          lastWritable = now
        } else writableSince = undefined
      } catch {
        failure ??= Date.now()
        writableSince = undefined
      }
      await sleep(PROBE_INTERVAL_MS)
    }
  })()
  return {
    lastAnswer: () => answers.at(-1),
    lastAnswerBefore: (t) => answers.filter((a) => a < t).at(-1),
    firstAnswerAfter: (t) => answers.find((a) => a > t),
    firstFailure: () => failure,
    lastWritable: () => lastWritable,
    writableSince: () => writableSince,
    async stop() {
      running = false
      await loop
      await sql.end({ timeout: 1 }).catch(() => {})
    },
  }
}

/**
 * SIGKILLs the postmaster of `dataDir` and its backends: its process group when it leads one (`pg_ctl`
 * starts it in a session of its own), else the postmaster alone (started by the keeper, whose group
 * the caller kills).
 */
async function killPostmaster(dataDir: string): Promise<void> {
  let pid: number
  try {
    pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
  } catch {
    return // not running
  }
  if (!Number.isInteger(pid) || pid <= 1) return
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL')
      return
    } catch {
      // no such group (the keeper's child): the postmaster alone
    }
  }
}

async function waitUntil(what: string, timeoutMs: number, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'not checked yet'
  for (;;) {
    try {
      if (await condition()) return
      last = 'condition false'
    } catch (error) {
      last = errorMessage(error)
    }
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${timeoutMs} ms (${last})`)
    await sleep(PROBE_INTERVAL_MS)
  }
}

async function shareDir(binDir: string): Promise<string> {
  const pgConfig = join(binDir, 'pg_config')
  if (isExecutable(pgConfig)) {
    return (await runCommand(pgConfig, ['--sharedir'], { timeoutMs: 10_000 })).stdout.trim()
  }
  // Debian: /usr/lib/postgresql/15/bin → /usr/share/postgresql/15
  return join('/usr/share/postgresql', binDir.split('/').at(-2) ?? '')
}
