import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  type Cipher,
  type Decipher,
} from 'node:crypto'
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
const READ_CONSISTENCIES: readonly ReadConsistency[] = ['read-your-writes', 'eventual', 'primary']

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

const TOKEN_PREFIX = 'v2.'
const KEY_LABEL = 'callsheet consistency token v2'
// 16 bytes in base64url: 21 free characters, then one that carries 2 bits (the other 4 must be zero,
// or two spellings would decode to the same token).
const TOKEN_PATTERN = /^v2\.[A-Za-z0-9_-]{21}[AQgw]$/
const KIND_POSITION = 0
const KIND_PRIMARY = 1

const invalidToken = () =>
  new ValidationError(
    'consistencyToken is not a token issued by tenant.consistencyToken for this organization and deployment ' +
      '(altered, of another organization, made with another secret, or of the older v1 format): ' +
      'create the client without it',
    [{ path: ['consistencyToken'], message: 'invalid consistency token' }],
  )

/**
 * Makes and reads the consistency tokens of one database: `v2.` and 22 base64url characters, one AES-256
 * block over (WAL position, kind, seven zero bytes) masked with a digest of the organization. AES is used
 * as a pseudorandom permutation of that one block (encode-then-encipher): without the key a forged or
 * altered token decrypts to noise, which has the zero bytes and a valid kind with probability 2^-63; the
 * position is not readable; another organization's mask leaves noise too. Deterministic, so there is no
 * nonce that could repeat across processes sharing the secret, and one block keeps tokens short and
 * encoding at about a microsecond (two of a client's tokens can be told equal, not ordered).
 */
export class TokenCodec {
  readonly #encrypt: Cipher
  readonly #decrypt: Decipher

  /**
   * @param secret the deployment's secret: every process with the same secret reads the others' tokens.
   *   Undefined: a random key, so that tokens only work within this instance.
   */
  constructor(secret: string | undefined) {
    const key = secret === undefined ? randomBytes(32) : createHmac('sha256', secret).update(KEY_LABEL).digest()
    // ECB over exactly one block, padding off: update() answers each block at once and the ciphers are
    // reused for every token (creating one per token costs several times the encryption itself).
    this.#encrypt = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false)
    this.#decrypt = createDecipheriv('aes-256-ecb', key, null).setAutoPadding(false)
  }

  /** The token of a position (or of a client pinned to the primary) for `organizationId`. */
  encode(organizationId: string, position: Lsn | 'primary'): string {
    const block = Buffer.alloc(16)
    if (position === 'primary') block[8] = KIND_PRIMARY
    else block.writeBigUInt64BE(position & 0xffffffffffffffffn, 0)
    xorInto(block, organizationMask(organizationId))
    return TOKEN_PREFIX + this.#encrypt.update(block).toString('base64url')
  }

  /**
   * Reads a token made by {@link encode} for `organizationId` with the same key.
   * @throws ValidationError on anything else: malformed, altered, another organization's or another
   *   key's token, or a `v1.` token.
   */
  decode(organizationId: string, token: unknown): Lsn | 'primary' {
    if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) throw invalidToken()
    const block = this.#decrypt.update(Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url'))
    xorInto(block, organizationMask(organizationId))
    for (let i = 9; i < 16; i++) if (block[i] !== 0) throw invalidToken()
    const position = block.readBigUInt64BE(0)
    if (block[8] === KIND_POSITION) return position
    if (block[8] === KIND_PRIMARY && position === 0n) return 'primary'
    throw invalidToken()
  }
}

/** A public, per-organization mask: binds a token to its organization. */
function organizationMask(organizationId: string): Buffer {
  return createHash('sha256').update(KEY_LABEL).update(organizationId.toLowerCase()).digest().subarray(0, 16)
}

function xorInto(target: Buffer, mask: Buffer): void {
  for (let i = 0; i < 16; i++) target[i] = (target[i] as number) ^ (mask[i] as number)
}

/**
 * What one tenant client (and its `withContext` copies and transactions) knows about its own writes:
 * the WAL position its reads must see. Shared, mutable, only ever moves forward. (Not a "session": in
 * this library that word means only a PostgreSQL session, one server connection's backend.)
 */
export class WriteWatermark {
  #lsn: Lsn | undefined
  /** Set when a write committed but its position could not be read: reads stay on the primary. */
  #pinned = false
  /** The last token handed out, and what it encodes: a client reads its token more often than it writes. */
  #token: { readonly of: Lsn | 'primary'; readonly text: string } | undefined

  constructor(
    private readonly codec: TokenCodec,
    private readonly organizationId: string,
    start?: Lsn | 'primary',
  ) {
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
    const of = this.#pinned ? 'primary' : this.#lsn
    if (of === undefined) return undefined
    if (this.#token?.of !== of) this.#token = { of, text: this.codec.encode(this.organizationId, of) }
    return this.#token.text
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
