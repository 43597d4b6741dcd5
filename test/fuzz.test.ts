import fc from 'fast-check'
import { beforeAll, expect, it } from 'vitest'
import { AUDIT_ACTIONS, AUDITED_ENTITY_TYPES } from '../src/schema/audit-logs'
import { PRODUCTION_STATUSES } from '../src/schema/productions'
import { USER_ROLES } from '../src/schema/users'
import type { TenantClient } from '../src/client/tenant-client'
import { describeEachDatabase } from './harness/engines'
import { fillTenant, type FilledTenant } from './support/fixtures'
import {
  anyValue,
  hostileString,
  hugeStringArb,
  idArb,
  inputArb,
  jsonBombArb,
  nearUuid,
  pageCursorArb,
  pick,
  randomUuid,
  textField,
  timeCursorArb,
  token,
  wrongType,
} from './support/fuzz/arbitraries'
import {
  changedTables,
  describeValue,
  fingerprint,
  foreignRows,
  problemOf,
  settle,
  type Fingerprint,
  type TableName,
} from './support/fuzz/property'

// Property, for every public method that takes input: the call resolves with a well-formed result or
// fails with a library error (isCallsheetDbError) — never a raw driver error, a TypeError, a crash or
// a hang — and a failed call writes nothing (every table's rows, audit_logs included, hashed as the
// owner before and after). Returned rows always belong to the calling tenant.
//
// FUZZ_RUNS=n (default 120) runs per method group and engine; FUZZ_SEED=n replays a run; FUZZ_SURVEY=1
// keeps going after a failure and lists every distinct problem at the end; FUZZ_LENIENT=1 accepts
// DATABASE_ERROR & co. (input that reached PostgreSQL unchecked) as long as it is a library error.

const RUNS = Number(process.env.FUZZ_RUNS ?? 120)
// A fixed seed in npm test (reproducible); `npm run fuzz` explores with a fresh one each time.
const SEED =
  process.env.FUZZ_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED ?? 1228128478)
const SURVEY = process.env.FUZZ_SURVEY === '1'
// A hang bound per call, not a speed check: generous for a loaded machine.
const CALL_TIMEOUT_MS = 60_000
console.log(`[fuzz] seed ${SEED}, ${RUNS} runs per group (replay: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS})`)

/** fast-check's rendering (keeps holes, BigInts, __proto__ keys), bounded; JSON when that overflows. */
const show = (value: unknown): string => {
  try {
    return fc.stringify(value).slice(0, 1000)
  } catch {
    return describeValue(value)
  }
}

const ENTITIES = ['users', 'departments', 'productions', 'contacts', 'uploads', 'apiKeys'] as const
type Entity = (typeof ENTITIES)[number]

const SORTS: Record<Entity, readonly string[]> = {
  users: ['createdAt', 'updatedAt', 'name', 'email'],
  departments: ['sortOrder', 'name', 'code', 'createdAt'],
  productions: ['createdAt', 'updatedAt', 'title', 'status'],
  contacts: ['createdAt', 'updatedAt', 'name'],
  uploads: ['createdAt', 'updatedAt', 'fileName'],
  apiKeys: ['createdAt', 'name'],
}
const FILTER_KEYS: Record<Entity, readonly string[]> = {
  users: ['role', 'isActive', 'email'],
  departments: ['code', 'name'],
  productions: ['status', 'code', 'createdBy'],
  contacts: ['productionId', 'departmentId', 'uploadId', 'email', 'role'],
  uploads: ['productionId', 'status', 'uploadedBy'],
  apiKeys: ['name', 'createdBy'],
}

interface Pools {
  readonly own: Record<Entity, string[]>
  readonly other: string[]
  readonly cursors: string[]
}

