import { PGlite } from '@electric-sql/pglite'
import { describe, expect, it } from 'vitest'
import { isPGlite } from '../src/engine/pglite/is-pglite'

describe('isPGlite', () => {
  it('knows a PGlite by its shape, also one of another copy of the package', () => {
    expect(isPGlite(Object.create(PGlite.prototype))).toBe(true)
    // What `instanceof` misses: the same class loaded twice (the app's CJS build beside our ESM one).
    const fn = (): void => {}
    const otherCopy = { query: fn, exec: fn, transaction: fn, execProtocolRawSync: fn }
    expect(otherCopy instanceof PGlite).toBe(false)
    expect(isPGlite(otherCopy)).toBe(true)
  })

  it('refuses postgres.js options, a URL and a PGliteWorker-like client (no synchronous protocol)', () => {
    const fn = (): void => {}
    expect(isPGlite({ host: 'localhost', port: 5432 })).toBe(false)
    expect(isPGlite('postgres://x')).toBe(false)
    expect(isPGlite(null)).toBe(false)
    expect(isPGlite({ query: fn, exec: fn, transaction: fn })).toBe(false)
  })
})
