import { parseArgs } from 'node:util'
import { createDatabase } from '../client/create-database'
import { createRuntimeLogin, migrate, type RuntimeLoginOptions } from '../migrations/migrate'
import { distributeCommand } from './distribute-command'
import { connect, errorText, isPostgresUrl, redactUrl, withConnection } from './connection'
import { DEFAULT_APP_ROLE, runDoctor } from './doctor'
import { formatTable, type CliIo } from './output'
import { databaseInfo, formatBytes, tableStats, type StatsReport } from './stats'
import { formatMigrationStatus, migrationStatus } from './status'

export type { CliIo } from './output'

/** Exit codes: 0 success, 1 a problem found or an operation failed (incl. connection), 2 bad usage. */
const EXIT_OK = 0
const EXIT_FAILURE = 1
const EXIT_USAGE = 2

const USAGE = `Usage: callsheet-db <command> [options]

Commands:
  migrate [--runtime-login <name>] [--lock-timeout <ms>]
                                       apply pending migrations, then ensure audit partitions (and the runtime login)
  runtime-login <name>                 create (or bring in line) the login that serves requests: a NOINHERIT
                                       member of the app role, nothing more; password from $CALLSHEET_RUNTIME_PASSWORD
  status                               list applied and pending migrations
  distribute                           Citus: distribute the migrated schema (on the coordinator, after migrate)
  doctor                               check RLS, policies, roles, logins, audit partitions, indexes, replicas, Citus
  partitions ensure [--months N] [--from YYYY-MM-DD]
                                       create monthly audit partitions (default: 3 months ahead)
  partitions drop-before <YYYY-MM-DD>  drop monthly audit partitions that end on or before the date
  stats                                pool/routing stats, table sizes and row estimates

Options:
  --url <url>          PostgreSQL URL of the owner (the role that migrates; default: $DATABASE_ADMIN_URL)
  --json               print one JSON document on stdout
  --replica <url>      doctor, stats: a replica to check (repeatable)
  --max-lag <ms>       doctor: fail a replica whose replay lag exceeds this
  --app-role <name>    doctor, runtime-login: the app role (default: ${DEFAULT_APP_ROLE})
  --runtime-login <n>  doctor: the login the app serves as (default: every login that is a member of the
                       app role, other than the owner); migrate: create it too
  --audit-months <N>   migrate: audit partition months ahead (default: 3)
  --lock-timeout <ms>  migrate: the longest wait for a lock another session holds before giving up
                       (MIGRATION_LOCK_TIMEOUT, retryable; default: 5000; 0: no limit)
  -h, --help           show this help

Exit codes: 0 ok, 1 problem found or failure (incl. connection), 2 usage error.`

const OPTIONS = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  replica: { type: 'string', multiple: true },
  'max-lag': { type: 'string' },
  'app-role': { type: 'string' },
  'runtime-login': { type: 'string' },
  'audit-months': { type: 'string' },
  'lock-timeout': { type: 'string' },
  months: { type: 'string' },
  from: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

type OptionName = keyof typeof OPTIONS
const COMMON: OptionName[] = ['url', 'json', 'help']
const ALLOWED: Record<string, OptionName[]> = {
  migrate: [...COMMON, 'audit-months', 'runtime-login', 'lock-timeout'],
  'runtime-login': [...COMMON, 'app-role'],
  status: COMMON,
  distribute: COMMON,
  doctor: [...COMMON, 'replica', 'max-lag', 'app-role', 'runtime-login'],
  'partitions ensure': [...COMMON, 'months', 'from'],
  'partitions drop-before': COMMON,
  stats: [...COMMON, 'replica'],
}

class UsageError extends Error {}

interface Invocation {
  readonly command: string
  readonly args: readonly string[]
  readonly url: string
  readonly json: boolean
  readonly env: Readonly<Record<string, string | undefined>>
  readonly values: {
    readonly [K in OptionName]?: K extends 'replica' ? string[] : K extends 'json' | 'help' ? boolean : string
  }
}

