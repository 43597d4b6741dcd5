import type { z } from 'zod'
import { ValidationError, type ValidationIssue } from '../errors'

const MAX_MESSAGE = 300

const issuesOf = (error: z.ZodError, prefix: readonly (string | number)[] = []): ValidationIssue[] =>
  error.issues.map((i) => ({
    path: [...prefix, ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
    // zod lists every unrecognized key in one message: 100,000 keys made a ~1 MB message.
    message: i.message.length > MAX_MESSAGE ? `${i.message.slice(0, MAX_MESSAGE)}…` : i.message,
  }))

/**
 * A short, safe description of any value for an error message: never throws (BigInt, null-prototype
 * objects, deep arrays), never long.
 */
export function shown(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value)
    case 'bigint':
      return `${value.toString().slice(0, 30)}n`
    case 'object':
      return value === null ? 'null' : Array.isArray(value) ? `an array of ${value.length}` : 'an object'
    default:
      return `a ${typeof value}`
  }
}

/**
 * Parses `input` with `schema`, or throws a ValidationError listing every issue.
 * @throws ValidationError
 */
export function validate<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const unfit = unstorable(input, [], new Set(), 0)
  if (unfit) throw new ValidationError(`invalid ${what}: ${summarize([unfit])}`, [unfit])
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issues = issuesOf(result.error)
  throw new ValidationError(`invalid ${what}: ${summarize(issues)}`, issues)
}

/**
 * Validates a batch row by row, in ranges, collecting every issue: a batch can be validated chunk by
 * chunk while earlier chunks are already being written, and still report every bad row at the end.
 */
export class RowValidator<S extends z.ZodType> {
  readonly #issues: ValidationIssue[] = []

  constructor(
    private readonly schema: S,
    private readonly rows: readonly unknown[],
    private readonly what: string,
  ) {}

  /** Parses rows `[start, end)`; `undefined` once any row so far was bad. */
  take(start: number, end: number): z.output<S>[] | undefined {
    const parsed: z.output<S>[] = []
    for (let index = start; index < end; index++) {
      const row = this.rows[index]
      const unfit = unstorable(row, [index], new Set(), 0)
      if (unfit) {
        this.#issues.push(unfit)
        continue
      }
      const result = this.schema.safeParse(row)
      if (result.success) parsed.push(result.data)
      else this.#issues.push(...issuesOf(result.error, [index]))
    }
    return this.#issues.length > 0 ? undefined : parsed
  }

  /** The error naming every bad row seen, if any. */
  error(): ValidationError | undefined {
    if (this.#issues.length === 0) return undefined
    const badRows = new Set(this.#issues.map((i) => i.path[0])).size
    return new ValidationError(
      `invalid ${this.what}: ${badRows} of ${this.rows.length} rows are invalid: ${summarize(this.#issues)}`,
      this.#issues,
    )
  }
}

/** `rows` as an array, or a ValidationError. */
export function rowsArray(rows: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(rows))
    throw new ValidationError(`${what} must be an array`, [{ path: [], message: 'must be an array' }])
  return rows
}

function summarize(issues: readonly ValidationIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
  return shown.join('; ') + (issues.length > 5 ? `; and ${issues.length - 5} more` : '')
}

const MAX_DEPTH = 64

/** A UTF-16 surrogate without its other half (String.prototype.isWellFormed is ES2024). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g')

/** `text` with what PostgreSQL text cannot hold (NUL, lone surrogates) replaced by U+FFFD. */
export function storableText(text: string): string {
  return text.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATES, '\uFFFD')
}

/**
 * The first value PostgreSQL cannot take or that would hurt on the way there: text with NUL (which
 * neither text nor jsonb can store), nesting deeper than 64 levels, or a cycle. Recursion is bounded by
 * the depth cap, so hostile input cannot overflow the stack.
 */
function unstorable(
  value: unknown,
  path: (string | number)[],
  ancestors: Set<object>,
  depth: number,
): ValidationIssue | undefined {
  if (typeof value === 'string') {
    if (value.includes('\u0000'))
      return { path, message: 'must not contain NUL (\\u0000) characters: PostgreSQL cannot store them' }
    // A lone UTF-16 surrogate has no UTF-8 form: postgres.js would store U+FFFD instead, PGlite fails.
    if (LONE_SURROGATE.test(value))
      return { path, message: 'must be well-formed Unicode (it contains a lone surrogate)' }
    return undefined
  }
  if (value instanceof Date) {
    const year = value.getUTCFullYear()
    // PostgreSQL reads timestamps of years 1–9999 back from ISO text (a six-digit year is refused).
    return Number.isNaN(year) || year < 1 || year > 9999
      ? { path, message: 'must be a valid date between the years 1 and 9999' }
      : undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  if (depth >= MAX_DEPTH) return { path, message: `must not nest deeper than ${MAX_DEPTH} levels` }
  if (ancestors.has(value)) return { path, message: 'must not contain a cycle' }
  ancestors.add(value)
  try {
    const entries: [string | number, unknown][] = Array.isArray(value)
      ? Array.from(value, (v: unknown, i) => [i, v]) // not map(): it skips the holes of a sparse array
      : Object.entries(value as Record<string, unknown>)
    for (const [key, child] of entries) {
      if (typeof key === 'string' && (key.includes('\u0000') || LONE_SURROGATE.test(key))) {
        // The key itself stays out of the path: it is what cannot be stored (or shown).
        return { path, message: 'keys must not contain NUL (\\u0000) characters or lone surrogates' }
      }
      const found = unstorable(child, [...path, key], ancestors, depth + 1)
      if (found) return found
    }
    return undefined
  } finally {
    ancestors.delete(value)
  }
}

/**
 * Options must be a plain object with known keys: a misspelt option (`delted`) is an error, not
 * silently ignored — as the input schemas are strict.
 * @throws ValidationError
 */
export function onlyKeys(options: unknown, allowed: readonly string[], what: string): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError(`${what} must be an object`, [{ path: [], message: 'not an object' }])
  }
  const unknown = Object.keys(options).filter((k) => !allowed.includes(k))
  if (unknown.length > 0) {
    throw new ValidationError(
      `unknown ${what}: ${unknown.slice(0, 5).map(shown).join(', ')}; allowed: ${allowed.join(', ')}`,
      unknown.slice(0, 20).map((k) => ({ path: [k], message: 'unknown option' })),
    )
  }
}
