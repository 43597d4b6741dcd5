import { testProof } from './secret'
import type { PGlite, Transaction } from '@electric-sql/pglite'
import type postgres from 'postgres'
import { settingsStatement } from '../../src/engine/settings-statement'
import { driverErrorCode, isCallsheetDbError } from '../../src/errors'

/** The smallest common surface of postgres.js and PGlite that raw-SQL tests need. */
export interface SqlRunner {
  query<T extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
  /** Runs several statements separated by `;` (no parameters). */
  exec(text: string): Promise<void>
  /** Runs `fn` in a transaction; a throw rolls it back and rethrows. */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>
}

type PgParams = postgres.ParameterOrJSON<never>[]

/** Wraps a postgres.js client (or transaction). */
export function postgresRunner(sql: postgres.Sql | postgres.TransactionSql): SqlRunner {
  return {
    async query<T>(text: string, params: unknown[] = []) {
      return (await sql.unsafe(text, params as PgParams)) as unknown as T[]
    },
    async exec(text) {
      // Simple protocol: several statements in one text (Citus refuses them in one prepared statement).
      await sql.unsafe(text).simple()
    },
    async transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
      if ('savepoint' in sql) return (await sql.savepoint((tx) => fn(postgresRunner(tx)))) as T
      return (await sql.begin((tx) => fn(postgresRunner(tx)))) as T
    },
  }
}

/** Wraps a PGlite instance (or transaction). */
export function pgliteRunner(pg: PGlite | Transaction): SqlRunner {
  return {
    async query<T>(text: string, params: unknown[] = []) {
      return (await pg.query<T>(text, params)).rows
    },
    async exec(text) {
      await pg.exec(text)
    },
    async transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
      if (!('transaction' in pg)) throw new Error('nested transactions are not supported by this test runner on PGlite')
      return pg.transaction((tx) => fn(pgliteRunner(tx)))
    },
  }
}

/**
 * Runs `fn` in a transaction as the app role with tenant `orgId` (or no tenant when `null`), set the
 * way the library sets it: transaction-local, in one statement, with its proof.
 */
export async function asAppRole<T>(
  runner: SqlRunner,
  orgId: string | null,
  fn: (tx: SqlRunner) => Promise<T>,
): Promise<T> {
  return runner.transaction(async (tx) => {
    const settings = settingsStatement({
      role: 'callsheet_app',
      organizationId: orgId ?? '',
      actorId: '',
      apiKeyId: '',
      requestId: '',
      ip: '',
      proof: orgId === null ? '' : testProof(orgId),
    })
    await tx.query(settings.text, settings.params)
    return fn(tx)
  })
}

/** The SQLSTATE of a driver error from either engine (or of the library error it became), if it has one. */
export function sqlState(error: unknown): string | undefined {
  // The library's one walk of a cause chain (src/errors/from-driver.ts), not a copy of it.
  const code = isCallsheetDbError(error) ? error.sqlState : driverErrorCode(error)
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

/** Awaits `promise`, expecting it to fail with SQLSTATE `state`; returns the error. */
export async function expectSqlState(promise: Promise<unknown>, state: string): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    const actual = sqlState(error)
    if (actual !== state) {
      throw new Error(`expected SQLSTATE ${state}, got ${actual ?? 'none'}: ${String(error)}`, { cause: error })
    }
    return error
  }
  throw new Error(`expected SQLSTATE ${state}, but the statement succeeded`)
}
