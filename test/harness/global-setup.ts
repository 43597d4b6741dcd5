import type { TestProject } from 'vitest/node'
import { acquirePostgresServer, type PostgresServer } from '../../tools/postgres-server'
import { citusAvailable, startCitusCluster, type CitusClusterHandle } from '../../tools/citus-cluster'
import { autoFailoverAvailable } from '../../tools/auto-failover'
import { setRunSummary } from './run-summary'

/**
 * Finds a real PostgreSQL for the server suites: `DATABASE_URL`, else testcontainers, else a throwaway
 * primary + streaming replica from local binaries. With `CALLSHEET_REQUIRE_SERVER=1` (CI) a run
 * without a server fails; otherwise it says so loudly and the PGlite suites still run.
 * Also starts a Citus cluster (coordinator + 2 workers) for the suites that opt in to Citus; with
 * `CALLSHEET_REQUIRE_CITUS=1` (CI) a run without one fails.
 * Checks (starts nothing) that a pg_auto_failover formation can be started: the failover suites start
 * their own, since they restart and kill its servers; with `CALLSHEET_REQUIRE_AUTO_FAILOVER=1` (CI) a
 * run where it cannot fails.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now()
  const { server, attempts } = await acquirePostgresServer({ log: (line) => console.log(`[harness] ${line}`) })
  let active: PostgresServer | undefined = server
  if (server) {
    console.log(`[harness] PostgreSQL server suites will run on ${server.description} (${Date.now() - started} ms)`)
    project.provide('postgresServer', {
      adminUrl: server.adminUrl,
      ...(server.replicaUrl === undefined ? {} : { replicaUrl: server.replicaUrl }),
      description: server.description,
      source: server.source,
    })
    setRunSummary('server', { description: server.description })
  } else {
    const reasons = attempts.map((a) => `  - ${a.source}: ${a.reason}`).join('\n')
    const banner = [
      '',
      '!'.repeat(100),
      '!! NO POSTGRESQL SERVER: the server suites are SKIPPED; only PGlite runs.',
      '!! Tried, in order:',
      reasons,
      '!! Set DATABASE_URL, start a Docker engine, or install PostgreSQL binaries (apt-get install postgresql-15).',
      '!'.repeat(100),
      '',
    ].join('\n')
    console.warn(banner)
    if (process.env.CALLSHEET_REQUIRE_SERVER === '1') {
      throw new Error('CALLSHEET_REQUIRE_SERVER=1 but no PostgreSQL server could be had (see above)')
    }
    project.provide('postgresServer', null)
    setRunSummary('server', { skippedBecause: attempts.map((a) => `${a.source}: ${a.reason}`).join('; ') })
  }
  project.provide('autoFailover', await checkAutoFailover())
  const citus = await startCitus()
  project.provide(
    'citusCluster',
    citus === undefined
      ? null
      : { coordinatorUrl: citus.coordinatorUrl, workerUrls: citus.workerUrls, description: citus.description },
  )
  return async () => {
    await Promise.all([active?.stop(), citus?.stop()])
    active = undefined
  }
}

/** The Citus cluster of the run, or undefined (said loudly) when Citus is not installed or not wanted. */
async function startCitus(): Promise<CitusClusterHandle | undefined> {
  const only = process.env.CALLSHEET_ENGINES?.split(',').map((name) => name.trim())
  if (only !== undefined && only.some(Boolean) && !only.includes('citus')) {
    setRunSummary('citus', { skippedBecause: `CALLSHEET_ENGINES=${process.env.CALLSHEET_ENGINES} leaves it out` })
    return undefined
  }
  const available = await citusAvailable()
  let reason = available.ok ? undefined : available.reason
  if (available.ok) {
    const started = Date.now()
    try {
      const cluster = await startCitusCluster({
        log: (line) => console.log(`[harness] citus: ${line}`),
        // Few shards keep each suite's distribute() fast; the tests need colocation, not spread.
        settings: { 'citus.shard_count': 4 },
      })
      console.log(`[harness] Citus suites will run on ${cluster.description} (${Date.now() - started} ms)`)
      setRunSummary('citus', { description: cluster.description })
      return cluster
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error)
    }
  }
  console.warn(
    ['', '!'.repeat(100), `!! NO CITUS CLUSTER: the Citus suites are SKIPPED (${reason})`, '!'.repeat(100), ''].join(
      '\n',
    ),
  )
  if (process.env.CALLSHEET_REQUIRE_CITUS === '1')
    throw new Error(`CALLSHEET_REQUIRE_CITUS=1 but no Citus cluster could be started: ${reason}`)
  setRunSummary('citus', { skippedBecause: reason ?? 'unknown' })
  return undefined
}

/** Whether the failover suites can start a pg_auto_failover formation (they start their own); said loudly when not. */
async function checkAutoFailover(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const only = process.env.CALLSHEET_ENGINES?.split(',').map((name) => name.trim())
  if (only !== undefined && only.some(Boolean) && !only.includes('auto-failover')) {
    const reason = `CALLSHEET_ENGINES=${process.env.CALLSHEET_ENGINES} leaves it out`
    setRunSummary('auto-failover', { skippedBecause: reason })
    return { ok: false, reason }
  }
  const available = await autoFailoverAvailable()
  if (available.ok) {
    setRunSummary('auto-failover', { description: 'pg_auto_failover formations started by the failover suites' })
    return available
  }
  console.warn(
    [
      '',
      '!'.repeat(100),
      `!! NO PG_AUTO_FAILOVER: the failover suites are SKIPPED (${available.reason})`,
      '!! apt-get install postgresql-15-auto-failover',
      '!'.repeat(100),
      '',
    ].join('\n'),
  )
  if (process.env.CALLSHEET_REQUIRE_AUTO_FAILOVER === '1')
    throw new Error(
      `CALLSHEET_REQUIRE_AUTO_FAILOVER=1 but no pg_auto_failover formation can be started: ${available.reason}`,
    )
  setRunSummary('auto-failover', { skippedBecause: available.reason })
  return available
}
