import type { TestProject } from 'vitest/node'
import { acquirePostgresServer, type PostgresServer } from '../../tools/postgres-server'
import { setServerSummary } from './run-summary'

/**
 * Finds a real PostgreSQL for the server suites: `DATABASE_URL`, else testcontainers, else a throwaway
 * primary + streaming replica from local binaries. With `CALLSHEET_REQUIRE_SERVER=1` (CI) a run
 * without a server fails; otherwise it says so loudly and the PGlite suites still run.
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
    setServerSummary({ description: server.description })
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
    setServerSummary({ skippedBecause: attempts.map((a) => `${a.source}: ${a.reason}`).join('; ') })
  }
  return async () => {
    await active?.stop()
    active = undefined
  }
}
