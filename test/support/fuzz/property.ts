/**
 * The fuzz property: a call resolves with a well-formed result or fails with a library error — never a
 * raw driver error, a TypeError, a crash or a hang — and a failed call writes nothing.
 */
import { isCallsheetDbError, type CallsheetDbErrorCode } from '../../../src/errors'

export type Outcome =
  | { readonly kind: 'resolved'; readonly value: unknown; readonly ms: number }
  | { readonly kind: 'rejected'; readonly error: unknown; readonly ms: number }
  | { readonly kind: 'threw'; readonly error: unknown; readonly ms: number }
  | { readonly kind: 'timeout'; readonly ms: number }

/** Runs `call`, telling a synchronous throw from a rejection, and gives up after `timeoutMs`. */
export async function settle(call: () => unknown, timeoutMs: number): Promise<Outcome> {
  const started = performance.now()
  const ms = () => Math.round(performance.now() - started)
  let returned: unknown
  try {
    returned = call()
  } catch (error) {
    return { kind: 'threw', error, ms: ms() }
  }
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout', ms: ms() }), timeoutMs)
  })
  try {
    return await Promise.race([
      Promise.resolve(returned).then(
        (value): Outcome => ({ kind: 'resolved', value, ms: ms() }),
        (error: unknown): Outcome => ({ kind: 'rejected', error, ms: ms() }),
      ),
      timeout,
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Library error codes that say hostile input reached PostgreSQL unchecked (or hurt the connection):
 * a library error, but not the refusal the API documents. Fail on them unless FUZZ_LENIENT=1.
 */
const SUSPICIOUS_CODES: ReadonlySet<CallsheetDbErrorCode> = new Set([
  'DATABASE_ERROR',
  'CONNECTION_ERROR',
  'TIMEOUT',
  'ACQUIRE_TIMEOUT',
  'PERMISSION_DENIED',
  'NOT_NULL_VIOLATION',
  'SERIALIZATION_FAILURE',
  'INVALID_CONFIGURATION',
  'MIGRATION_FAILED',
])
const LENIENT = process.env.FUZZ_LENIENT === '1'
/** An error message longer than this echoes input back (a 5 MB log line is an incident of its own). */
const MAX_MESSAGE = 64 * 1024

export const describeValue = (value: unknown): string => {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code
    const cause = (value as { cause?: unknown }).cause
    return `${value.name}${code === undefined ? '' : ` (${String(code)})`}: ${value.message.slice(0, 300)}${
      cause instanceof Error ? ` [cause: ${cause.name}: ${cause.message.slice(0, 200)}]` : ''
    }`
  }
  try {
    const seen = new WeakSet()
    const s = JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return `${v}n`
      if (typeof v === 'string' && v.length > 80) return `${v.slice(0, 40)}…(${v.length} chars)`
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[cycle]'
        seen.add(v)
      }
      return v
    })
    return (s ?? String(value)).slice(0, 400)
  } catch (error) {
    return `${String(value).slice(0, 200)} (not printable: ${error instanceof Error ? error.message : String(error)})`
  }
}

/**
 * What is wrong with an outcome, or undefined. `sync` marks APIs that return synchronously
 * (`db.tenant`, `withContext`): a throw is their way to refuse; a Promise-returning method must reject.
 */
export function problemOf(outcome: Outcome, sync = false): string | undefined {
  if (outcome.kind === 'timeout') return `hung for ${outcome.ms} ms`
  if (outcome.kind === 'resolved') return undefined
  if (outcome.kind === 'threw' && !sync)
    return `threw synchronously instead of rejecting: ${describeValue(outcome.error)}`
  const { error } = outcome
  if (!isCallsheetDbError(error)) {
    const at =
      error instanceof Error
        ? (error.stack ?? '')
            .split('\n')
            .slice(1, 4)
            .map((l) => l.trim())
            .join(' < ')
        : ''
    return `not a library error: ${describeValue(error)}${at ? ` — ${at}` : ''}`
  }
  if (typeof error.message !== 'string' || error.message.length > MAX_MESSAGE)
    return `error message of ${String(error.message?.length)} characters (echoes input?)`
  if (!LENIENT && SUSPICIOUS_CODES.has(error.code))
    return `input reached the database unchecked: ${describeValue(error)}`
  return undefined
}

/** Every object in `value` (depth-bounded) with an `organizationId` other than `org`. */
export function foreignRows(value: unknown, org: string, depth = 0): unknown[] {
  if (depth > 4 || typeof value !== 'object' || value === null) return []
  if (Array.isArray(value)) return value.flatMap((v) => foreignRows(v, org, depth + 1))
  const own = 'organizationId' in value && (value as { organizationId: unknown }).organizationId !== org ? [value] : []
  return [...own, ...Object.values(value).flatMap((v) => foreignRows(v, org, depth + 1))]
}

export { changedTables, fingerprint, type Fingerprint, type TableName } from '../fingerprint'
