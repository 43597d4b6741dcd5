import { inject } from 'vitest'
import postgres from 'postgres'
import type { MigrationTarget } from '../../src/migrations/migrate'
import { createPglite } from '../../src/engine/pglite/create-pglite'
import { createScratchDatabase } from '../../tools/postgres-server'
import { pgliteRunner, postgresRunner, type SqlRunner } from '../harness/sql-runner'

/** An empty database to migrate: the target `migrate()` takes, a runner to inspect it, its URL on a server. */
export interface FreshMigrationTarget {
  target: MigrationTarget
  db: SqlRunner
  url?: string
  close(): Promise<void>
}

/**
 * The engines a migration test runs on, each as a factory of an empty database: PGlite always, the test
 * server's scratch database (named `<prefix>_…`) when the harness has one.
 */
export function freshMigrationTargets(prefix: string): [string, () => Promise<FreshMigrationTarget>][] {
  const server = inject('postgresServer')
  const engines: [string, () => Promise<FreshMigrationTarget>][] = [
    [
      'pglite',
      async () => {
        const pg = await createPglite()
        return { target: pg, db: pgliteRunner(pg), close: () => pg.close() }
      },
    ],
  ]
  if (server)
    engines.push([
      'postgres',
      async () => {
        const scratch = await createScratchDatabase(server.adminUrl, prefix)
        const sql = postgres(scratch.url, { max: 1, onnotice: () => {} })
        return {
          target: scratch.url,
          db: postgresRunner(sql),
          url: scratch.url,
          close: async () => {
            await sql.end({ timeout: 5 })
            await scratch.drop()
          },
        }
      },
    ])
  return engines
}
