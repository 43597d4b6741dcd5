/**
 * Mutation check of the isolation suites: breaks one database guarantee at a time and expects
 * `test/isolation-raw-sql.test.ts` + `test/tenant-isolation-api.test.ts` + `test/attacks.test.ts` +
 * `test/catalog.test.ts` + `test/pool.test.ts` (a standby never takes a unit) + `test/app-tables-db.test.ts` to fail.
 *
 *   npx tsx scripts/mutation-check.ts [--only <mutation id>,…]
 *
 * How: a PostgreSQL server comes from the test harness (`DATABASE_URL`, testcontainers or local
 * binaries). Each mutation is first validated (applied and rolled back on a migrated scratch database,
 * so a typo is an error, not a "caught" mutation). Then vitest runs the suites on the PostgreSQL engine
 * only (`CALLSHEET_ENGINES=postgres`), with `CALLSHEET_MUTATION_SQL` set: the harness (`openEngine`)
 * runs it as the owner right after migrating each scratch database. A mutation is caught when the run
 * has failing tests and otherwise ran the same number of tests as the unmutated baseline (a suite that
 * broke in setup is reported as an error, not as caught). Exit code 0 only when the baseline passes and
 * every mutation is caught.
 *
 * Role mutations (BYPASSRLS) are cluster-wide: each mutation's `revert` runs after its run. Against a
 * shared `DATABASE_URL` server, other users of that server would see the role changed while it runs.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/migrations/migrate'
import { acquirePostgresServer, createScratchDatabase, type PostgresServer } from '../tools/postgres-server'

interface Mutation {
  id: string
  what: string
  sql: string
  /** Undoes a cluster-wide change after the run (database-local changes die with the scratch databases). */
  revert?: string
}

const POLICY_WITHOUT_NULLIF = `organization_id = current_setting('app.organization_id', true)::uuid`
const POLICY_UNPROVEN_VALUE = `nullif(current_setting('app.organization_id', true), '')::uuid`
const POLICY_UNPROVEN = `organization_id = (select ${POLICY_UNPROVEN_VALUE})`

const MUTATIONS: Mutation[] = [
  {
    id: 'drop-policy',
    what: 'tenant policy dropped on contacts',
    sql: 'drop policy tenant_isolation on contacts',
  },
  {
    id: 'no-force-rls',
    what: 'FORCE row level security removed on contacts',
    sql: 'alter table contacts no force row level security',
  },
  {
    id: 'bypassrls',
    what: 'ALTER ROLE callsheet_app BYPASSRLS',
    sql: 'alter role callsheet_app bypassrls',
    revert: 'alter role callsheet_app nobypassrls',
  },
  {
    id: 'app-owns-table',
    what: 'callsheet_app made the owner of contacts',
    sql: 'alter table contacts owner to callsheet_app',
  },
  {
    id: 'drop-composite-fk',
    what: 'composite FK contacts (organization_id, production_id) → productions dropped',
    sql: 'alter table contacts drop constraint contacts_production_fk',
  },
  // Issue 14: the defences against SQL injected into a tenant unit.
  {
    id: 'audit-path-unpinned',
    what: 'callsheet_audit() searches pg_temp first again (search_path = pg_catalog, public)',
    sql: 'alter function callsheet_audit() set search_path = pg_catalog, public',
  },
  {
    id: 'audit-as-0007',
    what: 'callsheet_audit() back to unqualified audit_logs and pg_temp searched first (0007)',
    sql: `do $$ begin execute replace(replace(pg_get_functiondef('callsheet_audit'::regproc),
            'public.audit_logs', 'audit_logs'), 'pg_temp', 'public'); end $$`,
  },
  {
    id: 'temp-to-public',
    what: 'TEMPORARY on the database granted back to PUBLIC',
    sql: `do $$ begin execute format('grant temporary on database %I to public', current_database()); end $$`,
  },
  {
    id: 'policy-unproven',
    what: 'contacts policy compares with the plain app.organization_id setting (no proof)',
    sql: `alter policy tenant_isolation on contacts using (${POLICY_UNPROVEN}) with check (${POLICY_UNPROVEN})`,
  },
  {
    id: 'tenant-fn-unproven',
    what: 'callsheet_tenant() returns the setting without checking its proof',
    sql: `create or replace function callsheet_tenant() returns uuid language sql stable security definer
            set search_path = pg_catalog, pg_temp as $$ select ${POLICY_UNPROVEN_VALUE} $$`,
  },
  {
    id: 'enter-unchecked',
    what: 'callsheet_enter_tenant() sets the tenant without checking organization, actor or key',
    sql: `create or replace function callsheet_enter_tenant(p_org text, p_proof text, p_actor text, p_api_key text,
              p_request text, p_ip text, p_statement_timeout text)
            returns boolean language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
            begin
              execute format('SET LOCAL app.organization_id = %L; SET LOCAL app.tenant_proof = %L; '
                'SET LOCAL app.actor_id = %L; SET LOCAL app.api_key_id = %L', p_org, p_proof, p_actor, p_api_key);
              return true;
            end $$`,
  },
  {
    id: 'policy-without-nullif',
    what: 'contacts policy without nullif (empty setting → error)',
    sql: `drop policy tenant_isolation on contacts;
          create policy tenant_isolation on contacts as permissive for all to public
            using (${POLICY_WITHOUT_NULLIF}) with check (${POLICY_WITHOUT_NULLIF})`,
  },
  // Issue 17: primary work never runs on a standby.
  {
    id: 'primary-check-noop',
    what: 'callsheet_require_primary() lets a standby and a read-only primary take units',
    sql: `create or replace function public.callsheet_require_primary(p_write boolean) returns void
            language plpgsql volatile set search_path = pg_catalog, pg_temp as $$ begin end $$`,
  },
  {
    id: 'register-no-force',
    what: 'callsheet_register_tenant_table() enables RLS on an app table but no longer forces it',
    sql: `do $$ begin execute replace(pg_get_functiondef('callsheet_register_tenant_table'::regproc), '%s FORCE ROW', '%s NO FORCE ROW'); end $$`,
  },
  {
    id: 'register-no-policy',
    what: 'callsheet_register_tenant_table() no longer creates tenant_isolation on a table without one',
    sql: `do $$ begin execute replace(pg_get_functiondef('callsheet_register_tenant_table'::regproc), 'EXECUTE format(''CREATE POLICY', 'PERFORM format(''CREATE POLICY'); end $$`,
  },
]

