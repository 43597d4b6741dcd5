// Over 350 lines because it is the runner every suite shares: interleaved rounds, timing, Node and server CPU accounting,
// the TCP flight counter and the numbers tables.
/**
 * The benchmark harness: cases run in interleaved rounds (every round runs every case once, in a
 * rotated order, after warm-up), and are reported as medians with their spread and as ratios to
 * baseline cases. Suites (`bench/suites/*.ts`) plug into `bench/run.ts` through {@link BenchSuite}.
 *
 * Interleaving is what makes the ratios trustworthy on a shared machine: a burst of outside load
 * hits one round of every case instead of all rounds of one case.
 */
import { performance } from 'node:perf_hooks'
import type { PostgresServer } from '../tools/postgres-server'
import { tenantProof } from '../src/engine/tenant-proof'
import { settingsStatement, type SettingsStatement } from '../src/engine/settings-statement'
import { APP_ROLE } from '../src/schema/columns'

/** One contender. `setup` and `teardown` run around every run (warm-up included) and are not timed. */
export interface BenchCase {
  /** unique within one bench; shown in the tables */
  name: string
  /** untimed, before each run: bring the state back to the starting point */
  setup?: () => Promise<void>
  /** the timed work */
  run: () => Promise<void>
  /** untimed, after each run: verify what `run` did (throw to abort the bench) and clean up */
  teardown?: () => Promise<void>
  /** units of work one run does (rows, queries …); overrides {@link BenchOptions.ops} */
  ops?: number
}

/** Options of {@link runBench}. */
export interface BenchOptions {
  /** measured rounds; every round runs every case once */
  rounds: number
  /**
   * untimed rounds first (JIT, prepared statements, caches)
   * @default 1
   */
  warmupRounds?: number
  /** cases whose medians every case is compared to; the first one orders the report */
  baselines: readonly string[]
  /** units of work one run does, for throughput (e.g. rows inserted) */
  ops?: number
  /**
   * what {@link ops} counts
   * @default 'ops'
   */
  opsUnit?: string
  /** receives one progress line at a time (default: discarded) */
  log?: (line: string) => void
}

/** A ratio of one case's time to a baseline's time (> 1: slower than the baseline). */
interface Ratio {
  baseline: string
  /** the case's median ÷ the baseline's median */
  ofMedians: number
  /** per round, the case's time ÷ the baseline's time in that same round: median, min, max */
  paired: { median: number; min: number; max: number }
}

/** What {@link runBench} measured for one case. */
interface CaseStats {
  name: string
  /** durations of the measured runs, in round order */
  samplesMs: number[]
  medianMs: number
  p25Ms: number
  p75Ms: number
  minMs: number
  maxMs: number
  ops?: number
  /** ops ÷ median time; with p25/p75 times as the spread (note: the faster p25 gives the higher rate) */
  opsPerSecond?: { median: number; p25: number; p75: number }
  ratios: Ratio[]
}

/** The outcome of {@link runBench}. */
export interface BenchResult {
  title: string
  rounds: number
  warmupRounds: number
  opsUnit: string
  baselines: readonly string[]
  /** in declaration order */
  cases: CaseStats[]
  /** the case order of every measured round */
  roundOrders: string[][]
  /** wall time of the whole bench, setup/teardown and warm-up included */
  wallMs: number
}

/** What a suite gets from `bench/run.ts`. */
export interface SuiteContext {
  server: PostgresServer
  /** scratch database, migrated, connecting as the server's admin user (owner; superuser locally) */
  url: string
  /** the same database as the runtime login the library serves requests as (README "Deployment: two roles") */
  runtimeUrl: string
  /** the seeded organization and one production of it */
  organizationId: string
  productionId: string
  /** the suite's main size knob (e.g. rows to insert) */
  rows: number
  rounds: number
  warmupRounds: number
  quick: boolean
  log: (line: string) => void
}

/**
 * A table of figures a suite measured besides its {@link BenchResult}s (per-operation CPU, EXPLAIN times,
 * counts). Numbers only: the analysis of them is written by people, in BENCHMARKS.md outside the generated blocks.
 */
export interface NumbersTable {
  /** what the rows are, in a few words */
  title: string
  header: string[]
  /** cells as printed; the first two columns are labels, the rest right-aligned */
  rows: string[][]
}

/** What a suite hands back to `bench/run.ts`: its figures, printed and (with `--write`) written to BENCHMARKS.md. */
export interface SuiteReport {
  results: BenchResult[]
  tables: NumbersTable[]
}

