/**
 * fast-check arbitraries of hostile input for the fuzz suite: strings that break naive SQL or text
 * handling, values of the wrong type, near-UUIDs, JSON bombs, prototype-pollution keys and tampered
 * cursors. Huge values are built once and shared, and drawn rarely.
 */
import fc from 'fast-check'

const MB = 1024 * 1024
const huge = new Map<number, string>()
/** A string of `mb` megabytes, built once per size. */
const hugeString = (mb: number): string => {
  let s = huge.get(mb)
  if (s === undefined) {
    s = 'x'.repeat(mb * MB - 11) + "'; drop --"
    huge.set(mb, s)
  }
  return s
}

/** Fixed strings each known to have broken some system somewhere. */
const NASTY_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t\n\r',
  "'",
  '"',
  "''",
  '\\',
  "\\'",
  "'; drop table contacts; --",
  "1' or '1'='1",
  "Robert'); DROP TABLE users;--",
  '$1',
  '$$',
  '$$; select pg_sleep(10); $$',
  '%',
  '_',
  '%_%',
  'null',
  'NULL',
  'undefined',
  'true',
  '0',
  '-1',
  '1e309',
  'NaN',
  '{}',
  '[]',
  '{"__proto__":{"polluted":1}}',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '\u0000',
  'a\u0000b',
  '\u0000\u0000\u0000',
  '\ud800',
  '\udfff',
  'a\ud83db',
  '\udc00\ud800',
  '😀',
  '👨‍👩‍👧‍👦',
  '🏳️‍🌈',
  '\u202eevil\u202c',
  'مرحبا بالعالم',
  'שלום',
  '\u200b\u200c\u200d\ufeff',
  'Z̴̡̪̫͎̥̝̦̭̠͇̯̪̩̟͎̮̤̦̫̞̩̖͇̪̠͎̥̻̯̮̺̫̲̞̞̩̣̥̱̜̥̭͙̙̓̊̈̎̍̅̌̅̈́̀̔̈́͊̏̊̚̕͘͝a̷l̷g̷o̷',
  'ǅ ß ﬃ İ ı',
  'Ⅻ ① ½',
  '\u00a0\u2028\u2029',
  '\x1b[31mred\x1b[0m',
  '\r\n\r\n',
  '<script>alert(1)</script>',
  '${7*7}',
  '{{7*7}}',
  '../../etc/passwd',
  'csk_',
  'jon@crew.example',
  'a@b',
  '@',
  'x'.repeat(201),
  'x'.repeat(10_001),
]

/** One UTF-16 code unit, any of them: lone surrogates and NUL included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n))
/** Characters biased towards the troublesome ones. */
const nastyChar = fc.oneof(
  { weight: 4, arbitrary: codeUnit },
  {
    weight: 2,
    arbitrary: fc.constantFrom('\u0000', '\ud800', '\udfff', "'", '"', '\\', '%', '_', '\u202e', '😀', ';'),
  },
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
)

/** A hostile string: a known-nasty one, random code units (lone surrogates, NUL), or graphemes. */
export const hostileString = (maxLength = 64): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
    { weight: 3, arbitrary: fc.string({ unit: nastyChar, maxLength }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...NASTY_STRINGS), fc.string({ maxLength: 8 }))
        .map(([a, b]) => `${b}${a}${b}`),
    },
  )

/** A 1–5 MB string (shared instances). Use sparingly. */
export const hugeStringArb: fc.Arbitrary<string> = fc.constantFrom(1, 2, 5).map(hugeString)

function deepObject(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true }
  for (let i = 0; i < depth; i++) value = { a: value }
  return value
}
function deepArray(depth: number): unknown[] {
  let value: unknown[] = [1]
  for (let i = 0; i < depth; i++) value = [value]
  return value
}
const cyclic = (): Record<string, unknown> => {
  const o: Record<string, unknown> = { a: 1 }
  o.self = o
  return o
}
/** An object with the key `__proto__` as an own property (as JSON.parse makes it). */
const withOwnProto = (inner: unknown): Record<string, unknown> => {
  const o: Record<string, unknown> = {}
  Object.defineProperty(o, '__proto__', { value: inner, enumerable: true, configurable: true, writable: true })
  return o
}

