import { parseId } from './ids'
import { ValidationError } from '../errors'

/**
 * Whether `value` is a timestamptz as PostgreSQL prints it (`2026-11-25 16:13:25.798123+00`). Cursors
 * carry that text, not a JS Date, so they keep the microseconds a Date would drop.
 */
export function isPrintedTimestamptz(value: string): boolean {
  const m =
    /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?([+-])(\d{2})(?::(\d{2})(?::(\d{2}))?)?$/.exec(value)
  if (!m) return false
  const [, year, month, day, hour, minute, second, , offHours, offMinutes, offSeconds] = m
  const n = (text: string | undefined) => Number(text ?? '0')
  // What PostgreSQL itself accepts back: years 1–9999 (no year 0), a real calendar day, a time of day,
  // and a UTC offset within ±15:59:59. JavaScript's Date.parse accepts more than that.
  if (n(year) < 1 || n(month) < 1 || n(month) > 12 || n(day) < 1) return false
  const daysInMonth = new Date(Date.UTC(2000, n(month), 0)).getUTCDate() // a leap year: Feb 29 allowed here
  if (n(day) > daysInMonth) return false
  if (n(month) === 2 && n(day) === 29 && !isLeapYear(n(year))) return false
  if (n(hour) > 23 || n(minute) > 59 || n(second) > 59) return false
  return n(offHours) <= 15 && n(offMinutes) <= 59 && n(offSeconds) <= 59
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
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
