import { ValidationError } from '../errors'

/**
 * How a tenant client's reads may be served when the database has replicas:
 * - `'read-your-writes'` (default): a replica, once it has replayed the client's last write (by WAL
 *   position); else, after a short wait, the primary. Never older than what this client wrote.
 * - `'eventual'`: any healthy replica within the lag ceiling, without waiting for the client's writes.
 * - `'primary'`: always the primary.
 */
export type ReadConsistency = 'read-your-writes' | 'eventual' | 'primary'

/** Every {@link ReadConsistency}, for validation and docs. */
export const READ_CONSISTENCIES: readonly ReadConsistency[] = ['read-your-writes', 'eventual', 'primary']

const TOKEN_PREFIX = 'v1.'
const LSN_PATTERN = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i

/** A WAL position (`pg_lsn`) as a number: 64 bits, compared exactly. */
export type Lsn = bigint

/** Parses PostgreSQL's `pg_lsn` text (`16/B374D848`). */
export function parseLsn(text: string): Lsn | undefined {
  const m = LSN_PATTERN.exec(text)
  if (!m) return undefined
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`)
}

/** `pg_lsn` text of a position. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}

/** The opaque token form of a position: what apps carry in a cookie or a job payload. */
export function encodeToken(lsn: Lsn): string {
  return `${TOKEN_PREFIX}${formatLsn(lsn)}`
}

/** The token of a client that must read from the primary (a write's position could not be read). */
const PINNED_TOKEN = `${TOKEN_PREFIX}primary`

/**
 * Reads a consistency token: a WAL position, or `'primary'` for a client whose reads must stay there.
 * @throws ValidationError when it is not a token this library issued.
 */
export function decodeToken(token: unknown): Lsn | 'primary' {
  if (token === PINNED_TOKEN) return 'primary'
  const lsn =
    typeof token === 'string' && token.length <= 40 && token.startsWith(TOKEN_PREFIX)
      ? parseLsn(token.slice(TOKEN_PREFIX.length))
      : undefined
  if (lsn === undefined) {
    throw new ValidationError('consistencyToken is not a token issued by tenant.consistencyToken', [
      { path: ['consistencyToken'], message: 'malformed consistency token' },
    ])
  }
  return lsn
}

/**
 * What one tenant client (and its `withContext` copies and transactions) knows about its own writes:
 * the WAL position its reads must see. Shared, mutable, only ever moves forward.
 */
export class ConsistencySession {
  #lsn: Lsn | undefined
  /** Set when a write committed but its position could not be read: reads stay on the primary. */
  #pinned = false

  constructor(start?: Lsn | 'primary') {
    if (start === 'primary') this.#pinned = true
    else this.#lsn = start
  }

  /** The position reads must have replayed, if any. */
  get lsn(): Lsn | undefined {
    return this.#lsn
  }

  /** Whether this client's read-your-writes reads must go to the primary (for good). */
  get pinnedToPrimary(): boolean {
    return this.#pinned
  }

  /**
   * The token to hand to another client or process; undefined before any write (or without replicas).
   * A pinned client's token pins the receiver too.
   */
  get token(): string | undefined {
    if (this.#pinned) return PINNED_TOKEN
    return this.#lsn === undefined ? undefined : encodeToken(this.#lsn)
  }

  /** A write committed at `lsn`: later reads must see it. */
  advance(lsn: Lsn): void {
    if (this.#lsn === undefined || lsn > this.#lsn) this.#lsn = lsn
  }

  /** A write committed at an unknown position: reads stay on the primary (failing closed). */
  pin(): void {
    this.#pinned = true
  }
}

/** @throws ValidationError on an unknown level. */
export function parseConsistency(value: unknown): ReadConsistency {
  if (typeof value === 'string' && (READ_CONSISTENCIES as readonly string[]).includes(value)) {
    return value as ReadConsistency
  }
  throw new ValidationError(`consistency must be one of ${READ_CONSISTENCIES.join(', ')}`, [
    { path: ['consistency'], message: 'unknown consistency' },
  ])
}
