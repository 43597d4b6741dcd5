import { z } from 'zod'
import { ValidationError } from '../errors'

/** Any UUID (the library's ids are v7; ids from elsewhere may be any version). */
export const uuidSchema = z.uuid({ version: undefined })

// The pattern uuidSchema checks (zod's own), tested directly on the hot path: parsing through the schema
// cost more Node CPU per findById than the rest of the argument checks (issue 20).
const UUID = z.regexes.uuid(undefined)

/**
 * Checks an id is a UUID before it reaches SQL.
 * @throws ValidationError
 */
export function parseId(id: unknown, what = 'id'): string {
  if (typeof id !== 'string' || !UUID.test(id)) {
    const shown = typeof id === 'string' ? JSON.stringify(id.length > 60 ? `${id.slice(0, 60)}…` : id) : typeof id
    throw new ValidationError(`${what} must be a UUID, got ${shown}`, [{ path: [what], message: 'must be a UUID' }])
  }
  return id.toLowerCase()
}
