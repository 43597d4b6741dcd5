/**
 * A throwaway PgBouncer in front of a test PostgreSQL server, for suites that must behave under a
 * transaction-pooling proxy (no session state between transactions, no named prepared statements).
 *
 * Writes pgbouncer.ini + userlist.txt into a temp dir (owned by the `postgres` OS user when we are
 * root: PgBouncer refuses to run as root), listens on 127.0.0.1 on a free port, maps every
 * database name (`* = host=… port=…`, so scratch databases work) and authenticates with
 * `auth_type = trust` (the harness servers trust every local connection); any role of the target
 * server can log in (auth_file lists the target URL's user, `auth_user` looks up the others).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, rmSync } from 'node:fs'
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import {
  OS_USER,
  errorMessage,
  findOnPath,
  freePort,
  isExecutable,
  logTail,
  osUserIds,
  runCommand,
  sleep,
} from './postgres-server.js'

/** Options of {@link startPgBouncer}. */
export interface PgBouncerOptions {
  /** the server to pool connections to; its host, port and user are used (the database name only for the readiness probe and `url`) */
  targetUrl: string
  /** `default_pool_size`: server connections per (database, user) pair */
  poolSize: number
  /** default `transaction` */
  poolMode?: 'transaction' | 'session'
  /** receives one progress line at a time (default: discarded) */
  log?: (line: string) => void
}

/** A running PgBouncer; see {@link startPgBouncer}. */
export interface PgBouncerHandle {
  /** `targetUrl` with host/port replaced by PgBouncer's (same user and database) */
  url: string
  port: number
  description: string
  /** SIGTERM (immediate shutdown in 1.18), waits for the exit, removes the temp dir; idempotent */
  stop(): Promise<void>
}

/**
 * Startup parameters PgBouncer should accept and drop. PgBouncer 1.18 itself tracks only
 * client_encoding, DateStyle, TimeZone, standard_conforming_strings and application_name and
 * refuses any other startup parameter ("unsupported startup parameter: …"). postgres.js sends
 * user, database, client_encoding and application_name, plus whatever `connection: {…}` holds;
 * JDBC/psycopg-style clients send extra_float_digits / options. NB: listed parameters are
 * silently dropped, not forwarded — a `connection: { statement_timeout }` has no effect here.
 */
const IGNORE_STARTUP_PARAMETERS = ['extra_float_digits', 'options', 'application_name', 'statement_timeout']

const MAX_CLIENT_CONN = 1000
const READY_TIMEOUT_MS = 60_000 // a hang bound: generous for a loaded machine
const STOP_TIMEOUT_MS = 5_000

/** Path of the pgbouncer binary: `PGBOUNCER_BIN`, /usr/sbin/pgbouncer, or PATH. */
function findPgBouncer(): string | undefined {
  const fromEnv = process.env.PGBOUNCER_BIN
  if (fromEnv !== undefined && fromEnv !== '') return isExecutable(fromEnv) ? fromEnv : undefined
  if (isExecutable('/usr/sbin/pgbouncer')) return '/usr/sbin/pgbouncer'
  return findOnPath('pgbouncer', ['/usr/local/sbin', '/usr/local/bin', '/usr/bin'])
}

/** Whether {@link startPgBouncer} can work here (binary found and runnable; a non-root user to run it as). */
export async function pgbouncerAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await pgbouncerBinary()
    if (process.getuid?.() === 0) await bouncerUser()
    return { ok: true }
  } catch (error) {
    return { ok: false, reason: errorMessage(error) }
  }
}

async function pgbouncerBinary(): Promise<{ path: string; version: string }> {
  const path = findPgBouncer()
  if (path === undefined) {
    const fromEnv = process.env.PGBOUNCER_BIN
    throw new Error(
      fromEnv !== undefined && fromEnv !== ''
        ? `PGBOUNCER_BIN=${fromEnv} is not executable`
        : 'no pgbouncer binary: not at /usr/sbin/pgbouncer nor on PATH (Debian/Ubuntu: apt-get install pgbouncer)',
    )
  }
  const out = await runCommand(path, ['--version'], { timeoutMs: 10_000 })
  const version = out.stdout.split('\n')[0]?.trim() ?? 'PgBouncer (unknown version)'
  return { path, version }
}

