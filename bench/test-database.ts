/**
 * `npm run bench -- test-database [--runs N] [--later N] [--no-suite] [--no-load] [--write]`
 *
 * What an app's unit tests pay for `@callsheet/db/testing`, measured on the built package (`dist/`, run
 * `npm run build` first) the way an app uses it, without a PostgreSQL server:
 * - fresh processes (`--runs`, default 5), each: import, template (from the machine cache), the first
 *   `createTestDatabase()`, RSS holding that one database, then `--later` (default 5) more, one at a time,
 *   each used and closed (the first on a new instance, the others on the instance it closed, reset);
 * - a scratch app of 7 vitest files (createTestDatabase, seedTenant, expectTenantIsolation) run with
 *   vitest's defaults (timeouts, pool, workers): first with an empty cache (a fresh app), then warm;
 * - both again while two busy loops keep both cores busy (started here, killed when done).
 * Every figure carries the 1-minute load average at its start. With `--write`, the numbers replace the
 * `test-database` block of BENCHMARKS.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { updateBenchmarksFile } from './benchmarks-file'
import { testDatabaseSuiteFiles } from './test-database-suite'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const DIST_TESTING = join(ROOT, 'dist', 'testing.js')
const PROBE = join(ROOT, 'bench', 'test-database-probe.mjs')
const BENCHMARKS_PATH = join(ROOT, 'BENCHMARKS.md')
// The busy loops end by themselves after this long, should this process die without killing them.
const LOAD_BOUND_S = 900

interface ProbeResult {
  source: string
  importMs: number
  templateMs: number
  firstMs: number
  rssOneBytes: number
  laterMs: number[]
  closeMs: number[]
  laterReused: boolean[]
  peakRssBytes: number
}

const load1 = (): string => (loadavg()[0] ?? 0).toFixed(2)
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const ms = (x: number): string => `${Math.round(x)}`
const mb = (bytes: number): string => `${Math.round(bytes / 1e6)}`

function probe(later: number, env: NodeJS.ProcessEnv): ProbeResult & { load: string; wallMs: number } {
  const load = load1()
  const started = performance.now()
  const out = spawnSync(process.execPath, [PROBE, DIST_TESTING, String(later)], {
    env,
    encoding: 'utf8',
    timeout: 300_000,
  })
  if (out.status !== 0) throw new Error(`probe failed (${out.status}): ${out.stderr}`)
  const line = out.stdout.trim().split('\n').pop() ?? ''
  return { ...(JSON.parse(line) as ProbeResult), load, wallMs: performance.now() - started }
}

/** Two busy loops (one per core here), bounded in time; stop() kills exactly them. */
function startCpuLoad(): { stop: () => void } {
  const loops: ChildProcess[] = Array.from({ length: cpus().length }, () =>
    spawn(process.execPath, ['-e', `const end = Date.now() + ${LOAD_BOUND_S * 1000}; while (Date.now() < end) {}`], {
      stdio: 'ignore',
    }),
  )
  return {
    stop: () => {
      for (const loop of loops) if (loop.exitCode === null) loop.kill('SIGKILL')
    },
  }
}

interface SuiteRun {
  label: string
  load: string
  wallMs: number
  passed: boolean
  summary: string
  failures: string[]
  peakRssMb: number
}

/** A scratch app: the built package and vitest linked in, 7 test files, no vitest config (its defaults). */
function makeApp(): string {
  const app = mkdtempSync(join(tmpdir(), 'callsheet-testdb-app-'))
  mkdirSync(join(app, 'node_modules', '@callsheet'), { recursive: true })
  symlinkSync(ROOT, join(app, 'node_modules', '@callsheet', 'db'))
  symlinkSync(join(ROOT, 'node_modules', 'vitest'), join(app, 'node_modules', 'vitest'))
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }))
  mkdirSync(join(app, 'test'))
  for (const [name, text] of Object.entries(testDatabaseSuiteFiles())) writeFileSync(join(app, 'test', name), text)
  return app
}

function runSuite(app: string, label: string): SuiteRun {
  const load = load1()
  const started = performance.now()
  // GNU time's %M: the largest resident set of any one process of the run (a vitest worker), in KiB.
  const out = spawnSync(
    '/usr/bin/time',
    ['-f', 'peak-rss-kib %M', process.execPath, join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run'],
    { cwd: app, encoding: 'utf8', timeout: 600_000, env: { ...process.env, CALLSHEET_DB_CACHE_DIR: '', CI: '1' } },
  )
  const wallMs = performance.now() - started
  const text = `${out.stdout}\n${out.stderr}`
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '')
  const summary = [/Test Files\s+(.*)/, /Tests\s+(.*)/].map((re) => re.exec(plain)?.[1]?.trim() ?? '?').join('; ')
  // What failed, as vitest names it (file > test, and the error's first line).
  const failures = [...plain.matchAll(/FAIL\s+(.+)\n(?:.*\n)?\s*(\w*Error: [^\n]*)/g)]
    .map((m) => `${m[1]?.trim() ?? ''}: ${m[2]?.trim() ?? ''}`)
    .filter((line, index, all) => all.indexOf(line) === index)
    .slice(0, 4)
  const peak = /peak-rss-kib (\d+)/.exec(plain)?.[1]
  return {
    label,
    load,
    wallMs,
    passed: out.status === 0,
    summary,
    failures,
    peakRssMb: peak ? Math.round((Number(peak) * 1024) / 1e6) : 0,
  }
}

