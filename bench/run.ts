/**
 * `npm run bench [-- <suite> … ] [--quick] [--rows N] [--rounds N] [--warmup N] [--write | --dry-run]`
 *
 * Starts (or finds) a real PostgreSQL server, creates and migrates a scratch database, seeds one
 * organization and one production as the owner, runs the selected suites (all by default) and prints
 * each suite's numbers as markdown; with `--write`, also as that suite's generated block in
 * BENCHMARKS.md (the analysis around the blocks is written by people). The server and database are
 * removed at the end, whatever happens.
 *
 * Environment: `BENCH_ROWS`, `BENCH_ROUNDS`, `BENCH_WARMUP` (the flags win); `DATABASE_URL` to use a
 * server of your own (else local PostgreSQL binaries, primary + replica, are started).
 */
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { uuidv7 } from 'uuidv7'
import { randomBytes } from 'node:crypto'
import { migrate } from '../src/migrations/migrate'
import { acquirePostgresServer, createScratchDatabase, runtimeLoginUrl } from '../tools/postgres-server'
import { updateBenchmarksFile } from './benchmarks-file'
import { formatBenchMarkdown, formatSeconds, formatTableMarkdown, type BenchSuite, type SuiteReport } from './harness'
import { describeMachine, formatMachineMarkdown, type MachineInfo } from './machine'
import { auditOverhead } from './suites/audit-overhead'
import { batchInsert } from './suites/batch-insert'
import { citus } from './suites/citus'
import { insertReference } from './suites/insert-reference'
import { peers } from './suites/peers'
import { replicaRouting } from './suites/replica-routing'
import { search } from './suites/search'
import { tenantReads } from './suites/tenant-reads'
import { runTestDatabaseBench } from './test-database'

// One deployment secret for the run: migrate() installs it and every createDatabase() proves tenants with it.
process.env.CALLSHEET_SECRET ||= randomBytes(24).toString('hex')

const SUITES: readonly BenchSuite[] = [
  insertReference,
  tenantReads,
  peers,
  auditOverhead,
  batchInsert,
  replicaRouting,
  citus,
  search,
]

const DEFAULTS = { rows: 100_000, rounds: 5, warmup: 1 }
const QUICK = { rows: 2_000, rounds: 2, warmup: 1 }

const BENCHMARKS_PATH = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url))

/** A mistake on the command line: reported with the usage, without a stack trace. */
class UsageError extends Error {}

interface CliOptions {
  suites: BenchSuite[]
  rows: number
  rounds: number
  warmup: number
  quick: boolean
  write: boolean
}

const USAGE = `usage: npm run bench [-- [suite …] [--quick] [--rows N] [--rounds N] [--warmup N] [--write | --dry-run]]

suites: ${SUITES.map((s) => s.name).join(', ')} (default: all)\n  test-database [--runs N] [--later N] [--no-suite] [--no-load] [--write]: createTestDatabase in fresh processes\n               and a 7-file vitest app, idle and under CPU load, on the built package (no server; see bench/test-database.ts)
  --quick      smoke run: ${QUICK.rows} rows, ${QUICK.rounds} rounds
  --rows N     rows per run (default ${DEFAULTS.rows}; env BENCH_ROWS)
  --rounds N   measured rounds (default ${DEFAULTS.rounds}; env BENCH_ROUNDS)
  --warmup N   untimed warm-up rounds (default ${DEFAULTS.warmup}; env BENCH_WARMUP)
  --write      also write each suite's numbers block in BENCHMARKS.md (the prose around it is kept)
  --dry-run    print only (the default; kept so older commands still work)`

function parseCli(argv: string[]): CliOptions | undefined {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        quick: { type: 'boolean', default: false },
        rows: { type: 'string' },
        rounds: { type: 'string' },
        warmup: { type: 'string' },
        write: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error))
  }
  const { values, positionals } = parsed
  if (values.help) return undefined
  const base = values.quick ? QUICK : DEFAULTS
  const suites = positionals.length === 0 ? [...SUITES] : positionals.map(findSuite)
  if (values.write && values['dry-run']) throw new UsageError('--write and --dry-run contradict each other')
  return {
    suites,
    rows: positiveInteger('rows', values.rows ?? process.env.BENCH_ROWS, base.rows, 1),
    rounds: positiveInteger('rounds', values.rounds ?? process.env.BENCH_ROUNDS, base.rounds, 1),
    warmup: positiveInteger('warmup', values.warmup ?? process.env.BENCH_WARMUP, base.warmup, 0),
    quick: values.quick,
    write: values.write,
  }
}

function findSuite(name: string): BenchSuite {
  const suite = SUITES.find((s) => s.name === name)
  if (suite === undefined)
    throw new UsageError(`unknown suite "${name}"; known: ${SUITES.map((s) => s.name).join(', ')}`)
  return suite
}

