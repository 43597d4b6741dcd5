import { describe, expect, it } from 'vitest'
import {
  CallsheetDbError,
  InvalidConfigurationError,
  NotFoundError,
  driverErrorCode,
  isCallsheetDbError,
  mapDatabaseError,
  toLibraryError,
} from '../src/errors'

// The shapes the drivers throw: drizzle ≥ 0.44 wraps the client's error in a DrizzleQueryError.
const postgresError = (code: string, fields: Record<string, string> = {}): Error =>
  Object.assign(new Error(`server said ${code}`), { name: 'PostgresError', code, ...fields })
const drizzleWrapped = (cause: unknown): Error =>
  Object.assign(new Error('Failed query: select 1', { cause }), { name: 'DrizzleQueryError' })

describe('errors', () => {
  it('carry a stable code and are recognised without instanceof', () => {
    const error = new InvalidConfigurationError('pool.max must be ≥ 1')
    expect(error).toBeInstanceOf(CallsheetDbError)
    expect(error.code).toBe('INVALID_CONFIGURATION')
    expect(error.name).toBe('InvalidConfigurationError')
    expect(error.sqlState).toBeUndefined()
    expect(isCallsheetDbError(error)).toBe(true)
    expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
    expect(isCallsheetDbError(error, 'NOT_FOUND')).toBe(false)
    expect(isCallsheetDbError(new Error('x'))).toBe(false)
    expect(isCallsheetDbError({ code: 'NOT_FOUND' })).toBe(false)
    expect(isCallsheetDbError(null)).toBe(false)
  })

  it('map a driver error found down the cause chain, with its SQLSTATE on every mapped error', () => {
    const unique = mapDatabaseError(
      drizzleWrapped(postgresError('23505', { constraint_name: 'users_email_live_key', table_name: 'users' })),
    )
    expect(isCallsheetDbError(unique, 'UNIQUE_VIOLATION') && unique.constraint).toBe('users_email_live_key')
    expect(unique.sqlState).toBe('23505')
    expect(unique.message).toBe('server said 23505')
    for (const [state, code] of [
      ['57014', 'TIMEOUT'],
      ['40P01', 'SERIALIZATION_FAILURE'],
      ['57P01', 'CONNECTION_ERROR'],
      ['CS002', 'TENANT_UNAVAILABLE'],
      ['ZR001', 'DATABASE_ERROR'],
    ] as const) {
      const mapped = mapDatabaseError(drizzleWrapped(postgresError(state)))
      expect([mapped.code, mapped.sqlState]).toEqual([code, state])
    }
    // Citus: a shard replaced by a concurrent split/move under the statement is retryable; other XX000 are not.
    const stale = mapDatabaseError(
      drizzleWrapped(postgresError('XX000', { message: 'could not find valid entry for shard 102040' })),
    )
    expect([stale.code, stale.sqlState, stale.retryable]).toEqual(['DATABASE_ERROR', 'XX000', true])
    for (const message of ['cache lookup failed for relation 1', 'could not find valid entry for shard 1 of x']) {
      const internal = mapDatabaseError(drizzleWrapped(postgresError('XX000', { message })))
      expect([internal.code, internal.retryable]).toEqual(['DATABASE_ERROR', false])
    }
    expect(
      mapDatabaseError(postgresError('42P01', { message: 'could not find valid entry for shard 1' })).retryable,
    ).toBe(false)
    const lost = mapDatabaseError(drizzleWrapped(Object.assign(new Error('reset'), { code: 'ECONNRESET' })))
    expect([lost.code, lost.sqlState, lost.retryable]).toEqual(['CONNECTION_ERROR', undefined, true])
    expect(driverErrorCode(drizzleWrapped(postgresError('57P03')))).toBe('57P03')
    expect(driverErrorCode(new Error('no code'))).toBeUndefined()
  })

  it("return the library's own error from below drizzle, and pass an app's error through", () => {
    const own = new NotFoundError('contact', 'c1')
    expect(toLibraryError(drizzleWrapped(own))).toBe(own)
    expect(mapDatabaseError(drizzleWrapped(own))).toBe(own)
    const appError = new Error('the app threw this')
    expect(toLibraryError(appError)).toBe(appError)
    expect(mapDatabaseError(appError).code).toBe('DATABASE_ERROR')
    // A driver's wrapper without any code is still the database's error.
    expect((toLibraryError(drizzleWrapped(new Error('?'))) as CallsheetDbError).code).toBe('DATABASE_ERROR')
  })
})
