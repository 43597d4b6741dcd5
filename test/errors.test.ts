import { describe, expect, it } from 'vitest'
import { CallsheetDbError, InvalidConfigurationError, isCallsheetDbError } from '../src/errors/errors'

describe('errors', () => {
  it('carry a stable code and are recognised without instanceof', () => {
    const error = new InvalidConfigurationError('pool.max must be ≥ 1')
    expect(error).toBeInstanceOf(CallsheetDbError)
    expect(error.code).toBe('INVALID_CONFIGURATION')
    expect(error.name).toBe('InvalidConfigurationError')
    expect(isCallsheetDbError(error)).toBe(true)
    expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
    expect(isCallsheetDbError(error, 'NOT_FOUND')).toBe(false)
    expect(isCallsheetDbError(new Error('x'))).toBe(false)
    expect(isCallsheetDbError({ code: 'NOT_FOUND' })).toBe(false)
    expect(isCallsheetDbError(null)).toBe(false)
  })
})
