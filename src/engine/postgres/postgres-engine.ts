import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { DatabaseClosedError, mapDatabaseError, PrivilegedLoginError } from '../../errors'
import { drizzleSetup, schema } from '../drizzle-setup'
import type { Db, Engine, UnitOptions } from '../engine'
import type { EngineConfig, ResolvedTarget } from '../engine-config'
import {
  LOGIN_PRIVILEGES_SQL,
  loginPrivilegeProblems,
  loginPrivilegesParams,
  type LoginPrivileges,
} from '../login-check'
import { settingsStatementText, type UnitSettings } from '../settings-statement'
import { TenantProofs } from '../tenant-proof'
import { refuseInsideUnit } from '../unit-scope'
import { refusedWhen } from '../refused-when'
import { PostgresPool } from './pool'
import { PostgresUnit, type PostgresUnitEngine } from './postgres-unit'

/** The engine of a PostgreSQL server (primary or replica), over a postgres.js pool. */
export function createPostgresEngine(
  target: Extract<ResolvedTarget, { kind: 'postgres' }>,
  config: EngineConfig,
  options: {
    readonly acquireTimeoutMs: number
    readonly targetName: string
    readonly scope: object
    readonly checkLogin: boolean
    readonly max: number
    /** See {@link PostgresPool}: the primary waits for a restarting server, a replica fails over to it. */
    readonly waitForServer: boolean
  },
): Engine {
  const { scope, targetName } = options
  const owners = [scope]
  // drizzle() installs its type parsers on a client's shared options, so that its reserved connections
  // parse the same way: on every client the pool makes.
  const pool = new PostgresPool(target, config, options.max, options.acquireTimeoutMs, options.waitForServer, (c) => {
    drizzlePostgres(c)
  })
  const { client } = pool
  let closed = false
  const refuseClosed = (): Error | undefined =>
    closed ? new DatabaseClosedError(`a query on ${targetName}`) : undefined
  const setup = drizzleSetup(config)
  const db = drizzlePostgres(refusedWhen(client, refuseClosed), {
    schema,
    ...(setup.logger ? { logger: setup.logger } : {}),
  }) as unknown as Db

  // The login is checked once, before the first unit; units after a passed check pay nothing. A failed
  // check (refused, or the server unreachable) is tried again by the next unit.
  let loginChecked = !options.checkLogin
  let checkingLogin: Promise<void> | undefined
  const checkTheLogin = async (): Promise<void> => {
    const [row] = (await client.unsafe(LOGIN_PRIVILEGES_SQL, loginPrivilegesParams())) as unknown as LoginPrivileges[]
    const problems = row ? loginPrivilegeProblems(row) : []
    if (row && problems.length > 0) throw new PrivilegedLoginError(row.login, problems)
    loginChecked = true
  }

  const onQuery = config.onQuery
  const unitEngine: PostgresUnitEngine = {
    owners,
    pool,
    prepare: config.prepare,
    statementTimeoutMs: config.statementTimeoutMs,
    drizzle: setup,
    observe: onQuery ? (event) => onQuery({ ...event, target: targetName }) : undefined,
    settingsText: {
      tenant: {
        read: settingsStatementText({ primary: 'read' }),
        write: settingsStatementText({ primary: 'write' }),
      },
      organization: {
        read: settingsStatementText({ enter: 'organization', primary: 'read' }),
        write: settingsStatementText({ enter: 'organization', primary: 'write' }),
      },
      replica: settingsStatementText({ replicaGate: true }),
    },
    loginChecked: () => loginChecked,
    checkLogin() {
      checkingLogin ??= checkTheLogin().catch((error: unknown) => {
        checkingLogin = undefined
        throw mapDatabaseError(error)
      })
      return checkingLogin
    },
  }

  return {
    kind: 'postgres',
    scope,
    db,
    refuseInsideUnit: () => void refuseInsideUnit(owners),
    proofs: new TenantProofs(config.secret),
    stats: () => ({ inUse: pool.inUse, waiting: pool.waiting }),
    async probe<T extends Record<string, unknown>>(text: string): Promise<T[]> {
      const refused = refuseClosed()
      if (refused) throw refused
      try {
        return (await client.unsafe(text)) as unknown as T[]
      } catch (error) {
        throw mapDatabaseError(error)
      }
    },
    unit<T>(settings: UnitSettings, unitOptions: UnitOptions, fn: (db: Db) => Promise<T>): Promise<T> {
      const refused = refuseClosed()
      if (refused) return Promise.reject(refused)
      return new PostgresUnit<T>(unitEngine, settings, unitOptions).run(fn)
    },
    async close() {
      closed = true
      await pool.drain(5_000)
      await Promise.all(pool.clients().map((c) => c.end({ timeout: 5 })))
    },
  }
}