/** A named group of benches, selectable with `npm run bench -- <name>`. */
export interface BenchSuite {
  /** kebab-case; the CLI selector and the BENCHMARKS.md section key */
  name: string
  /** one line: what is measured */
  title: string
  /**
   * whether the suite sizes itself by `--rows` (else BENCHMARKS.md does not show a row count for it)
   * @default true
   */
  usesRows?: boolean
  run(context: SuiteContext): Promise<SuiteReport>
}

/**
 * Runs `cases` for `options.rounds` interleaved rounds after warm-up and summarises them.
 *
 * @throws Error when a case name is duplicated, a baseline is unknown, or a case's setup, run or
 * teardown throws (the bench stops at the first failure).
 */
export async function runBench(
  title: string,
  cases: readonly BenchCase[],
  options: BenchOptions,
): Promise<BenchResult> {
  const log = options.log ?? (() => {})
  const warmupRounds = options.warmupRounds ?? 1
  if (cases.length === 0) throw new Error(`bench "${title}" has no cases`)
  if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new Error('rounds must be an integer ≥ 1')
  if (!Number.isInteger(warmupRounds) || warmupRounds < 0) throw new Error('warmupRounds must be an integer ≥ 0')
  const names = new Set(cases.map((c) => c.name))
  if (names.size !== cases.length) throw new Error(`bench "${title}" has duplicate case names`)
  for (const baseline of options.baselines) {
    if (!names.has(baseline)) throw new Error(`bench "${title}": baseline "${baseline}" is not a case`)
  }

  const started = performance.now()
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]))
  const roundOrders: string[][] = []

  const runOnce = async (benchCase: BenchCase): Promise<number> => {
    await benchCase.setup?.()
    const t0 = performance.now()
    await benchCase.run()
    const elapsed = performance.now() - t0
    await benchCase.teardown?.()
    return elapsed
  }

  for (let w = 0; w < warmupRounds; w++) {
    for (const benchCase of rotate(cases, w)) {
      const ms = await runOnce(benchCase)
      log(`  warm-up ${w + 1}/${warmupRounds} ${benchCase.name}: ${formatMs(ms)} ms`)
    }
  }
  for (let r = 0; r < options.rounds; r++) {
    const order = rotate(cases, r)
    roundOrders.push(order.map((c) => c.name))
    for (const benchCase of order) {
      const ms = await runOnce(benchCase)
      samples.get(benchCase.name)?.push(ms)
      log(`  round ${r + 1}/${options.rounds} ${benchCase.name}: ${formatMs(ms)} ms`)
    }
  }

  const stats = cases.map((benchCase): CaseStats => {
    const own = samples.get(benchCase.name) ?? []
    const sorted = [...own].sort((a, b) => a - b)
    const medianMs = quantile(sorted, 0.5)
    const p25Ms = quantile(sorted, 0.25)
    const p75Ms = quantile(sorted, 0.75)
    const ops = benchCase.ops ?? options.ops
    return {
      name: benchCase.name,
      samplesMs: own,
      medianMs,
      p25Ms,
      p75Ms,
      minMs: sorted[0] ?? Number.NaN,
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      ...(ops === undefined
        ? {}
        : {
            ops,
            opsPerSecond: { median: perSecond(ops, medianMs), p25: perSecond(ops, p25Ms), p75: perSecond(ops, p75Ms) },
          }),
      ratios: [],
    }
  })
  for (const own of stats) {
    for (const baselineName of options.baselines) {
      const baseline = stats.find((s) => s.name === baselineName)
      if (baseline === undefined) continue
      const paired = own.samplesMs.map((ms, i) => ms / (baseline.samplesMs[i] ?? Number.NaN)).sort((a, b) => a - b)
      own.ratios.push({
        baseline: baselineName,
        ofMedians: own.medianMs / baseline.medianMs,
        paired: {
          median: quantile(paired, 0.5),
          min: paired[0] ?? Number.NaN,
          max: paired[paired.length - 1] ?? Number.NaN,
        },
      })
    }
  }

  return {
    title,
    rounds: options.rounds,
    warmupRounds,
    opsUnit: options.opsUnit ?? 'ops',
    baselines: options.baselines,
    cases: stats,
    roundOrders,
    wallMs: performance.now() - started,
  }
}