function reusedCell(r: ProbeResult): string {
  const times = r.laterMs.filter((_, i) => r.laterReused[i] === true)
  return times.length === 0 ? 'none reused' : `${ms(median(times))} ms (${times.length} of ${r.laterMs.length})`
}

function probeTable(rows: (ProbeResult & { load: string; wallMs: number })[]): string[] {
  return [
    '| run | load (1 min) | template from | import | template | first createTestDatabase | template + first | RSS holding one | later: each | later (median, max) | later on a reused instance (median) | their close() (median) | process wall |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r, i) =>
        `| ${i + 1} | ${r.load} | ${r.source} | ${ms(r.importMs)} ms | ${ms(r.templateMs)} ms | ${ms(r.firstMs)} ms | ` +
        `${ms(r.templateMs + r.firstMs)} ms | ${mb(r.rssOneBytes)} MB | ${r.laterMs.map(ms).join(', ')} | ` +
        `${ms(median(r.laterMs))} / ${ms(Math.max(...r.laterMs))} ms | ` +
        `${reusedCell(r)} | ` +
        `${ms(median(r.closeMs))} ms | ${ms(r.wallMs)} ms |`,
    ),
  ]
}

function suiteTable(rows: SuiteRun[]): string[] {
  return [
    '| run | load (1 min) at start | wall | result | largest process RSS |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.load} | ${(r.wallMs / 1000).toFixed(1)} s | ${r.passed ? 'passed' : 'FAILED'}: ${r.summary.replace(/\|/g, '/')} | ${r.peakRssMb} MB |`,
    ),
    ...rows.flatMap((r) => r.failures.map((f) => `- ${r.label} failure: ${f.replace(/\|/g, '/')}`)),
  ]
}

/** Runs the bench; `argv` is what follows `test-database` on the command line. */
export async function runTestDatabaseBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      later: { type: 'string', default: '5' },
      'no-suite': { type: 'boolean', default: false },
      'no-load': { type: 'boolean', default: false },
      write: { type: 'boolean', default: false },
    },
  })
  if (!existsSync(DIST_TESTING)) throw new Error(`${DIST_TESTING} is missing: run \`npm run build\` first`)
  const runs = Number(values.runs)
  const later = Number(values.later)
  const log = (line: string): void => console.log(`[bench:test-database] ${line}`)
  const date = new Date().toISOString()
  const cacheDir = mkdtempSync(join(tmpdir(), 'callsheet-testdb-cache-'))
  const env = { ...process.env, CALLSHEET_DB_CACHE_DIR: cacheDir }
  const sections: string[] = []
  const phases: { label: string; loaded: boolean }[] = [
    { label: 'idle (other work on the machine: see load)', loaded: false },
  ]
  if (!values['no-load'])
    phases.push({ label: `under load: ${cpus().length} busy loops on ${cpus().length} cores`, loaded: true })
  try {
    // Warm the machine cache once (from the shipped snapshot): the probes measure a warm cache.
    log('warming the cache')
    probe(0, env)
    for (const phase of phases) {
      const cpuLoad = phase.loaded ? startCpuLoad() : undefined
      try {
        const rows = []
        for (let i = 0; i < runs; i++) {
          log(`${phase.label}: fresh process ${i + 1}/${runs}`)
          rows.push(probe(later, env))
        }
        sections.push(`#### Fresh processes, ${phase.label}`, '', ...probeTable(rows), '')
        if (!values['no-suite']) {
          const app = makeApp()
          try {
            const suiteRows: SuiteRun[] = []
            log(`${phase.label}: 7-file suite, empty cache (a fresh app)`)
            suiteRows.push(runSuite(app, 'fresh app: empty cache'))
            log(`${phase.label}: 7-file suite, warm cache`)
            suiteRows.push(runSuite(app, 'warm cache'))
            sections.push(
              `#### 7-file vitest suite (vitest defaults), ${phase.label}`,
              '',
              ...suiteTable(suiteRows),
              '',
            )
          } finally {
            rmSync(app, { recursive: true, force: true })
          }
        }
      } finally {
        cpuLoad?.stop()
      }
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true })
  }
  const numbers = [
    '### Numbers: test-database',
    '',
    `- Date: ${date}`,
    `- Command: \`npm run bench -- test-database ${argv.join(' ')}\`` + ' (after `npm run build`)',
    `- Machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? '?'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM; Node ${process.version}`,
    `- ${runs} fresh process(es) per phase, ${later} later database(s) each; times in ms, RSS in MB (10^6 bytes)`,
    '',
    ...sections,
  ].join('\n')
  console.log(`\n${numbers}`)
  if (values.write) {
    await updateBenchmarksFile(BENCHMARKS_PATH, 'test-database', numbers)
    log(`wrote the test-database block of ${BENCHMARKS_PATH}`)
  }
}