let bombs: readonly unknown[] | undefined
/** JSON bombs: 10k-deep nesting, wide objects, cycles, prototype keys (built once). */
function jsonBombs(): readonly unknown[] {
  bombs ??= [
    deepObject(10_000),
    deepArray(10_000),
    deepObject(33),
    deepObject(31),
    Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i])),
    Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`k${i}`, 'v'.repeat(60)])),
    { blob: 'x'.repeat(64 * 1024) },
    { blob: 'x'.repeat(64 * 1024 - 20) },
    cyclic(),
    JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}'),
    withOwnProto({ isAdmin: true }),
    { constructor: { prototype: { polluted: true } } },
    { 'a\u0000b': 1 },
    { a: 'b\u0000' },
    { '\ud800': '\udfff' },
    { s: 'lone \ud83d surrogate' },
    { n: Number.NaN, i: Number.POSITIVE_INFINITY, z: -0 },
    { big: 10n },
    { d: new Date(Number.NaN) },
    { u: undefined, f: () => 1, s: Symbol('s') },
    { m: new Map([[1, 2]]), set: new Set([1]) },
    Object.create(null) as object,
  ]
  return bombs
}
export const jsonBombArb: fc.Arbitrary<unknown> = fc.integer({ min: 0, max: 21 }).map((i) => jsonBombs()[i])

/** Values of the wrong type for almost any parameter. */
export const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    undefined,
    0,
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    2 ** 53,
    Number.MAX_VALUE,
    true,
    false,
    10n,
    -(2n ** 70n),
    Symbol('fuzz'),
    Symbol.for('@callsheet/db/error'),
    () => 'x',
    async () => 'x',
    new Date(),
    new Date(Number.NaN),
    new Date(8.64e15),
    /re/g,
    [],
    [[]],
    [null],
    {},
    Object.create(null),
    new Map(),
    new Set(),
    Buffer.from('buffer'),
    new Uint8Array(4),
    new Error('not ours'),
    Promise.resolve('later'),
    new String('boxed'),
    new Number(1),
    { toString: () => '0190a5d2-7c3e-7b4a-9f1e-2d3c4b5a6978' },
    { valueOf: () => 1 },
    { then: (resolve: (v: unknown) => void) => resolve(1) },
  ),
  fc.integer(),
  fc.double(),
  fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 3 }),
)

/** Anything at all: hostile strings, wrong types, JSON bombs, fast-check's own `anything`. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString() },
  { weight: 4, arbitrary: wrongType },
  { weight: 1, arbitrary: jsonBombArb },
  {
    weight: 2,
    arbitrary: fc.anything({
      maxDepth: 3,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withTypedArray: true,
      withSparseArray: true,
      withBoxedValues: true,
    }),
  },
)

const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n })
/** A well-formed random UUID (v4-shaped) — valid, but almost certainly no row's. */
export const randomUuid: fc.Arbitrary<string> = fc
  .tuple(hex(8), hex(4), hex(3), hex(3), hex(12), fc.constantFrom('8', '9', 'a', 'b'))
  .map(([a, b, c, d, e, v]) => `${a}-${b}-4${c}-${v}${d}-${e}`)