function positiveInteger(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw.trim() === '') return fallback
  const value = Number(raw.replace(/_/g, ''))
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${name} must be an integer ≥ ${min}, got "${raw}"`)
  return value
}

/** The command as the user typed it (as near as we can tell), with the BENCH_* overrides that applied. */
function commandLine(argv: string[]): string {
  const env = ['BENCH_ROWS', 'BENCH_ROUNDS', 'BENCH_WARMUP', 'BENCH_UNNEST_CHUNKS']
    .filter((name) => (process.env[name] ?? '') !== '')
    .map((name) => `${name}=${process.env[name] ?? ''}`)
  const base = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'npx tsx bench/run.ts'
  const args =
    argv.length === 0
      ? ''
      : process.env.npm_lifecycle_event === 'bench'
        ? ` -- ${argv.join(' ')}`
        : ` ${argv.join(' ')}`
  return [...env, `${base}${args}`].join(' ')
}

async function seed(url: string): Promise<{ organizationId: string; productionId: string }> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    const organizationId = uuidv7()
    const productionId = uuidv7()
    // As the owner (the superuser locally): RLS is FORCEd on productions, which superusers bypass.
    await sql.begin(async (tx) => {
      await tx`insert into organizations (id, name, slug) values (${organizationId}, 'Bench Pictures', 'bench-pictures')`
      await tx`
        insert into productions (id, organization_id, title, code, status)
        values (${productionId}, ${organizationId}, 'The Benchmark', 'BENCH-1', 'production')`
    })
    return { organizationId, productionId }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** The suite's generated block: where and how it ran, then its tables. No analysis: people write that. */
function formatNumbers(
  suite: BenchSuite,
  report: SuiteReport,
  details: { machine: MachineInfo; command: string; date: Date; options: CliOptions; wallMs: number },
): string {
  const { options } = details
  return [
    `### Numbers: ${suite.name}${options.quick ? ' (quick smoke run, not reference figures)' : ''}`,
    '',
    suite.title,
    '',
    `- Date: ${details.date.toISOString()}`,
    `- Command: \`${details.command}\``,
    `- Settings: ${suite.usesRows === false ? '' : `${options.rows.toLocaleString('en-US')} rows, `}` +
      `${options.rounds} measured round(s) after ${options.warmup} warm-up; suite wall ${formatSeconds(details.wallMs)}`,
    ...formatMachineMarkdown(details.machine),
    '',
    ...report.results.flatMap((result) => [formatBenchMarkdown(result), '']),
    ...report.tables.flatMap((table) => [formatTableMarkdown(table), '']),
  ].join('\n')
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  // No server needed: @callsheet/db/testing on PGlite, in fresh processes and a scratch app (bench/test-database.ts).
  if (argv[0] === 'test-database') return runTestDatabaseBench(argv.slice(1))
  const options = parseCli(argv)
  if (options === undefined) {
    console.log(USAGE)
    return
  }
  const started = performance.now()
  const command = commandLine(argv)
  const log = (line: string): void => console.log(`[bench] ${line}`)

  const { server, attempts } = await acquirePostgresServer({ log })
  if (server === undefined) {
    throw new Error(
      `no PostgreSQL server to benchmark against:\n${attempts.map((a) => `  ${a.source}: ${a.reason}`).join('\n')}`,
    )
  }
  try {
    const scratch = await createScratchDatabase(server.adminUrl, 'cs_bench')
    try {
      log(`migrating scratch database ${scratch.name}`)
      await migrate(scratch.url)
      const runtimeUrl = await runtimeLoginUrl(scratch.url)
      const { organizationId, productionId } = await seed(scratch.url)
      const machine = await describeMachine(server, scratch.url)
      for (const suite of options.suites) {
        log(`suite ${suite.name}: ${options.rows} rows, ${options.rounds} rounds after ${options.warmup} warm-up`)
        const date = new Date()
        const suiteStarted = performance.now()
        const report = await suite.run({
          server,
          url: scratch.url,
          runtimeUrl,
          organizationId,
          productionId,
          rows: options.rows,
          rounds: options.rounds,
          warmupRounds: options.warmup,
          quick: options.quick,
          log,
        })
        const wallMs = performance.now() - suiteStarted
        const numbers = formatNumbers(suite, report, { machine, command, date, options, wallMs })
        console.log(`\n${numbers}`)
        if (options.write) {
          await updateBenchmarksFile(BENCHMARKS_PATH, suite.name, numbers)
          log(`wrote the ${suite.name} numbers block of ${BENCHMARKS_PATH}`)
        } else {
          log('BENCHMARKS.md not written (no --write)')
        }
      }
    } finally {
      await scratch.drop()
    }
  } finally {
    await server.stop()
  }
  log(`done in ${formatSeconds(performance.now() - started)} (server start and stop included)`)
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n\n${USAGE}`)
  else console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  process.exitCode = 1
})
