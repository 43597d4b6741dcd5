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
    const unfit = unstorable(row, [index], new Set(), 0)
    if (unfit) {
      issues.push(unfit)
      return
    }
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
