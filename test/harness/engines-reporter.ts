import type { Reporter, TestModule } from 'vitest/node'
import { getRunSummary } from './run-summary'

/**
 * Ends the run with one line saying which engines ran and how many tests passed on each, and fails a
 * run that was required to use a real server (`CALLSHEET_REQUIRE_SERVER=1`) or Citus
 * (`CALLSHEET_REQUIRE_CITUS=1`) or a pg_auto_failover formation (`CALLSHEET_REQUIRE_AUTO_FAILOVER=1`) but ran
 * no test there.
 */
export default class EnginesReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = {
      pglite: { passed: 0, failed: 0 },
      postgres: { passed: 0, failed: 0 },
      citus: { passed: 0, failed: 0 },
      'auto-failover': { passed: 0, failed: 0 },
    }
    const all = { passed: 0, failed: 0, skipped: 0 }
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const outcome = test.result().state
        if (outcome === 'passed') all.passed++
        else if (outcome === 'failed') all.failed++
        else all.skipped++
        const engine = /\[(pglite|postgres|citus|auto-failover)\]/.exec(test.fullName)?.[1] as
          keyof typeof counts | undefined
        if (!engine) continue
        if (outcome === 'passed') counts[engine].passed++
        else if (outcome === 'failed') counts[engine].failed++
      }
    }
    const summary = getRunSummary('server')
    const server =
      counts.postgres.passed + counts.postgres.failed > 0
        ? `PostgreSQL ${counts.postgres.passed} passed, ${counts.postgres.failed} failed on ${summary?.description ?? 'a server'}`
        : `PostgreSQL SKIPPED (${summary?.skippedBecause ?? 'no server suites ran'})`
    const citusSummary = getRunSummary('citus')
    const citus =
      counts.citus.passed + counts.citus.failed > 0
        ? `Citus ${counts.citus.passed} passed, ${counts.citus.failed} failed on ${citusSummary?.description ?? 'a cluster'}`
        : `Citus SKIPPED (${citusSummary?.skippedBecause ?? 'no Citus suites ran'})`
    const failoverSummary = getRunSummary('auto-failover')
    const failover = counts['auto-failover']
    const autoFailover =
      failover.passed + failover.failed > 0
        ? `pg_auto_failover ${failover.passed} passed, ${failover.failed} failed`
        : `pg_auto_failover SKIPPED (${failoverSummary?.skippedBecause ?? 'no failover suites ran'})`
    console.log(
      `\nengines: PGlite ${counts.pglite.passed} passed, ${counts.pglite.failed} failed; ${server}; ${citus}; ${autoFailover}`,
    )
    // A plain closing line that any CI log reader understands.
    console.log(`tests: ${all.passed} passed, ${all.failed} failed, ${all.skipped} skipped\n`)
    if (process.env.CALLSHEET_REQUIRE_SERVER === '1' && counts.postgres.passed === 0) {
      console.error('CALLSHEET_REQUIRE_SERVER=1 but no test ran on PostgreSQL: failing the run.')
      process.exitCode = 1
    }
    if (process.env.CALLSHEET_REQUIRE_CITUS === '1' && counts.citus.passed === 0) {
      console.error('CALLSHEET_REQUIRE_CITUS=1 but no test ran on Citus: failing the run.')
      process.exitCode = 1
    }
    if (process.env.CALLSHEET_REQUIRE_AUTO_FAILOVER === '1' && failover.passed + failover.failed === 0) {
      console.error(
        'CALLSHEET_REQUIRE_AUTO_FAILOVER=1 but no test ran on a pg_auto_failover formation: failing the run.',
      )
      process.exitCode = 1
    }
  }
}