/**
 * Runs the CLI with `argv` (without node and the script) and returns the exit code. Never calls
 * process.exit, so tests run it in-process.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const out = (text: string) => io.stdout(text.endsWith('\n') ? text : `${text}\n`)
  const err = (text: string) => io.stderr(text.endsWith('\n') ? text : `${text}\n`)
  const wantsJson = argv.includes('--json')
  const fail = (code: number, message: string) => {
    err(`callsheet-db: ${message}`)
    if (code === EXIT_USAGE) err(USAGE)
    if (wantsJson) out(JSON.stringify({ ok: false, error: message }))
    return code
  }

  let invocation: Invocation | 'help'
  try {
    invocation = parse(argv, io.env ?? process.env)
  } catch (error) {
    if (error instanceof UsageError) return fail(EXIT_USAGE, error.message)
    // parseArgs: unknown option, missing value…
    return fail(EXIT_USAGE, errorText(error))
  }
  if (invocation === 'help') {
    out(USAGE)
    return EXIT_OK
  }
  try {
    return await execute(invocation, out)
  } catch (error) {
    if (error instanceof UsageError) return fail(EXIT_USAGE, error.message)
    return fail(EXIT_FAILURE, errorText(error))
  }
}

function processIo(): CliIo {
  return { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env }
}

function parse(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Invocation | 'help' {
  const { values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
  if (values.help) return 'help'
  const [first, ...rest] = positionals
  if (first === undefined) throw new UsageError('no command given')
  let command = first
  let args = rest
  if (first === 'partitions') {
    const [sub, ...more] = rest
    if (sub !== 'ensure' && sub !== 'drop-before')
      throw new UsageError(
        sub === undefined
          ? 'partitions needs a subcommand: ensure or drop-before'
          : `unknown partitions subcommand "${sub}"`,
      )
    command = `partitions ${sub}`
    args = more
  }
  const allowed = ALLOWED[command]
  if (!allowed) throw new UsageError(`unknown command "${first}"`)
  for (const name of Object.keys(values) as OptionName[])
    if (!allowed.includes(name)) throw new UsageError(`--${name} does not apply to ${command}`)
  const expectedArgs = command === 'partitions drop-before' || command === 'runtime-login' ? 1 : 0
  if (args.length !== expectedArgs)
    throw new UsageError(
      expectedArgs === 1
        ? command === 'runtime-login'
          ? 'runtime-login needs exactly one login name'
          : `${command} needs exactly one date (YYYY-MM-DD)`
        : `unexpected argument "${args[0]}" for ${command}`,
    )
  const url = values.url ?? env.DATABASE_ADMIN_URL
  if (url === undefined || url === '')
    throw new UsageError("no database URL: pass --url <url> or set DATABASE_ADMIN_URL (the owner's URL)")
  if (!isPostgresUrl(url)) throw new UsageError(`not a PostgreSQL URL: ${redactUrl(url)} (expected postgres://…)`)
  for (const replica of values.replica ?? [])
    if (!isPostgresUrl(replica)) throw new UsageError(`not a PostgreSQL URL: --replica ${redactUrl(replica)}`)
  return { command, args, url, json: values.json ?? false, values, env }
}

function integerOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${value}"`)
  return n
}

function dateArgument(value: string, what: string): Date {
  const date = new Date(`${value}T00:00:00Z`)
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value)
    throw new UsageError(`${what} must be a date YYYY-MM-DD, got "${value}"`)
  return date
}

async function execute(inv: Invocation, out: (text: string) => void): Promise<number> {
  const print = (json: unknown, human: () => string) => out(inv.json ? JSON.stringify(json, null, 2) : human())
  switch (inv.command) {
    case 'status': {
      const status = await withConnection(inv.url, migrationStatus)
      print({ ok: status.upToDate, ...status }, () => formatMigrationStatus(status))
      return status.upToDate ? EXIT_OK : EXIT_FAILURE
    }
    case 'migrate': {
      const months = integerOption(inv.values['audit-months'], 'audit-months', 0, 120)
      const lockTimeoutMs = integerOption(inv.values['lock-timeout'], 'lock-timeout', 0, 86_400_000)
      const login = inv.values['runtime-login']
      const report = await migrate(inv.url, {
        ...(months === undefined ? {} : { auditPartitionMonthsAhead: months }),
        ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }),
        ...(login === undefined ? {} : { runtimeLogin: runtimeLoginOptions(login, undefined, inv.env) }),
      })
      const after = await withConnection(inv.url, migrationStatus)
      const { applied, durationMs, warnings } = report
      print(
        { ok: after.upToDate, applied, durationMs, warnings, status: after },
        () =>
          (applied.length === 0
            ? `Nothing to apply: ${after.applied} migration(s) already applied (${durationMs} ms).`
            : `Applied ${applied.length} migration(s) in ${durationMs} ms:\n${applied.map((t) => `  ${t}`).join('\n')}`) +
          warnings.map((w) => `\nWarning: ${w}`).join(''),
      )
      return after.upToDate ? EXIT_OK : EXIT_FAILURE
    }
    case 'distribute':
      return distributeCommand(inv.url, print)
    case 'runtime-login': {
      const name = inv.args[0] ?? ''
      const options = runtimeLoginOptions(name, inv.values['app-role'], inv.env)
      await withConnection(inv.url, () => Promise.resolve(undefined)) // a bad URL fails as a connection error
      await createRuntimeLogin(inv.url, options)
      print(
        { ok: true, login: name, passwordSet: options.password !== undefined },
        () =>
          `Runtime login ${name} is a NOINHERIT member of ${options.appRole ?? DEFAULT_APP_ROLE} and nothing more` +
          (options.password === undefined ? ' (password unchanged: set CALLSHEET_RUNTIME_PASSWORD to set one).' : '.'),
      )
      return EXIT_OK
    }
    case 'doctor': {
      const maxLagMs = integerOption(inv.values['max-lag'], 'max-lag', 0, 86_400_000)
      const report = await withConnection(inv.url, (sql) =>
        runDoctor(sql, {
          replicas: inv.values.replica ?? [],
          ...(maxLagMs === undefined ? {} : { maxLagMs }),
          ...(inv.values['app-role'] === undefined ? {} : { appRole: inv.values['app-role'] }),
          ...(inv.values['runtime-login'] === undefined ? {} : { runtimeLogin: inv.values['runtime-login'] }),
        }),
      )
      print(report, () => {
        const failed = report.checks.filter((c) => !c.ok).length
        const lines = formatTable(report.checks.map((c) => [c.ok ? '✓' : '✗', c.name, c.detail]))
        return `${lines}\n\n${failed === 0 ? `All ${report.checks.length} checks passed.` : `${failed} of ${report.checks.length} checks failed.`}`
      })
      return report.ok ? EXIT_OK : EXIT_FAILURE
    }
    case 'partitions ensure': {
      const monthsAhead = integerOption(inv.values.months, 'months', 0, 120) ?? 3
      const from = inv.values.from === undefined ? undefined : dateArgument(inv.values.from, '--from')
      const created = await withDatabase(inv.url, [], (db) =>
        db.maintenance.ensureAuditPartitions(from === undefined ? { monthsAhead } : { monthsAhead, from }),
      )
      print({ ok: true, created }, () =>
        created.length === 0
          ? 'All audit partitions already exist.'
          : `Created ${created.length} partition(s):\n${created.map((t) => `  ${t}`).join('\n')}`,
      )
      return EXIT_OK
    }
    case 'partitions drop-before': {
      const before = dateArgument(inv.args[0] ?? '', 'the date')
      const dropped = await withDatabase(inv.url, [], (db) => db.maintenance.dropAuditPartitionsBefore(before))
      print({ ok: true, dropped }, () =>
        dropped.length === 0
          ? `No audit partition ends on or before ${inv.args[0]}.`
          : `Dropped ${dropped.length} partition(s):\n${dropped.map((t) => `  ${t}`).join('\n')}`,
      )
      return EXIT_OK
    }
    case 'stats': {
      const replicas = inv.values.replica ?? []
      const [database, tables] = await withConnection(inv.url, (sql) =>
        Promise.all([databaseInfo(sql), tableStats(sql)]),
      )
      const dbStats = await withDatabase(inv.url, replicas, async (db) => {
        if (replicas.length > 0) await db.measureReplicaLag()
        return db.stats()
      })
      const report: StatsReport = { database, tables, ...dbStats }
      print({ ok: true, ...report }, () => formatStats(report))
      return EXIT_OK
    }
    default:
      throw new UsageError(`unknown command "${inv.command}"`)
  }
}

/** The runtime login to create; its password comes from the environment, never from the command line. */
function runtimeLoginOptions(
  name: string,
  appRole: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): RuntimeLoginOptions {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    throw new UsageError(`the runtime login must be a plain lower-case role name, got "${name}"`)
  const password = env.CALLSHEET_RUNTIME_PASSWORD
  return {
    name,
    ...(password === undefined || password === '' ? {} : { password }),
    ...(appRole === undefined ? {} : { appRole }),
  }
}

