import fc from 'fast-check'

/**
 * Operations of the model-based tests as plain data: fast-check generates and shrinks them, the runner
 * (run.ts) resolves references against the ids known at that point of the sequence.
 */

/** Names whose order is the same under C and linguistic collations (no word is a prefix of another). */
const NAMES = ['Jon Smith', 'Jon Smyth', 'Joan Smythe', 'Bob Stone', 'Cara Mendes', 'Dev Patel'] as const
const ROLES = [null, 'Gaffer', 'Focus Puller', 'Grip'] as const
/** A small pool, with case variants: e-mails are unique per production, case-insensitively, among live rows. */
const EMAILS = [null, 'jon@crew.example', 'JON@crew.example', 'ann@crew.example', 'bob@crew.example'] as const
const SEARCHES = ['Jon Smith', 'jon smth', 'smyth', 'Bob', 'cara mendes', 'Patel', 'zzz'] as const

/** Which row an operation targets: one of the actor's ids, another tenant's, or an id nobody has. */
export interface Ref {
  /**
   * 'self': any id the actor ever issued (live, deleted, purged or rolled back); 'live' / 'deleted': one
   * of the actor's rows in that state (else 'self'); 'other': another tenant's id; 'missing': a random id.
   */
  readonly owner: 'self' | 'live' | 'deleted' | 'other' | 'missing'
  readonly pick: number
  /** For 'missing': the id used (random, so never issued by the database). */
  readonly missingId: string
}

export interface RowSpec {
  readonly production: number
  /** 'foreign' = another tenant's production: the database refuses the row (composite foreign key). */
  readonly bad: 'none' | 'name' | 'email' | 'foreign'
  readonly name: string
  readonly role: string | null | undefined
  readonly email: string | null | undefined
}

interface PatchSpec {
  readonly name?: string
  readonly role?: string | null
  readonly email?: string | null
}

export type WriteOp =
  | { readonly kind: 'create'; readonly row: RowSpec }
  | { readonly kind: 'createMany'; readonly rows: readonly RowSpec[] }
  | { readonly kind: 'update'; readonly ref: Ref; readonly patch: PatchSpec }
  | { readonly kind: 'softDelete' | 'restore' | 'purge'; readonly ref: Ref }
  /** Soft-deletes or restores one of the actor's productions: its contacts go and come back with it. */
  | { readonly kind: 'productionSoftDelete' | 'productionRestore'; readonly production: number }

export type ReadOp =
  | { readonly kind: 'findById'; readonly ref: Ref; readonly deleted: Deleted }
  | { readonly kind: 'findMany'; readonly deleted: Deleted; readonly production: number | undefined }
  | { readonly kind: 'count'; readonly deleted: Deleted; readonly production: number | undefined }
  | { readonly kind: 'search'; readonly text: string; readonly limit: number; readonly production: number | undefined }

export type Deleted = 'exclude' | 'include' | 'only' | undefined

export type Op =
  | (WriteOp & { readonly actor: number })
  | (ReadOp & { readonly actor: number })
  | {
      readonly kind: 'transaction'
      readonly actor: number
      readonly ops: readonly WriteOp[]
      /** false: the callback throws after its writes, and nothing may remain. */
      readonly commit: boolean
    }

export const TENANTS = 3
export const PRODUCTIONS_PER_TENANT = 2

/** Tenant 0 acts most, so that its state gets deep enough for conflicts; the others act too. */
const actor = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: TENANTS - 1 }) },
)
const production = fc.integer({ min: 0, max: PRODUCTIONS_PER_TENANT - 1 })
const deleted = fc.constantFrom<Deleted>(undefined, 'exclude', 'include', 'only')

const ref: fc.Arbitrary<Ref> = fc.record({
  owner: fc.oneof(
    { weight: 4, arbitrary: fc.constant<'self'>('self') },
    { weight: 3, arbitrary: fc.constant<'live'>('live') },
    { weight: 2, arbitrary: fc.constant<'deleted'>('deleted') },
    { weight: 2, arbitrary: fc.constant<'other'>('other') },
    { weight: 1, arbitrary: fc.constant<'missing'>('missing') },
  ),
  pick: fc.nat({ max: 1000 }),
  missingId: fc.uuid({ version: 4 }),
})

const row: fc.Arbitrary<RowSpec> = fc.record({
  production,
  bad: fc.oneof(
    { weight: 20, arbitrary: fc.constant<'none'>('none') },
    { weight: 1, arbitrary: fc.constantFrom<'name' | 'email' | 'foreign'>('name', 'email', 'foreign') },
  ),
  name: fc.constantFrom(...NAMES),
  role: fc.option(fc.constantFrom(...ROLES), { nil: undefined }),
  email: fc.option(fc.constantFrom(...EMAILS), { nil: undefined }),
})

const somePatch: fc.Arbitrary<PatchSpec> = fc
  .record(
    {
      name: fc.oneof(
        { weight: 15, arbitrary: fc.constantFrom<string>(...NAMES) },
        { weight: 1, arbitrary: fc.constant('') },
      ),
      role: fc.constantFrom(...ROLES),
      email: fc.oneof(
        { weight: 15, arbitrary: fc.constantFrom(...EMAILS) },
        { weight: 1, arbitrary: fc.constant('not-an-email') },
      ),
    },
    { requiredKeys: [] },
  )
  .filter((p) => Object.keys(p).length > 0)
// An empty patch is a validation error: rare.
const patch: fc.Arbitrary<PatchSpec> = fc.oneof(
  { weight: 30, arbitrary: somePatch },
  { weight: 1, arbitrary: fc.constant<PatchSpec>({}) },
)

const writeOp: fc.Arbitrary<WriteOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant<'create'>('create'), row }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant<'createMany'>('createMany'),
      rows: fc.array(row, { minLength: 1, maxLength: 5 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant<'update'>('update'), ref, patch }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constantFrom<'softDelete' | 'restore' | 'purge'>('softDelete', 'restore', 'purge'),
      ref,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom<'productionSoftDelete' | 'productionRestore'>('productionSoftDelete', 'productionRestore'),
      production,
    }),
  },
)

const readOp: fc.Arbitrary<ReadOp> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant<'findById'>('findById'), ref, deleted }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant<'findMany'>('findMany'),
      deleted,
      production: fc.option(production, { nil: undefined }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant<'count'>('count'),
      deleted,
      production: fc.option(production, { nil: undefined }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant<'search'>('search'),
      text: fc.constantFrom(...SEARCHES),
      limit: fc.constantFrom(2, 100),
      production: fc.option(production, { nil: undefined }),
    }),
  },
)

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(actor, writeOp).map(([a, o]) => ({ ...o, actor: a })) },
  { weight: 3, arbitrary: fc.tuple(actor, readOp).map(([a, o]) => ({ ...o, actor: a })) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant<'transaction'>('transaction'),
      actor,
      ops: fc.array(writeOp, { minLength: 1, maxLength: 3 }),
      commit: fc.boolean(),
    }),
  },
)

/** A sequence: 3–8 operations on a fresh set of tenants. */
export const sequence = (minLength = 3, maxLength = 8): fc.Arbitrary<Op[]> => fc.array(op, { minLength, maxLength })