describeEachDatabase('fuzz: hostile input gets a library error or a valid result, and no partial write', (ctx) => {
  let a: FilledTenant
  let b: FilledTenant
  /** Rows the fuzzed calls reference but never target, so valid input stays valid. */
  let stable: { productionId: string; departmentId: string; uploadId: string; userId: string }
  let pools: Pools
  let last: Fingerprint
  const T = (): TenantClient => a.tenant
  const known = (entity: Entity) => () => [...pools.own[entity], ...pools.other]
  const anyKnown = () => [...ENTITIES.flatMap((e) => pools.own[e]), ...pools.other]

  beforeAll(async () => {
    const db = ctx().db
    a = await fillTenant(db, 'fuzz')
    b = await fillTenant(db, 'fuzz-other')
    const user = await T().users.create({ email: 'stable@fuzz.example', name: 'Stable' })
    const department = await T().departments.create({ name: 'Stable', code: 'STABLE' })
    const production = await T().productions.create({ title: 'Stable', code: 'STABLE' })
    const upload = await T().uploads.create({
      productionId: production.id,
      fileName: 'stable.pdf',
      mimeType: 'application/pdf',
      sizeBytes: 1,
      checksumSha256: 'c'.repeat(64),
      storageKey: 'stable',
    })
    stable = { productionId: production.id, departmentId: department.id, uploadId: upload.id, userId: user.id }
    pools = {
      own: {
        users: [a.user.id],
        departments: [a.department.id],
        productions: [a.production.id],
        contacts: [a.contact.id],
        uploads: [a.upload.id],
        apiKeys: [a.apiKey.id],
      },
      other: [b.org.id, b.user.id, b.department.id, b.production.id, b.upload.id, b.contact.id, b.apiKey.id],
      cursors: [],
    }
    last = await fingerprint(ctx().engine.admin)
  })

  interface Check<I> {
    /** What a resolved value must look like; returns a problem or undefined. */
    readonly valid?: (value: unknown, input: I) => string | undefined
    /** Tables a failed call may write to by design (e.g. ingestExtraction marks the upload failed). */
    readonly mayWriteOnFailure?: (error: unknown, input: I) => readonly TableName[] | 'any'
    readonly sync?: boolean
    /** After a resolved call: remember new ids, cursors. */
    readonly onResolved?: (value: unknown, input: I) => void | Promise<void>
  }

  /** Runs the property over `arb` with `call`, returning once RUNS inputs passed (or throwing). */
  async function fuzz<I>(group: string, arb: fc.Arbitrary<I>, call: (input: I) => unknown, check: Check<I> = {}) {
    const org = a.org.id
    const findings = new Map<string, string>()
    const tally = new Map<string, number>()
    const property = fc.asyncProperty(arb, async (input) => {
      const outcome = await settle(() => call(input), CALL_TIMEOUT_MS)
      const label =
        outcome.kind === 'resolved' || outcome.kind === 'timeout'
          ? outcome.kind
          : String(
              (outcome.error as { code?: unknown } | undefined)?.code ?? (outcome.error as Error | undefined)?.name,
            )
      tally.set(label, (tally.get(label) ?? 0) + 1)
      let problem = problemOf(outcome, check.sync)
      if (problem === undefined && outcome.kind === 'resolved') {
        problem = check.valid?.(outcome.value, input)
        const foreign = group.startsWith('db.') ? [] : foreignRows(outcome.value, org)
        if (problem === undefined && foreign.length > 0)
          problem = `ISOLATION: returned another tenant's row: ${describeValue(foreign[0])}`
        if (problem === undefined) await check.onResolved?.(outcome.value, input)
      }
      const now = await fingerprint(ctx().engine.admin)
      if (outcome.kind !== 'resolved') {
        const error = outcome.kind === 'timeout' ? undefined : outcome.error
        const allowed = check.mayWriteOnFailure?.(error, input) ?? []
        const changed = allowed === 'any' ? [] : changedTables(last, now, allowed)
        if (problem === undefined && changed.length > 0)
          problem = `partial write: a failed call (${describeValue(error)}) changed ${changed.join(', ')}`
      }
      last = now
      if (problem !== undefined) {
        const kind = `${group}: ${problem.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<uuid>').slice(0, 120)}`
        if (!findings.has(kind)) findings.set(kind, `- ${problem}\n    input: ${show(input)}`)
        if (!SURVEY) throw new Error(`${problem} (FUZZ_SEED=${SEED})`)
      }
    })
    const details = await fc.check(property, { numRuns: RUNS, seed: SEED })
    const outcomes = [...tally].map(([k, n]) => `${k} ${n}`).join(', ')
    console.log(`[fuzz ${ctx().engine.name}] ${group}: ${outcomes}`)
    if (findings.size > 0)
      console.log(`[fuzz ${ctx().engine.name}] ${group} findings:\n${[...findings.values()].join('\n')}`)
    if (SURVEY) expect([...findings.values()], `${group} findings`).toEqual([])
    if (details.failed) {
      const cause =
        details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
      throw new Error(
        `${group}: property failed after ${details.numRuns} runs (shrunk ${details.numShrinks} times)\n` +
          `  ${cause}\n  counterexample: ${show(details.counterexample)}\n` +
          `  replay: FUZZ_SEED=${details.seed} (fast-check path ${details.counterexamplePath ?? '?'})`,
      )
    }
  }

  // ---- valid-looking input per entity, to be mutated ----------------------------------------------

  const email = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(token, token).map(([u, d]) => `${u}@${d}.example`) },
    { weight: 1, arbitrary: hostileString(40).map((s) => `${s}@x.example`) },
    { weight: 1, arbitrary: hostileString(40) },
  )
  const code = fc.oneof(
    { weight: 4, arbitrary: token.map((t) => t.toUpperCase()) },
    { weight: 1, arbitrary: hostileString(20) },
  )
  const isoDate = fc.oneof(
    fc
      .date({ min: new Date('1900-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
      .map((d) => d.toISOString().slice(0, 10)),
    fc.constantFrom('2025-02-29', '2024-02-30', '0000-01-01', '2025-1-1', '99999-01-01', '2025-01-01T00:00:00Z'),
  )
  const metadata = fc.oneof(
    { weight: 3, arbitrary: fc.dictionary(hostileString(12), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }) },
    { weight: 1, arbitrary: jsonBombArb },
  )
  const base: Record<Entity, () => fc.Arbitrary<Record<string, unknown>>> = {
    users: () =>
      fc.record(
        { email, name: textField(200), role: fc.constantFrom(...USER_ROLES) },
        { requiredKeys: ['email', 'name'] },
      ),
    departments: () =>
      fc.record(
        { name: textField(200), code, sortOrder: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
        { requiredKeys: ['name', 'code'] },
      ),
    productions: () =>
      fc.record(
        {
          title: textField(300),
          code,
          status: fc.constantFrom(...PRODUCTION_STATUSES),
          startDate: isoDate,
          endDate: isoDate,
          createdBy: fc.constant(stable.userId),
        },
        { requiredKeys: ['title'] },
      ),
    contacts: () =>
      fc.record(
        {
          productionId: fc.constant(stable.productionId),
          name: textField(200),
          email,
          phone: textField(50),
          role: textField(200),
          notes: textField(10_000),
          extractionConfidence: fc.double({ min: 0, max: 1, noNaN: true }),
          metadata,
          departmentId: fc.constant(stable.departmentId),
          uploadId: fc.constant(stable.uploadId),
        },
        { requiredKeys: ['productionId', 'name'] },
      ),
    uploads: () =>
      fc.record(
        {
          productionId: fc.constant(stable.productionId),
          fileName: textField(255),
          mimeType: fc.constantFrom('application/pdf', 'image/png', "text/plain; charset='x'"),
          sizeBytes: fc.oneof(fc.nat(), fc.constantFrom(2 ** 31, 2 ** 53 - 1, Number.MAX_SAFE_INTEGER + 2)),
          checksumSha256: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
          storageKey: textField(1024),
          extractionResult: metadata,
          uploadedBy: fc.constant(stable.userId),
        },
        { requiredKeys: ['productionId', 'fileName', 'mimeType', 'sizeBytes', 'checksumSha256', 'storageKey'] },
      ),
    apiKeys: () =>
      fc.record(
        {
          name: textField(200),
          scopes: fc.array(textField(100), { maxLength: 4 }),
          expiresAt: fc.oneof(fc.date(), fc.constant(new Date(Date.now() + 86_400_000))),
          createdBy: fc.constant(stable.userId),
        },
        { requiredKeys: ['name'] },
      ),
  }

  const isRow = (v: unknown): string | undefined =>
    typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string'
      ? undefined
      : `not a row: ${describeValue(v)}`
  const deletedOpt = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.record({ deleted: fc.constantFrom('exclude', 'include', 'only') }) },
    { weight: 2, arbitrary: fc.record({ deleted: anyValue }) },
    { weight: 1, arbitrary: anyValue },
  )

  /** One operation of an entity repository, drawn per run. */
  const repoOp = (entity: Entity) => {
    const id = idArb(known(entity))
    const where = fc.oneof(
      fc.dictionary(
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...FILTER_KEYS[entity]) },
          { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'organizationId', 'deletedAt') },
        ),
        fc.oneof(
          idArb(anyKnown),
          fc.array(idArb(anyKnown), { maxLength: 4 }),
          fc.constantFrom(...USER_ROLES, ...PRODUCTION_STATUSES, 'pending', true, false, null),
          anyValue,
        ),
        { maxKeys: 3 },
      ),
      anyValue,
    )
    const findManyOpts = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record(
          {
            where,
            orderBy: fc.oneof(
              { weight: 4, arbitrary: fc.constantFrom(...SORTS[entity]) },
              { weight: 1, arbitrary: anyValue },
            ),
            direction: fc.oneof(
              { weight: 4, arbitrary: fc.constantFrom('asc', 'desc') },
              { weight: 1, arbitrary: anyValue },
            ),
            limit: fc.oneof(
              { weight: 4, arbitrary: fc.integer({ min: 1, max: 1000 }) },
              { weight: 1, arbitrary: anyValue },
            ),
            cursor: pageCursorArb(SORTS[entity], known(entity), () => pools.cursors),
            deleted: fc.oneof(fc.constantFrom('exclude', 'include', 'only'), anyValue),
          },
          { requiredKeys: [] },
        ),
      },
      { weight: 1, arbitrary: anyValue },
    )
    const createManyOpts = fc.oneof(
      fc.constant(undefined),
      fc.record(
        {
          onConflict: fc.oneof(fc.constantFrom('error', 'skip', 'update'), anyValue),
          chunkSize: fc.oneof(fc.integer({ min: 1, max: 50 }), anyValue),
          returning: fc.oneof(fc.constantFrom('rows', 'ids', 'count'), anyValue),
          atomic: fc.oneof(fc.boolean(), anyValue),
        },
        { requiredKeys: [] },
      ),
      anyValue,
    )
    const input = inputArb(base[entity]())
    const createMany = fc.record({
      m: fc.constant('createMany' as const),
      rows: fc.oneof(
        { weight: 5, arbitrary: fc.array(input, { maxLength: 12 }) },
        { weight: 1, arbitrary: fc.array(base[entity](), { minLength: 100, maxLength: 300 }) },
        { weight: 1, arbitrary: anyValue },
      ),
      options: createManyOpts,
    })
    return fc.oneof(
      fc.record({ m: fc.constant('create' as const), input }),
      // API keys are issued one at a time: no createMany to call.
      ...(entity === 'apiKeys' ? [] : [createMany]),
      fc.record({ m: fc.constant('update' as const), id, patch: fc.oneof(inputArb(base[entity]()), fc.constant({})) }),
      fc.record({ m: fc.constantFrom('findById' as const, 'getById' as const), id, options: deletedOpt }),
      fc.record({ m: fc.constantFrom('findMany' as const, 'count' as const), options: findManyOpts }),
      fc.record({
        // API keys have no softDelete or restore (revoked instead): not even a method to call.
        m: fc.constantFrom<'softDelete' | 'restore' | 'purge'>(
          ...(entity === 'apiKeys' ? (['purge'] as const) : (['softDelete', 'restore', 'purge'] as const)),
        ),
        id,
      }),
    )
  }
  type Op = ReturnType<typeof repoOp> extends fc.Arbitrary<infer O> ? O : never

  const remember = (entity: Entity, value: unknown) => {
    const ids = Array.isArray(value) ? value : [value]
    for (const v of ids) {
      const rowId = typeof v === 'string' ? v : (v as { id?: unknown } | undefined)?.id
      if (typeof rowId === 'string' && !pools.own[entity].includes(rowId)) pools.own[entity].push(rowId)
    }
  }

  it.each(ENTITIES)(
    '%s: every repository method it has (create, createMany, update, findById, getById, findMany, count, softDelete, restore, purge)',
    async (entity) => {
      const repo = () => T()[entity] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
      await fuzz<Op>(
        entity,
        repoOp(entity),
        (op) => {
          const r = repo()
          switch (op.m) {
            case 'create':
              return r.create!(op.input)
            case 'createMany':
              return r.createMany!(op.rows, op.options)
            case 'update':
              return r.update!(op.id, op.patch)
            case 'findById':
            case 'getById':
              return r[op.m]!(op.id, op.options)
            case 'findMany':
            case 'count':
              return r[op.m]!(op.options)
            default:
              return r[op.m]!(op.id)
          }
        },
        {
          valid: (v, op) => {
            switch (op.m) {
              case 'findById':
                return v === undefined ? undefined : isRow(v)
              case 'count':
                return Number.isInteger(v) && (v as number) >= 0 ? undefined : `count is ${describeValue(v)}`
              case 'findMany': {
                const page = v as { rows?: unknown; nextCursor?: unknown }
                return Array.isArray(page?.rows) && (page.nextCursor === null || typeof page.nextCursor === 'string')
                  ? page.rows.map(isRow).find(Boolean)
                  : `not a page: ${describeValue(v)}`
              }
              case 'createMany':
                return typeof v === 'number' || Array.isArray(v) ? undefined : `createMany returned ${describeValue(v)}`
              case 'purge':
                return v === undefined ? undefined : `purge returned ${describeValue(v)}`
              default:
                return isRow(v)
            }
          },
          onResolved: (v, op) => {
            if (op.m === 'create' || op.m === 'createMany') remember(entity, v)
            if (op.m === 'findMany') {
              const next = (v as { nextCursor: string | null }).nextCursor
              if (next !== null && pools.cursors.length < 50) pools.cursors.push(next)
            }
          },
          // A non-atomic batch commits chunk by chunk by design; it says so with PartialBatchError.
          mayWriteOnFailure: (error, op) =>
            op.m === 'createMany' && (error as { code?: unknown })?.code === 'PARTIAL_BATCH' ? 'any' : [],
        },
      )
    },
    300_000,
  )

  it('contacts.search', async () => {
    const options = fc.oneof(
      fc.constant(undefined),
      fc.record(
        {
          productionId: idArb(known('productions')),
          limit: fc.oneof(fc.integer({ min: 1, max: 100 }), anyValue),
          threshold: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), anyValue),
          text: anyValue,
          __proto__: anyValue,
        },
        { requiredKeys: [] },
      ),
      anyValue,
    )
    await fuzz(
      'contacts.search',
      fc.tuple(
        fc.oneof(
          { weight: 4, arbitrary: hostileString() },
          { weight: 1, arbitrary: anyValue },
          { weight: 1, arbitrary: hugeStringArb },
        ),
        options,
      ),
      ([text, opts]) => T().contacts.search(text as string, opts as never),
      {
        valid: (v) =>
          Array.isArray(v) &&
          v.every((h: { score?: unknown }) => typeof h.score === 'number' && h.score >= 0 && h.score <= 1)
            ? undefined
            : `not hits: ${describeValue(v)}`,
      },
    )
  }, 300_000)

  it('uploads.ingestExtraction', async () => {
    const contact = fc.record(
      {
        name: textField(200),
        email,
        phone: textField(50),
        role: textField(200),
        department: fc.oneof(textField(200), code),
        confidence: fc.record({ name: fc.double({ min: 0, max: 1, noNaN: true }) }, { requiredKeys: [] }),
      },
      { requiredKeys: ['name'] },
    )
    const result = fc.record(
      {
        contacts: fc.oneof(fc.array(fc.oneof(contact, inputArb(contact)), { maxLength: 8 }), anyValue),
        confidence: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), anyValue),
        extractor: fc.oneof(fc.record({ name: textField(100), version: textField(50) }), anyValue),
        warnings: fc.array(hostileString(), { maxLength: 3 }),
      },
      { requiredKeys: ['contacts', 'confidence'] },
    )
    // Each run gets a fresh pending upload half the time (a completed upload re-ingests idempotently).
    const target = fc.oneof(fc.constant('fresh' as const), idArb(known('uploads')))
    await fuzz(
      'uploads.ingestExtraction',
      fc.tuple(
        target,
        fc.oneof(
          { weight: 4, arbitrary: result },
          { weight: 1, arbitrary: inputArb(result as never) },
          { weight: 1, arbitrary: jsonBombArb },
        ),
      ),
      async ([id, r]) => {
        let uploadId = id
        if (id === 'fresh') {
          const u = await T().uploads.create({
            productionId: stable.productionId,
            fileName: 'f.pdf',
            mimeType: 'application/pdf',
            sizeBytes: 1,
            checksumSha256: 'd'.repeat(64),
            storageKey: 'k',
          })
          remember('uploads', u)
          last = await fingerprint(ctx().engine.admin)
          uploadId = u.id
        }
        return T().uploads.ingestExtraction(uploadId as string, r)
      },
      {
        valid: (v) => {
          const report = v as Record<string, unknown>
          return typeof report?.contactsCreated === 'number' && isRow(report.upload) === undefined
            ? undefined
            : `not a report: ${describeValue(v)}`
        },
        // A malformed result marks the upload failed (one update, audited) by design, and nothing else.
        mayWriteOnFailure: (error) =>
          (error as { code?: unknown })?.code === 'VALIDATION_FAILED' ? ['uploads', 'audit_logs'] : [],
      },
    )
  }, 300_000)

  it('auditLogs.history and auditLogs.findMany', async () => {
    const date = fc.oneof(
      fc.date(),
      fc.constant(new Date(Number.NaN)),
      fc.constant(new Date(0)),
      fc.constant(new Date(8.64e15)),
      fc.constant(new Date(-8.64e15)),
      anyValue,
    )
    const page = fc.record(
      { limit: fc.oneof(fc.integer({ min: 1, max: 1000 }), anyValue), cursor: timeCursorArb(anyKnown) },
      { requiredKeys: [] },
    )
    const op = fc.oneof(
      fc.record({
        m: fc.constant('history' as const),
        entityType: fc.oneof(fc.constantFrom(...AUDITED_ENTITY_TYPES), anyValue),
        id: idArb(anyKnown),
        options: fc.oneof(page, anyValue, fc.constant(undefined)),
      }),
      fc.record({
        m: fc.constant('list' as const),
        options: fc.oneof(
          {
            weight: 4,
            arbitrary: fc.record(
              {
                from: date,
                to: date,
                actorId: idArb(anyKnown),
                apiKeyId: idArb(anyKnown),
                entityType: fc.oneof(fc.constantFrom(...AUDITED_ENTITY_TYPES), anyValue),
                action: fc.oneof(fc.constantFrom(...AUDIT_ACTIONS), anyValue),
                limit: fc.oneof(fc.integer({ min: 1, max: 1000 }), anyValue),
                cursor: timeCursorArb(anyKnown),
              },
              { requiredKeys: ['from'] },
            ),
          },
          { weight: 1, arbitrary: anyValue },
        ),
      }),
    )
    await fuzz(
      'auditLogs',
      op,
      (o) =>
        o.m === 'history'
          ? T().auditLogs.history(o.entityType as never, o.id as string, o.options as never)
          : T().auditLogs.findMany(o.options as never),
      {
        valid: (v) => (Array.isArray((v as { rows?: unknown })?.rows) ? undefined : `not a page: ${describeValue(v)}`),
      },
    )
  }, 300_000)

  it('db.organizations.*', async () => {
    const orgIds: string[] = []
    const db = () => ctx().db
    const slug = fc.oneof({ weight: 4, arbitrary: token }, { weight: 1, arbitrary: hostileString(63) })
    const orgInput = fc.record({ name: textField(200), slug, settings: metadata }, { requiredKeys: ['name', 'slug'] })
    const id = idArb(() => [...orgIds, b.org.id])
    const op = fc.oneof(
      fc.record({ m: fc.constant('create' as const), input: inputArb(orgInput) }),
      fc.record({ m: fc.constant('update' as const), id, patch: inputArb(orgInput) }),
      fc.record({ m: fc.constantFrom('findById' as const, 'getById' as const), id, options: deletedOpt }),
      fc.record({ m: fc.constantFrom('softDelete' as const, 'restore' as const), id }),
      fc.record({
        m: fc.constant('list' as const),
        options: fc.oneof(
          fc.record(
            {
              limit: fc.oneof(fc.integer({ min: 1, max: 1000 }), anyValue),
              cursor: fc.oneof(
                timeCursorArb(() => orgIds),
                pageCursorArb(
                  ['createdAt', 'name', 'slug'],
                  () => orgIds,
                  () => [],
                ),
              ),
              deleted: fc.oneof(fc.constantFrom('exclude', 'include', 'only'), anyValue),
            },
            { requiredKeys: [] },
          ),
          anyValue,
        ),
      }),
    )
    await fuzz(
      'db.organizations',
      op,
      (o) => {
        // Never the fuzzing tenant's own organization: soft-deleting it would end the other groups.
        if ('id' in o && (o.id === a.org.id || o.id === b.org.id) && o.m !== 'findById' && o.m !== 'getById')
          return Promise.resolve(undefined)
        switch (o.m) {
          case 'create':
            return db().organizations.create(o.input as never)
          case 'update':
            return db().organizations.update(o.id as string, o.patch as never)
          case 'findById':
          case 'getById':
            return db().organizations[o.m](o.id as string, o.options as never)
          case 'list':
            return db().organizations.findMany(o.options as never)
          default:
            return db().organizations[o.m](o.id as string)
        }
      },
      {
        onResolved: (v, o) => {
          if (o.m === 'create') orgIds.push((v as { id: string }).id)
        },
      },
    )
  }, 300_000)

  it('db.apiKeys.verify', async () => {
    const keys = [a.apiKey.plaintext, b.apiKey.plaintext]
    const revoked = await T().apiKeys.create({ name: 'revoked' })
    await T().apiKeys.revoke(revoked.id)
    const expired = await T().apiKeys.create({ name: 'expired', expiresAt: new Date(Date.now() + 50) })
    keys.push(revoked.plaintext, expired.plaintext)
    last = await fingerprint(ctx().engine.admin)
    const mutated = fc
      .tuple(fc.nat(), fc.nat(), fc.constantFrom('A', 'a', '0', '_', '-', ' ', '\u0000', "'", 'é', ''))
      .map(([i, j, ch]) => {
        const k = pick(keys, i)!
        const at = j % k.length
        return k.slice(0, at) + ch + k.slice(at + 1)
      })
    const plaintext = fc.oneof(
      fc.nat().map((i) => pick(keys, i)!),
      mutated,
      fc.nat().map((i) => pick(keys, i)!.toUpperCase()),
      fc.nat().map((i) => ` ${pick(keys, i)!}\n`),
      hostileString().map((s) => `csk_${s}`),
      hostileString(),
      hugeStringArb,
      anyValue,
    )
    await fuzz('db.apiKeys.verify', plaintext, (p) => ctx().db.apiKeys.verify(p as string), {
      valid: (v) => {
        if (v === null) return undefined
        const k = v as { organizationId?: unknown; apiKeyId?: unknown; scopes?: unknown }
        return typeof k.organizationId === 'string' && typeof k.apiKeyId === 'string' && Array.isArray(k.scopes)
          ? undefined
          : `not a verified key: ${describeValue(v)}`
      },
    })
  }, 300_000)

  it('db.tenant(orgId, context, options) and tenant.withContext', async () => {
    const context = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record(
          {
            actorId: idArb(anyKnown),
            apiKeyId: idArb(anyKnown),
            ip: fc.oneof(
              fc.ipV4(),
              fc.ipV6(),
              fc.ipV4Extended(),
              hostileString(40),
              fc.constantFrom('::1', '::ffff:1.2.3.4', 'fe80::1%eth0', '1.2.3.4/24'),
            ),
            requestId: fc.oneof(
              fc.string({ minLength: 1, maxLength: 200 }),
              hostileString(),
              fc.constant('x'.repeat(201)),
            ),
          },
          { requiredKeys: [] },
        ),
      },
      { weight: 1, arbitrary: anyValue },
    )
    const token1 = fc.oneof(
      hostileString(),
      fc.constantFrom('0/0', '0/16B3748', 'FFFFFFFF/FFFFFFFF', '1/0/0', '-1/1'),
      anyValue,
    )
    const options = fc.oneof(
      fc.constant(undefined),
      fc.record(
        {
          consistency: fc.oneof(fc.constantFrom('read-your-writes', 'eventual', 'primary'), anyValue),
          consistencyToken: token1,
        },
        { requiredKeys: [] },
      ),
      anyValue,
    )
    const orgId = fc.oneof(
      { weight: 3, arbitrary: fc.constant(a.org.id) },
      { weight: 1, arbitrary: nearUuid(a.org.id) },
      { weight: 1, arbitrary: randomUuid },
      { weight: 1, arbitrary: wrongType },
    )
    // A client that is handed out must work: one read and one audited write with that context.
    const use = async (client: unknown): Promise<unknown> => {
      if (!(client && typeof client === 'object' && 'departments' in client)) return client
      const t = client as TenantClient
      await t.departments.count()
      if (t.organizationId === a.org.id)
        return t.departments.create({ name: 'ctx', code: `CTX-${Math.random().toString(36).slice(2, 10)}` })
      return t
    }
    await fuzz('db.tenant', fc.tuple(orgId, context, options), async ([o, c, opts]) => {
      let client: unknown
      try {
        client = ctx().db.tenant(o as string, c as never, opts as never)
      } catch (error) {
        // db.tenant refuses synchronously; the property wants a library error either way.
        return Promise.reject(error)
      }
      return use(client)
    })
    await fuzz('tenant.withContext', context, async (c) => {
      let client: unknown
      try {
        client = T().withContext(c as never)
      } catch (error) {
        return Promise.reject(error)
      }
      return use(client)
    })
  }, 300_000)
})