/** Strings that are almost a UUID, derived from a real one. */
export const nearUuid = (uuid: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom(
      uuid.toUpperCase(),
      ` ${uuid}`,
      `${uuid} `,
      `${uuid}\n`,
      `{${uuid}}`,
      `urn:uuid:${uuid}`,
      uuid.replaceAll('-', ''),
      uuid.slice(0, -1),
      `${uuid}0`,
      `${uuid}\u0000`,
      `${uuid}'; drop table contacts; --`,
      `'${uuid}'`,
      uuid.replace(/-/g, '\u2010'),
      '00000000-0000-0000-0000-000000000000',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    ),
    fc
      .tuple(fc.nat(uuid.length - 1), fc.constantFrom('g', 'z', '-', ' ', "'", '\u0000', 'é', '0', 'F'))
      .map(([i, ch]) => uuid.slice(0, i) + ch + uuid.slice(i + 1)),
  )

/**
 * An id argument: a known row's id (own, other tenant's), a random UUID, a near-UUID, a hostile
 * string or a wrong type.
 */
export const idArb = (known: () => readonly string[]): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.nat().map((i) => pick(known(), i)) },
    { weight: 2, arbitrary: randomUuid },
    {
      weight: 2,
      arbitrary: fc.nat().chain((i) => nearUuid(pick(known(), i) ?? '0190a5d2-7c3e-7b4a-9f1e-2d3c4b5a6978')),
    },
    { weight: 2, arbitrary: hostileString(40) },
    { weight: 2, arbitrary: wrongType },
    { weight: 1, arbitrary: jsonBombArb },
  )

export function pick<T>(values: readonly T[], i: number): T | undefined {
  return values.length === 0 ? undefined : values[i % values.length]
}

/** A printed-timestamptz-looking string, often one JavaScript's Date accepts but PostgreSQL refuses. */
const timestampish: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '2026-01-01 00:00:00+00',
    '2026-02-30 12:00:00+00',
    '2026-02-31 12:00:00.123456+00',
    '2025-04-31 00:00:00+00',
    '0000-01-01 00:00:00+00',
    '9999-12-31 23:59:59.999999+00',
    '2026-01-01 24:00:00+00',
    '2026-01-01 00:00:00+23:59',
    '2026-01-01 00:00:00+15:59:59',
    '2026-01-01 00:00:00-12:00:99',
    '2026-00-01 00:00:00+00',
    '2026-13-01 00:00:00+00',
    '2026-01-01 00:00:60+00',
  ),
  fc
    .tuple(
      fc.integer({ min: 0, max: 9999 }),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 61 }),
      fc.integer({ min: 0, max: 61 }),
      fc.option(fc.integer({ min: 0, max: 999_999 })),
      fc.integer({ min: -24, max: 24 }),
      fc.option(fc.integer({ min: 0, max: 99 })),
    )
    .map(([y, mo, d, h, mi, s, us, oh, om]) => {
      const p = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0')
      return `${p(y, 4)}-${p(mo)}-${p(d)} ${p(h)}:${p(mi)}:${p(s)}${us === null ? '' : `.${p(us, 6)}`}${oh < 0 ? '-' : '+'}${p(oh)}${om === null ? '' : `:${p(om)}`}`
    }),
)

const b64 = (value: unknown): string => {
  try {
    const json = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
    return Buffer.from(json ?? '').toString('base64url')
  } catch {
    return 'not-json' // too deep to serialise: still a cursor the library must refuse
  }
}

/**
 * A findMany cursor: tampered ones in the library's own format (`{ s, d, v, id }` as base64url JSON),
 * mutations of a real one, or garbage.
 */
export const pageCursorArb = (
  sortKeys: readonly string[],
  known: () => readonly string[],
  real: () => readonly string[],
): fc.Arbitrary<unknown> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .record({
          s: fc.oneof(fc.constantFrom(...sortKeys), hostileString(10)),
          d: fc.oneof(fc.constantFrom('asc', 'desc'), anyValue),
          v: fc.oneof(timestampish, hostileString(), fc.integer().map(String), fc.constantFrom('2147483648', '-0')),
          id: fc.oneof(
            fc.nat().map((i) => pick(known(), i) ?? ''),
            randomUuid,
            hostileString(40),
          ),
        })
        .map(b64),
    },
    { weight: 1, arbitrary: anyValue.map(b64) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.nat(), fc.nat(), fc.constantFrom('A', '_', '-', '=', '+', '/', '.')).map(([i, j, ch]) => {
        const c = pick(real(), i)
        if (c === undefined) return ch
        const at = j % c.length
        return c.slice(0, at) + ch + c.slice(at + 1)
      }),
    },
    { weight: 2, arbitrary: hostileString(80) },
    { weight: 1, arbitrary: wrongType },
  )

