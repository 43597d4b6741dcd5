import { describe, expect, it } from 'vitest'
import { createDatabase, isCallsheetDbError } from '../src'
import { migrate } from '../src/migrations/migrate'
import { formatLsn, parseLsn, TokenCodec } from '../src/routing/consistency'
import { describeEachDatabase } from './harness/engines'

// Consistency tokens (issue 14): opaque (the WAL position is not readable) and authenticated (an altered
// token, another organization's, or one made with another key is refused with a ValidationError).
// Tokens are only issued with replicas (test/replicas.test.ts checks issued ones end to end); here the
// codec itself, and db.tenant's handling of tokens on both engines.

const SECRET = 'tokens-test-secret-0123456789abcdefghij'
const ORG_A = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'
const ORG_B = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c'
const POSITIONS = ['0/0', '0/1', '16/B374D848', '1/0', 'FFFFFFFF/FFFFFFFF'].map((text) => parseLsn(text)!)

const refusal = (fn: () => unknown): unknown => {
  try {
    fn()
    return undefined
  } catch (error) {
    return error
  }
}
const isRefused = (fn: () => unknown) => isCallsheetDbError(refusal(fn), 'VALIDATION_FAILED')

describe('consistency token codec', () => {
  it('round-trips every position (64 bits) and the pinned token, in 25 characters', () => {
    const codec = new TokenCodec(SECRET)
    for (const lsn of POSITIONS) {
      const token = codec.encode(ORG_A, lsn)
      expect(token).toMatch(/^v2\.[\w-]{22}$/)
      expect(codec.decode(ORG_A, token)).toBe(lsn)
      // Another codec of the same secret (another process of the deployment) reads it too.
      expect(new TokenCodec(SECRET).decode(ORG_A, token)).toBe(lsn)
    }
    const pinned = codec.encode(ORG_A, 'primary')
    expect(pinned).toMatch(/^v2\.[\w-]{22}$/)
    expect(codec.decode(ORG_A, pinned)).toBe('primary')
    // An upper-case organization id is the same organization.
    expect(codec.decode(ORG_A.toUpperCase(), codec.encode(ORG_A, POSITIONS[2]!))).toBe(POSITIONS[2])
  })

  it('does not show the position: no pg_lsn text, no hex, no decimal; equal positions of two organizations differ', () => {
    const codec = new TokenCodec(SECRET)
    const lsn = parseLsn('16/B374D848')!
    const token = codec.encode(ORG_A, lsn)
    for (const shown of [
      formatLsn(lsn),
      'B374D848',
      lsn.toString(16),
      lsn.toString(16).padStart(16, '0'),
      lsn.toString(),
    ]) {
      expect(token.toLowerCase()).not.toContain(shown.toLowerCase())
    }
    expect(Buffer.from(token.slice(3), 'base64url').toString('hex')).not.toContain('16b374d848')
    expect(codec.encode(ORG_B, lsn)).not.toBe(token)
    // Consecutive positions give unrelated tokens (no order or distance can be read off them).
    const next = codec.encode(ORG_A, lsn + 1n)
    const sameChars = [...token].filter((c, i) => next[i] === c).length
    expect(sameChars).toBeLessThan(10) // "v2." plus chance
  })

  it('refuses any altered character, another organization, another secret, a random-key instance, v1 tokens', () => {
    const codec = new TokenCodec(SECRET)
    for (const of of [POSITIONS[2]!, 'primary' as const]) {
      const token = codec.encode(ORG_A, of)
      // Every character of the body, changed to every other base64url character.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      for (let i = 3; i < token.length; i++) {
        for (const c of alphabet) {
          if (c === token[i]) continue
          const altered = token.slice(0, i) + c + token.slice(i + 1)
          expect(
            isRefused(() => codec.decode(ORG_A, altered)),
            `${of} ${i} ${c}`,
          ).toBe(true)
        }
      }
      // Every single bit of the decoded block.
      const raw = Buffer.from(token.slice(3), 'base64url')
      for (let bit = 0; bit < 128; bit++) {
        const flipped = Buffer.from(raw)
        flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7))
        expect(isRefused(() => codec.decode(ORG_A, `v2.${flipped.toString('base64url')}`))).toBe(true)
      }
      expect(isRefused(() => codec.decode(ORG_B, token))).toBe(true)
      expect(isRefused(() => new TokenCodec(`${SECRET}x`).decode(ORG_A, token))).toBe(true)
      expect(isRefused(() => new TokenCodec(undefined).decode(ORG_A, token))).toBe(true)
      expect(isRefused(() => codec.decode(ORG_A, token.slice(0, -1)))).toBe(true)
      expect(isRefused(() => codec.decode(ORG_A, `${token}A`))).toBe(true)
      expect(isRefused(() => codec.decode(ORG_A, ` ${token}`))).toBe(true)
    }
    // Without a secret, a token only works within the instance that made it.
    const local = new TokenCodec(undefined)
    const token = local.encode(ORG_A, POSITIONS[2]!)
    expect(local.decode(ORG_A, token)).toBe(POSITIONS[2])
    expect(isRefused(() => new TokenCodec(undefined).decode(ORG_A, token))).toBe(true)
    for (const old of ['v1.primary', 'v1.16/B374D848', 'v1.0/0'])
      expect(isRefused(() => codec.decode(ORG_A, old))).toBe(true)
  })

  it('random tokens are refused (no forgery by guessing)', () => {
    const codec = new TokenCodec(SECRET)
    let accepted = 0
    for (let i = 0; i < 20_000; i++) {
      const body = Buffer.alloc(16)
      for (let j = 0; j < 16; j++) body[j] = Math.floor(Math.random() * 256)
      if (!isRefused(() => codec.decode(ORG_A, `v2.${body.toString('base64url')}`))) accepted++
    }
    expect(accepted).toBe(0)
  })

  it('the error says what to do and does not say which check failed', () => {
    const codec = new TokenCodec(SECRET)
    const messages = new Set(
      [
        () => codec.decode(ORG_B, codec.encode(ORG_A, 5n)),
        () => new TokenCodec(undefined).decode(ORG_A, codec.encode(ORG_A, 5n)),
        () => codec.decode(ORG_A, 'v1.0/5'),
        () => codec.decode(ORG_A, 42),
      ].map((fn) => (refusal(fn) as Error).message),
    )
    expect(messages.size).toBe(1)
    expect([...messages][0]).toMatch(/consistencyToken.*without it/)
  })
})

