import type { z } from 'zod'
import { ValidationError, type ValidationIssue } from '../errors'

const issuesOf = (error: z.ZodError, prefix: readonly (string | number)[] = []): ValidationIssue[] =>
  error.issues.map((i) => ({
    path: [...prefix, ...i.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
    message: i.message,
  }))

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

/**
 * Parses every row first and throws one ValidationError naming every bad row by index; nothing is
 * written when any row is bad.
 * @throws ValidationError
 */
export function validateRows<S extends z.ZodType>(schema: S, rows: unknown, what: string): z.output<S>[] {
  const all = rowsArray(rows, what)
  const validator = new RowValidator(schema, all, what)
  const parsed = validator.take(0, all.length)
  const error = validator.error()
  if (error || !parsed) throw error
  return parsed
}

function summarize(issues: readonly ValidationIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
  return shown.join('; ') + (issues.length > 5 ? `; and ${issues.length - 5} more` : '')
}

const MAX_DEPTH = 64

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
    return value.includes('\u0000')
      ? { path, message: 'must not contain NUL (\\u0000) characters: PostgreSQL cannot store them' }
      : undefined
  }
  if (typeof value !== 'object' || value === null || value instanceof Date) return undefined
  if (depth >= MAX_DEPTH) return { path, message: `must not nest deeper than ${MAX_DEPTH} levels` }
  if (ancestors.has(value)) return { path, message: 'must not contain a cycle' }
  ancestors.add(value)
  try {
    const entries: [string | number, unknown][] = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.entries(value as Record<string, unknown>)
    for (const [key, child] of entries) {
      if (typeof key === 'string' && key.includes('\u0000')) {
        return { path: [...path, key], message: 'keys must not contain NUL (\\u0000) characters' }
      }
      const found = unstorable(child, [...path, key], ancestors, depth + 1)
      if (found) return found
    }
    return undefined
  } finally {
    ancestors.delete(value)
  }
}