async function bouncerUser(): Promise<{ uid: number; gid: number }> {
  try {
    return await osUserIds(OS_USER)
  } catch (error) {
    throw new Error(
      `running as root, and PgBouncer refuses to run as root; the OS user "${OS_USER}" to run it as is not usable (${errorMessage(error)})`,
    )
  }
}

/** Starts PgBouncer in front of `options.targetUrl` and waits until it serves a query. */
export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncerHandle> {
  const log = options.log ?? (() => {})
  if (!Number.isInteger(options.poolSize) || options.poolSize < 1) {
    throw new Error(`poolSize must be a positive integer, got ${options.poolSize}`)
  }
  const poolMode = options.poolMode ?? 'transaction'
  let target: URL
  try {
    target = new URL(options.targetUrl)
  } catch {
    throw new Error('targetUrl is not a parseable connection URL')
  }
  const targetHost = target.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1'
  const targetPort = target.port === '' ? 5432 : Number(target.port)
  const targetUser = decodeURIComponent(target.username) || 'postgres'

  const binary = await pgbouncerBinary()
  const ids = process.getuid?.() === 0 ? await bouncerUser() : undefined

  const t0 = Date.now()
  const dir = await mkdtemp(join(tmpdir(), 'callsheet-pgbouncer-'))
  const iniPath = join(dir, 'pgbouncer.ini')
  const userlistPath = join(dir, 'userlist.txt')
  const logPath = join(dir, 'pgbouncer.log')
  const port = await freePort()

  let child: ChildProcess | undefined
  let exited: Promise<void> | undefined
  let exitStatus: string | undefined
  let unregister = (): void => {}
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child !== undefined && exited !== undefined && exitStatus === undefined) {
        child.ref() // keep the loop alive until PgBouncer is gone
        child.kill('SIGTERM')
        let timer: NodeJS.Timeout | undefined
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS)
          }),
        ])
        clearTimeout(timer)
        if (timedOut) {
          child.kill('SIGKILL')
          await exited
        }
      }
      unregister()
      await rm(dir, { recursive: true, force: true })
    })()
    return stopped
  }

  try {
    await writeFile(userlistPath, `${quote(targetUser)} ""\n`)
    await writeFile(
      iniPath,
      [
        '; callsheet test harness',
        '[databases]',
        `* = host=${targetHost} port=${targetPort}`,
        '',
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        // empty: no Unix socket (the default /tmp/.s.PGSQL.<port> would outlive a killed run)
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${userlistPath}`,
        // Even with trust, PgBouncer rejects users missing from auth_file ('"trust" authentication
        // failed'); other roles (e.g. RLS app roles a test creates) are looked up with auth_query
        // (pg_shadow) as this user, over a connection of that user's pool for the database.
        `auth_user = ${targetUser}`,
        `admin_users = ${targetUser}`,
        `pidfile = ${join(dir, 'pgbouncer.pid')}`,
        `pool_mode = ${poolMode}`,
        `default_pool_size = ${options.poolSize}`,
        'min_pool_size = 0',
        'reserve_pool_size = 0',
        `max_client_conn = ${MAX_CLIENT_CONN}`,
        `ignore_startup_parameters = ${IGNORE_STARTUP_PARAMETERS.join(',')}`,
        // default 15 s: after a server restart (e.g. a stopped replica) clients would wait that long
        'server_login_retry = 1',
        'log_connections = 0',
        'log_disconnections = 0',
        '',
      ].join('\n'),
    )
    if (ids !== undefined) {
      for (const path of [dir, iniPath, userlistPath]) await chown(path, ids.uid, ids.gid)
    }

    // stdout/stderr go to a file: nothing piped keeps the event loop alive, and errors PgBouncer
    // prints before it reads its config are kept too.
    const logFd = openSync(logPath, 'a')
    try {
      child = spawn(binary.path, [iniPath], {
        cwd: dir,
        stdio: ['ignore', logFd, logFd],
        env: bouncerEnv(),
        ...(ids === undefined ? {} : { uid: ids.uid, gid: ids.gid }),
      })
    } finally {
      closeSync(logFd)
    }
    const spawned = child
    exited = new Promise((resolve) => {
      spawned.once('exit', (code, signal) => {
        exitStatus = signal === null ? `exit code ${code}` : `killed by ${signal}`
        resolve()
      })
      spawned.once('error', (error) => {
        exitStatus = `spawn failed: ${error.message}`
        resolve()
      })
    })
    spawned.unref()
    unregister = registerCleanup(spawned.pid, dir)

    const url = new URL(options.targetUrl)
    url.hostname = '127.0.0.1'
    url.port = String(port)
    const bouncerUrl = url.toString()

    await waitUntilServing(bouncerUrl, () => exitStatus, READY_TIMEOUT_MS).catch(async (error: unknown) => {
      throw new Error(
        `PgBouncer on :${port} not usable: ${errorMessage(error)}\npgbouncer log:\n${await logTail(logPath)}`,
      )
    })

    const description =
      `${binary.version} on 127.0.0.1:${port} -> ${targetHost}:${targetPort} ` +
      `(${poolMode} pooling, pool size ${options.poolSize}${ids === undefined ? '' : `, run as OS user ${OS_USER}`})`
    log(`${description} up in ${Date.now() - t0} ms`)
    return { url: bouncerUrl, port, description, stop }
  } catch (error) {
    await stop().catch(() => {})
    throw error
  }
}

async function waitUntilServing(url: string, exitStatus: () => string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'not checked yet'
  for (;;) {
    const status = exitStatus()
    if (status !== undefined) throw new Error(`pgbouncer exited (${status})`)
    const sql = postgres(url, { max: 1, prepare: false, connect_timeout: 2, onnotice: () => {} })
    try {
      await sql`select 1`
      return
    } catch (error) {
      last = errorMessage(error)
    } finally {
      await sql.end({ timeout: 1 })
    }
    if (Date.now() > deadline) throw new Error(`no answer after ${timeoutMs} ms: ${last}`)
    await sleep(50)
  }
}

/**
 * Exit handler for ordinary exits, plus a detached watchdog for a killed test process (PgBouncer
 * is not detached, but a SIGKILL of its parent does not reach it).
 */
function registerCleanup(pid: number | undefined, dir: string): () => void {
  const onExit = (): void => {
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGTERM')
      } catch {
        // already gone
      }
    }
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
  process.on('exit', onExit)

  let watchdogPid: number | undefined
  if (pid !== undefined) {
    const script = [
      'parent=$1; child=$2; dir=$3',
      'while kill -0 "$parent" 2>/dev/null; do sleep 1; done',
      'kill -TERM "$child" 2>/dev/null',
      'sleep 1',
      'rm -rf "$dir"',
    ].join('\n')
    try {
      const watchdog = spawn(
        '/bin/sh',
        ['-c', script, 'callsheet-pgbouncer-watchdog', String(process.pid), String(pid), dir],
        { detached: true, stdio: 'ignore', cwd: tmpdir() },
      )
      watchdog.on('error', () => {})
      watchdog.unref()
      watchdogPid = watchdog.pid
    } catch {
      // the exit handler still covers ordinary exits
    }
  }

  return () => {
    process.off('exit', onExit)
    if (watchdogPid !== undefined) {
      try {
        process.kill(-watchdogPid, 'SIGTERM')
      } catch {
        // already gone
      }
    }
  }
}

/** auth_file syntax: "name" "password", with `"` doubled inside the quotes. */
function quote(value: string): string {
  return `"${value.replace(/"/g, '""')}"`
}

/** PG* variables in the environment are irrelevant to PgBouncer but kept out for symmetry with the server tools. */
function bouncerEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG')))
}