describeEachDatabase(
  'db.tenant with a consistency token',
  (ctx) => {
    it("accepts its organization's token, refuses it for another organization and from another secret", async () => {
      const { db, engine } = ctx()
      // On a server the owner installs the deployment's secret (PGlite's engine installs its own).
      if (engine.ownerUrl !== undefined) await migrate(engine.ownerUrl, { secret: SECRET })
      const a = await db.organizations.create({ name: 'tok a', slug: `tok-a-${Date.now().toString(36)}` })
      const b = await db.organizations.create({ name: 'tok b', slug: `tok-b-${Date.now().toString(36)}` })
      const codec = new TokenCodec(SECRET)
      const token = codec.encode(a.id, parseLsn('0/0')!)
      const carried = db.tenant(a.id, {}, { consistencyToken: token })
      // The token is carried on (and the client works: no replica, every read on the primary).
      expect(carried.consistencyToken).toBe(token)
      expect(carried.withConsistency('eventual').consistencyToken).toBe(token)
      expect(await carried.productions.count()).toBe(0)
      const pinned = codec.encode(a.id, 'primary')
      expect(db.tenant(a.id, {}, { consistencyToken: pinned }).consistencyToken).toBe(pinned)
      expect(isRefused(() => db.tenant(b.id, {}, { consistencyToken: token }))).toBe(true)
      expect(isRefused(() => db.tenant(a.id, {}, { consistencyToken: `${token.slice(0, -2)}AA` }))).toBe(true)
      const primary = engine.pglite ?? engine.url!
      const other = createDatabase({ primary, secret: `${SECRET}-other` })
      const unkeyed = createDatabase({ primary })
      try {
        expect(isRefused(() => other.tenant(a.id, {}, { consistencyToken: token }))).toBe(true)
        if (process.env.CALLSHEET_SECRET !== SECRET) {
          expect(isRefused(() => unkeyed.tenant(a.id, {}, { consistencyToken: token }))).toBe(true)
        }
      } finally {
        await other.close()
        await unkeyed.close()
      }
    })
  },
  { secret: SECRET },
)
