import { parseId } from './ids'
import { ValidationError } from '../errors'

/**
 * The one keyset-cursor codec: every `nextCursor` the library issues (tenant repositories,
 * organizations, the audit trail) is `base64url(JSON.stringify({ s, d, v, id }))` — the sort key, the
 * direction, the sort value as PostgreSQL prints it, and the row id that breaks ties.
 */

/** Which way a keyset runs. */
export type SortDirection = 'asc' | 'desc'

/** Where the next page starts: after the row with this sort value and id, in this ordering. */
export interface KeysetPosition {
  /** The sort key the page was ordered by (a repository's sort name, e.g. `createdAt`). */
  readonly sort: string
  readonly direction: SortDirection
  /** The sort column's value as PostgreSQL prints it (`::text`), never a JS Date (which drops microseconds). */
  readonly value: string
  readonly id: string
}

/** The ordering a cursor must belong to, and the SQL type of its sort column. */
export interface KeysetOrdering {
  readonly sort: string
  readonly direction: SortDirection
  /** The sort column's SQL type from the schema (`getSQLType()`), which the value must fit. */
  readonly sqlType: string
}

const MAX_CURSOR_LENGTH = 2000
const MAX_VALUE_LENGTH = 1000

interface Encoded {
  s: string
  d: SortDirection
  v: string
  id: string
}

/** An opaque cursor for the row after which the next page starts. */
export function encodeCursor(position: KeysetPosition): string {
  const encoded: Encoded = { s: position.sort, d: position.direction, v: position.value, id: position.id }
  return Buffer.from(JSON.stringify(encoded)).toString('base64url')
}

/**
 * The position of a cursor from {@link encodeCursor}, checked against the ordering it is used with and
 * the sort column's type in JS, so that a tampered cursor never reaches SQL.
 * @throws ValidationError when it is not one this library issued, or belongs to a different ordering.
 */
export function decodeCursor(cursor: unknown, ordering: KeysetOrdering): KeysetPosition {
  if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw badCursor()
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw badCursor()
  }
  const c = parsed as Partial<Encoded> | null
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.s !== 'string' ||
    (c.d !== 'asc' && c.d !== 'desc') ||
    typeof c.v !== 'string' ||
    c.v.length > MAX_VALUE_LENGTH ||
    typeof c.id !== 'string'
  ) {
    throw badCursor()
  }
  const id = parseId(c.id, 'cursor id')
  if (c.s !== ordering.sort || c.d !== ordering.direction) {
    throw new ValidationError('cursor belongs to a different ordering', [
      { path: ['cursor'], message: 'ordering mismatch' },
    ])
  }
  if (!cursorValueFits(ordering.sqlType, c.v)) throw badCursor()
  return { sort: c.s, direction: c.d, value: c.v, id }
}

/** Checks a cursor's sort value against its column's SQL type. */
function cursorValueFits(type: string, value: string): boolean {
  if (value.includes('\u0000')) return false
  switch (type) {
    case 'timestamp with time zone':
      return isPrintedTimestamptz(value)
    case 'integer':
      return /^-?\d{1,10}$/.test(value) && Math.abs(Number(value)) <= 2_147_483_647
    case 'text':
    case 'citext':
      return true
    default:
      return false
  }
}

/**
 * Whether `value` is a timestamptz as PostgreSQL prints it (`2026-11-25 16:13:25.798123+00`). Cursors
 * carry that text, not a JS Date, so they keep the microseconds a Date would drop.
 */
function isPrintedTimestamptz(value: string): boolean {
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

const badCursor = () =>
  new ValidationError('cursor is not one this library issued', [{ path: ['cursor'], message: 'invalid cursor' }])