/** The result as markdown: a title line with the settings, the table, and the raw samples. */
export function formatBenchMarkdown(result: BenchResult): string {
  const hasOps = result.cases.some((c) => c.opsPerSecond !== undefined)
  const header = [
    'case',
    'median ms',
    'p25–p75 ms',
    'min–max ms',
    ...(hasOps ? [`${result.opsUnit}/s (median)`, `${result.opsUnit}/s (p75–p25 time)`] : []),
    ...result.baselines.map((b) => `time ÷ ${b}`),
    ...result.baselines.map((b) => `per-round ÷ ${b} (min–max)`),
  ]
  const rows = result.cases.map((c) => [
    c.name,
    formatMs(c.medianMs),
    `${formatMs(c.p25Ms)}–${formatMs(c.p75Ms)}`,
    `${formatMs(c.minMs)}–${formatMs(c.maxMs)}`,
    ...(hasOps
      ? c.opsPerSecond === undefined
        ? ['', '']
        : [formatRate(c.opsPerSecond.median), `${formatRate(c.opsPerSecond.p75)}–${formatRate(c.opsPerSecond.p25)}`]
      : []),
    ...c.ratios.map((r) => formatRatio(r.ofMedians)),
    ...c.ratios.map((r) => `${formatRatio(r.paired.min)}–${formatRatio(r.paired.max)}`),
  ])
  return [
    `**${result.title}** — ${result.rounds} interleaved round(s) after ${result.warmupRounds} warm-up; ` +
      `wall ${formatSeconds(result.wallMs)}`,
    '',
    markdownTable(header, rows, 1),
    '',
    `Samples (ms, round order): ${result.cases.map((c) => `${c.name} [${c.samplesMs.map(formatMs).join(', ')}]`).join('; ')}`,
  ].join('\n')
}

/** A {@link NumbersTable} as markdown: its title in bold, then the table. */
export function formatTableMarkdown(table: NumbersTable): string {
  return [`**${table.title}**`, '', markdownTable(table.header, table.rows, 2)].join('\n')
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], labelColumns: number): string {
  const separator = header.map((_, i) => (i < labelColumns ? '---' : '---:'))
  return [header, separator, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n')
}

/** Milliseconds, with fewer decimals as they grow. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  if (ms >= 100) return ms.toFixed(0)
  if (ms >= 10) return ms.toFixed(1)
  return ms.toFixed(2)
}

/** A rate with three significant digits and thousands separators. */
export function formatRate(perSecondValue: number): string {
  if (!Number.isFinite(perSecondValue)) return 'n/a'
  return Number(perSecondValue.toPrecision(3)).toLocaleString('en-US')
}

/** A ratio like `2.31×`. */
export function formatRatio(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : 'n/a'
}

/** Seconds like `41.2 s`. */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length
  return [...items.slice(shift), ...items.slice(0, shift)]
}

// Linear interpolation between closest ranks (the "R-7" definition, as numpy and spreadsheets use).
/** The q-quantile (0–1) of already sorted values, interpolated; NaN when there are none. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const position = (sorted.length - 1) * q
  const lower = Math.floor(position)
  const upper = Math.ceil(position)
  const low = sorted[lower] as number
  const high = sorted[upper] as number
  return low + (high - low) * (position - lower)
}

/** The median of unsorted values. */
export function median(values: readonly number[]): number {
  return quantile(Float64Array.from(values).sort(), 0.5)
}

/** A fraction as a percentage: one decimal under 10 %, whole numbers above. */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return 'n/a'
  const percent = fraction * 100
  return `${Math.abs(percent) < 10 ? percent.toFixed(1) : Math.round(percent)} %`
}

function perSecond(ops: number, ms: number): number {
  return ms > 0 ? (ops * 1000) / ms : Number.NaN
}

/**
 * The tenant proof raw SQL must send with `app.organization_id` and the actor it sets (migration 0012), for this run's secret
 * (`CALLSHEET_SECRET`, which bench/run.ts sets when it is unset). Good for ten minutes: sent per unit.
 */
function benchProof(organizationId: string, actorId = '', apiKeyId = ''): string {
  const secret = process.env.CALLSHEET_SECRET
  if (secret === undefined || secret === '') throw new Error('CALLSHEET_SECRET is not set (bench/run.ts sets it)')
  return tenantProof(secret, organizationId, Math.floor(Date.now() / 1000) + 600, actorId, apiKeyId)
}

/**
 * The settings statement a unit of `organizationId` starts with (src/engine/settings-statement.ts), as the
 * app role with this run's proof ({@link benchProof}), for suites that drive a connection themselves.
 * Without `statementTimeoutMs` the statement timeout is left as it is.
 */
export function benchSettings(
  organizationId: string,
  context: { readonly actorId?: string; readonly requestId?: string; readonly ip?: string } = {},
  options: Parameters<typeof settingsStatement>[1] = {},
): SettingsStatement {
  const actorId = context.actorId ?? ''
  return settingsStatement(
    {
      role: APP_ROLE,
      organizationId,
      actorId,
      apiKeyId: '',
      requestId: context.requestId ?? '',
      ip: context.ip ?? '',
      proof: benchProof(organizationId, actorId),
    },
    options,
  )
}
