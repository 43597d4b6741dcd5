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
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issues = issuesOf(result.error)
  throw new ValidationError(`invalid ${what}: ${summarize(issues)}`, issues)
}

/**
 * Parses every row first and throws one ValidationError naming every bad row by index; nothing is
 * written when any row is bad.
 * @throws ValidationError
 */
export function validateRows<S extends z.ZodType>(schema: S, rows: unknown, what: string): z.output<S>[] {
  if (!Array.isArray(rows))
    throw new ValidationError(`${what} must be an array`, [{ path: [], message: 'must be an array' }])
  const parsed: z.output<S>[] = []
  const issues: ValidationIssue[] = []
  rows.forEach((row, index) => {
    const result = schema.safeParse(row)
    if (result.success) parsed.push(result.data)
    else issues.push(...issuesOf(result.error, [index]))
  })
  if (issues.length > 0) {
    const badRows = new Set(issues.map((i) => i.path[0])).size
    throw new ValidationError(
      `invalid ${what}: ${badRows} of ${rows.length} rows are invalid: ${summarize(issues)}`,
      issues,
    )
  }
  return parsed
}

function summarize(issues: readonly ValidationIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
  return shown.join('; ') + (issues.length > 5 ? `; and ${issues.length - 5} more` : '')
}

/** Text that PostgreSQL cannot store (NUL) is refused before SQL with a clear message. */
export function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000')
  if (Array.isArray(value)) return value.some(hasNul)
  if (typeof value === 'object' && value !== null)
    return Object.entries(value).some(([k, v]) => k.includes('\u0000') || hasNul(v))
  return false
}