// The catalog suite catches what no attack can show: a defence that another one still covers (the
// audit function's pinned path behind its qualified table names).
const SUITES = [
  'test/isolation-raw-sql.test.ts',
  'test/tenant-isolation-api.test.ts',
  'test/attacks.test.ts',
  'test/catalog.test.ts',
  'test/pool.test.ts',
  'test/app-tables-db.test.ts',
]

interface RunResult {
  exitCode: number
  total: number
  passed: number
  failed: number
  suiteErrors: string[]
  failedTitles: string[]
  ms: number
}

interface JsonReport {
  numTotalTests?: number
  numPassedTests?: number
  numFailedTests?: number
  testResults?: {
    name: string
    status: string
    message?: string
    assertionResults?: { fullName?: string; title: string; status: string }[]
  }[]
}

async function runSuites(server: PostgresServer, mutationSql: string | undefined): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'callsheet-mutation-'))
  const outputFile = join(dir, 'report.json')
  const started = Date.now()
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: server.adminUrl,
      CALLSHEET_ENGINES: 'postgres',
      CALLSHEET_REQUIRE_SERVER: '1',
    }
    delete env.DATABASE_REPLICA_URLS
    if (mutationSql === undefined) delete env.CALLSHEET_MUTATION_SQL
    else env.CALLSHEET_MUTATION_SQL = mutationSql
    const exitCode = await new Promise<number>((resolve, reject) => {
      const child = spawn(
        'npx',
        ['vitest', 'run', ...SUITES, '--reporter=json', `--outputFile=${outputFile}`, '--typecheck.enabled=false'],
        { env, stdio: ['ignore', 'ignore', 'pipe'] },
      )
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000)
      })
      child.on('error', reject)
      child.on('close', (code) => {
        if (code === null) reject(new Error(`vitest was killed\n${stderr}`))
        else resolve(code)
      })
    })
    let report: JsonReport
    try {
      report = JSON.parse(await readFile(outputFile, 'utf8')) as JsonReport
    } catch (error) {
      throw new Error(`vitest wrote no JSON report (exit ${exitCode}): ${String(error)}`)
    }
    const files = report.testResults ?? []
    const suiteErrors = files
      .filter((f) => f.status === 'failed' && (f.message ?? '') !== '')
      .map((f) => `${f.name.replace(`${process.cwd()}/`, '')}: ${(f.message ?? '').split('\n')[0]}`)
    const failedTitles = files.flatMap((f) =>
      (f.assertionResults ?? []).filter((a) => a.status === 'failed').map((a) => a.fullName ?? a.title),
    )
    return {
      exitCode,
      total: report.numTotalTests ?? 0,
      passed: report.numPassedTests ?? 0,
      failed: report.numFailedTests ?? 0,
      suiteErrors,
      failedTitles,
      ms: Date.now() - started,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Applies each mutation on a migrated scratch database and rolls it back: a broken mutation is an error here. */
async function validateMutations(server: PostgresServer, mutations: Mutation[]): Promise<void> {
  const scratch = await createScratchDatabase(server.adminUrl, 'cs_mutation_probe')
  try {
    await migrate(scratch.url)
    const sql = postgres(scratch.url, { max: 1, onnotice: () => {} })
    try {
      for (const mutation of mutations) {
        await sql
          .begin(async (tx) => {
            await tx.unsafe(mutation.sql)
            throw new RollbackSignal()
          })
          .catch((error: unknown) => {
            if (!(error instanceof RollbackSignal)) {
              throw new Error(`mutation ${mutation.id} does not apply: ${String(error)}`, { cause: error })
            }
          })
      }
    } finally {
      await sql.end({ timeout: 5 })
    }
  } finally {
    await scratch.drop()
  }
}

class RollbackSignal extends Error {}

async function revert(server: PostgresServer, mutation: Mutation): Promise<void> {
  if (mutation.revert === undefined) return
  const sql = postgres(server.adminUrl, { max: 1, onnotice: () => {} })
  try {
    await sql.unsafe(mutation.revert)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

const pad = (text: string, width: number): string =>
  text.length >= width ? text : text + ' '.repeat(width - text.length)

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  const onlyIndex = args.indexOf('--only')
  const only = onlyIndex >= 0 ? (args[onlyIndex + 1] ?? '').split(',').filter(Boolean) : undefined
  const mutations = only === undefined ? MUTATIONS : MUTATIONS.filter((m) => only.includes(m.id))
  if (only !== undefined && mutations.length !== only.length) {
    console.error(`unknown mutation id in --only; known: ${MUTATIONS.map((m) => m.id).join(', ')}`)
    return 2
  }

  const started = Date.now()
  const { server, attempts } = await acquirePostgresServer({ log: (line) => console.log(`[harness] ${line}`) })
  if (!server) {
    console.error('no PostgreSQL server:\n' + attempts.map((a) => `  - ${a.source}: ${a.reason}`).join('\n'))
    return 2
  }
  try {
    console.log(`server: ${server.description}`)
    if (server.source === 'DATABASE_URL' && mutations.some((m) => m.revert !== undefined)) {
      console.warn('!! DATABASE_URL server: role mutations are cluster-wide until reverted after their run')
    }
    await validateMutations(server, mutations)

    const baseline = await runSuites(server, undefined)
    console.log(
      `baseline (unmutated): ${baseline.passed}/${baseline.total} passed, exit ${baseline.exitCode}, ${(baseline.ms / 1000).toFixed(1)} s`,
    )
    if (baseline.exitCode !== 0 || baseline.failed > 0 || baseline.total === 0) {
      console.error('baseline FAILED: the suites must pass unmutated before mutations mean anything')
      for (const line of [...baseline.suiteErrors, ...baseline.failedTitles].slice(0, 20)) console.error(`  ${line}`)
      return 1
    }

    const rows: { mutation: Mutation; verdict: 'caught' | 'SURVIVED' | 'ERROR'; result: RunResult }[] = []
    for (const mutation of mutations) {
      let result: RunResult
      try {
        result = await runSuites(server, mutation.sql)
      } finally {
        await revert(server, mutation)
      }
      const ranAll = result.total === baseline.total && result.suiteErrors.length === 0
      const verdict = !ranAll ? 'ERROR' : result.failed > 0 && result.exitCode !== 0 ? 'caught' : 'SURVIVED'
      rows.push({ mutation, verdict, result })
      console.log(
        `${pad(mutation.id, 22)} ${pad(verdict, 8)} ${result.failed} failed / ${result.total} (${(result.ms / 1000).toFixed(1)} s)`,
      )
    }

    console.log('')
    console.log(`| ${pad('mutation', 22)} | ${pad('what', 76)} | verdict  | failing tests | s    |`)
    console.log(`| ${'-'.repeat(22)} | ${'-'.repeat(76)} | -------- | ------------- | ---- |`)
    for (const { mutation, verdict, result } of rows) {
      console.log(
        `| ${pad(mutation.id, 22)} | ${pad(mutation.what, 76)} | ${pad(verdict, 8)} | ${pad(`${result.failed}/${result.total}`, 13)} | ${pad((result.ms / 1000).toFixed(0), 4)} |`,
      )
    }
    for (const { mutation, verdict, result } of rows) {
      if (verdict === 'caught') {
        console.log(`\n${mutation.id}: caught by e.g.\n  ${result.failedTitles.slice(0, 3).join('\n  ')}`)
      } else if (verdict === 'ERROR') {
        console.log(
          `\n${mutation.id}: the suites did not run normally (${result.total} tests vs ${baseline.total}):\n  ${result.suiteErrors.slice(0, 5).join('\n  ')}`,
        )
      }
    }
    const caught = rows.filter((r) => r.verdict === 'caught').length
    console.log(
      `\nmutation score: ${caught}/${rows.length} caught; baseline ${baseline.passed}/${baseline.total} passed; ${((Date.now() - started) / 1000).toFixed(0)} s total`,
    )
    return caught === rows.length ? 0 : 1
  } finally {
    await server.stop()
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    console.error(error)
    process.exitCode = 2
  },
)
