import { z } from 'zod'
import { ValidationError } from '../errors'
import { shown } from './validate'

/** Rows a page holds when the caller names no `limit`. */
const DEFAULT_PAGE_LIMIT = 50

/** The largest page any `findMany` (or audit `history`) serves. */
const MAX_PAGE_LIMIT = 1000

/**
 * A page size from options validated by hand: the default when absent.
 * @throws ValidationError when it is not an integer from 1 to {@link MAX_PAGE_LIMIT}.
 */
export function parsePageLimit(limit: unknown): number {
  const value = limit ?? DEFAULT_PAGE_LIMIT
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_PAGE_LIMIT) {
    throw new ValidationError(`limit must be an integer from 1 to ${MAX_PAGE_LIMIT}, got ${shown(value)}`, [
      { path: ['limit'], message: 'out of range' },
    ])
  }
  return value
}

/** The same rule for options validated with zod. */
export const pageLimitSchema = z.number().int().min(1).max(MAX_PAGE_LIMIT).default(DEFAULT_PAGE_LIMIT)
