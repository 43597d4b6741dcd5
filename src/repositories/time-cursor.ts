import { parseId } from '../database/tenant-context'
import { ValidationError } from '../errors'

/**
 * Whether `value` is a timestamptz as PostgreSQL prints it (`2026-11-25 16:13:25.798123+00`). Cursors
 * carry that text, not a JS Date, so they keep the microseconds a Date would drop.
 */
export function isPrintedTimestamptz(value: string): boolean {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)([+-]\d{2}(?::\d{2}){0,2})$/.exec(value)
  if (!m) return false
  const offset = m[3]!.length === 3 ? `${m[3]}:00` : m[3]!.slice(0, 6)
  return !Number.isNaN(Date.parse(`${m[1]}T${m[2]!.slice(0, 12)}${offset}`))
}

/** An opaque cursor for a `(created_at, id)` keyset, from created_at as PostgreSQL printed it. */
export const encodeTimeCursor = (at: string, id: string): string =>
  Buffer.from(JSON.stringify([at, id])).toString('base64url')

/**
 * The `(created_at, id)` of a cursor from {@link encodeTimeCursor}, checked before it reaches SQL.
 * @throws ValidationError on anything else.
 */
export function decodeTimeCursor(cursor: unknown): [string, string] {
  if (typeof cursor === 'string' && cursor.length <= 500) {
    try {
      const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
      if (
        Array.isArray(value) &&
        value.length === 2 &&
        typeof value[0] === 'string' &&
        isPrintedTimestamptz(value[0])
      ) {
        return [value[0], parseId(value[1], 'cursor id')]
      }
    } catch {
      // fall through to the one error every bad cursor gets
    }
  }
  throw new ValidationError('cursor is not one this library issued', [{ path: ['cursor'], message: 'invalid cursor' }])
}