/** A library Database on `url` (checked reachable first, so a bad URL fails as a connection error). */
async function withDatabase<T>(
  url: string,
  replicas: readonly string[],
  fn: (db: ReturnType<typeof createDatabase>) => Promise<T>,
): Promise<T> {
  const probe = await connect(url)
  await probe.end({ timeout: 5 }).catch(() => undefined)
  // The CLI is given the owner's URL: it is the admin connection too (partitions are the owner's work).
  const db = createDatabase({ primary: url, admin: url, replicas: [...replicas], pool: { max: 1 } })
  try {
    return await fn(db)
  } finally {
    await db.close()
  }
}

function formatStats(report: StatsReport): string {
  const lines = [
    `Database ${report.database.name} (PostgreSQL ${report.database.serverVersion}), ${formatBytes(report.database.sizeBytes)}`,
    '',
    formatTable(
      [
        ['table', 'size', 'rows (est.)'],
        ...report.tables.map((t) => [
          t.table,
          formatBytes(t.totalBytes),
          t.rowEstimate === null ? 'unknown' : String(t.rowEstimate),
        ]),
      ],
      '  ',
    ),
    '',
    `Pool: ${report.pool.inUse} in use, ${report.pool.waiting} waiting, max ${report.pool.max}`,
    `Reads: ${report.routing.reads.primary} primary, ${report.routing.reads.replica} replica`,
  ]
  for (const r of report.routing.replicas)
    lines.push(
      `Replica ${r.name}: ${r.state}, lag ${r.lagMs === undefined ? 'unknown' : `${r.lagMs} ms`}${
        r.lagBytes === undefined ? '' : ` / ${r.lagBytes} bytes`
      }${r.lastError === undefined ? '' : `, last error: ${r.lastError}`}`,
    )
  return lines.join('\n')
}