/**
 * A cursor of a `createdAt` keyset (organizations ascending, the audit trail descending): tampered ones in
 * the library's one cursor format (`{ s, d, v, id }` as base64url JSON), or garbage.
 */
export const timeCursorArb = (known: () => readonly string[]): fc.Arbitrary<unknown> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .record({
          s: fc.oneof({ weight: 4, arbitrary: fc.constant('createdAt') }, { weight: 1, arbitrary: hostileString(20) }),
          d: fc.constantFrom('asc', 'desc'),
          v: timestampish,
          id: fc.oneof(
            fc.nat().map((i) => pick(known(), i) ?? ''),
            randomUuid,
            hostileString(40),
          ),
        })
        .map(b64),
    },
    { weight: 1, arbitrary: fc.array(anyValue, { maxLength: 3 }).map(b64) },
    { weight: 2, arbitrary: hostileString(80) },
    { weight: 1, arbitrary: wrongType },
  )

/**
 * An object built from `base` (valid values) where some fields are replaced by hostile ones, some
 * dropped, and some foreign keys added (`__proto__` as an own key, `organizationId`, `id`, …).
 */
function mutatedRecord(
  base: fc.Arbitrary<Record<string, unknown>>,
  fieldValue: fc.Arbitrary<unknown> = anyValue,
  extraKeys: readonly string[] = [],
): fc.Arbitrary<Record<string, unknown>> {
  const foreign = [
    '__proto__',
    'constructor',
    'toString',
    'organizationId',
    'id',
    'createdAt',
    'deletedAt',
    ...extraKeys,
  ]
  return fc
    .tuple(
      base,
      fc.array(fc.tuple(fc.nat(), fieldValue), { maxLength: 3 }),
      fc.array(fc.nat(), { maxLength: 2 }),
      fc.array(fc.tuple(fc.constantFrom(...foreign), fieldValue), { maxLength: 2 }),
    )
    .map(([b, replace, drop, add]) => {
      const out: Record<string, unknown> = { ...b }
      const keys = Object.keys(b)
      for (const [i, v] of replace) {
        const k = pick(keys, i)
        if (k !== undefined) out[k] = v
      }
      for (const i of drop) {
        const k = pick(keys, i)
        if (k !== undefined) delete out[k]
      }
      for (const [k, v] of add) {
        Object.defineProperty(out, k, { value: v, enumerable: true, configurable: true, writable: true })
      }
      return out
    })
}

/** Either valid-looking input (often) or a mutated one (usually) or pure garbage (sometimes). */
export function inputArb(base: fc.Arbitrary<Record<string, unknown>>, extraKeys: readonly string[] = []) {
  return fc.oneof(
    { weight: 3, arbitrary: base as fc.Arbitrary<unknown> },
    { weight: 6, arbitrary: mutatedRecord(base, anyValue, extraKeys) },
    { weight: 2, arbitrary: anyValue },
    { weight: 1, arbitrary: base.map((b) => ({ ...b, [Object.keys(b)[0] ?? 'name']: hugeString(1) })) },
  )
}

/** Hostile-but-plausible text for a required text field: mostly valid-length unicode. */
export const textField = (max: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: Math.min(max, 40) }) },
    { weight: 2, arbitrary: hostileString(Math.min(max, 40)) },
  )

/** A unique-ish token for natural keys (codes, e-mails, slugs). */
export const token: fc.Arbitrary<string> = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'),
  minLength: 6,
  maxLength: 12,
})
