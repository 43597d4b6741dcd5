import { PGlite } from '@electric-sql/pglite'
import { beforeAll, describe, expect, it } from 'vitest'
import { createDatabase } from '../src/client/create-database'
import type { DatabaseConfig } from '../src/client/config'
import { createTenantClient } from '../src/client/default-database'
import { isCallsheetDbError, type ValidationError } from '../src/errors'
import type { ExtractionResult } from '../src/schema/uploads'
import type { TenantClient } from '../src/client/tenant-client'
import { describeEachDatabase } from './harness/engines'
import { fillTenant, type FilledTenant } from './support/fixtures'
import { fingerprint as tableFingerprint, type Fingerprint } from './support/fingerprint'

// Bad input is refused with a typed ValidationError before any SQL is sent, and nothing is written.
// "Before any SQL" is checked with the library's own query log (every Drizzle query goes through
// `logger.debug('query', …)`); "nothing written" with a fingerprint of every table taken as the owner.

/** Every `logger.debug` call of the database under test, in order. */
const logged: { message: string; fields: Record<string, unknown> | undefined }[] = []
const recordingLogger = {
  debug: (message: string, fields?: Record<string, unknown>) => {
    logged.push({ message, fields })
  },
}

const MB = 'x'.repeat(1024 * 1024)
const UUID = '0190a5d2-7c3e-7b4a-9f1e-2d3c4b5a6978'

/** Values that are not UUIDs, as a caller (or an attacker through a caller) might pass them. */
const BAD_IDS: readonly (readonly [string, unknown])[] = [
  ["'1'", '1'],
  ["''", ''],
  ['an SQL fragment', "1' or '1'='1"],
  ['a UUID with a g', '00000000-0000-0000-0000-00000000000g'],
  ['a UUID with a trailing space', `${UUID} `],
  ['a UUID in braces', `{${UUID}}`],
  ['a number', 42],
  ['null', null],
  ['undefined', undefined],
  ['an object', { id: UUID }],
  ['a 1 MB string', MB],
]

type Settled =
  | { readonly mode: 'threw synchronously'; readonly error: unknown }
  | { readonly mode: 'rejected'; readonly error: unknown }
  | { readonly mode: 'resolved'; readonly value: unknown }

const show = (value: unknown): string => {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code
    return `${value.name}${code === undefined ? '' : ` (${String(code)})`}: ${value.message.slice(0, 300)}`
  }
  try {
    return (JSON.stringify(value) ?? String(value)).slice(0, 300)
  } catch {
    return String(value)
  }
}

/** Runs `call` and reports how it settled, telling a synchronous throw from a rejection. */
async function settle(call: () => unknown): Promise<Settled> {
  let returned: unknown
  try {
    returned = call()
  } catch (error) {
    return { mode: 'threw synchronously', error }
  }
  try {
    return { mode: 'resolved', value: await returned }
  } catch (error) {
    return { mode: 'rejected', error }
  }
}

/**
 * What is wrong with how `call` was refused: it must fail with VALIDATION_FAILED and at least one
 * issue, the way its API fails (a Promise-returning method rejects; `db.tenant` throws), and send no
 * query. Returns the problems (empty when refused properly) and the error.
 */
async function refusal(
  what: string,
  call: () => unknown,
  how: 'rejects' | 'throws',
): Promise<{ problems: string[]; error: unknown }> {
  logged.length = 0
  const settled = await settle(call)
  const queries = logged.filter((l) => l.message === 'query').map((l) => String(l.fields?.sql).slice(0, 200))
  const problems: string[] = []
  if (settled.mode === 'resolved') {
    problems.push(`${what}: was accepted (resolved with ${show(settled.value)})`)
  } else {
    const { error } = settled
    if (!isCallsheetDbError(error, 'VALIDATION_FAILED')) {
      problems.push(`${what}: expected a ValidationError (VALIDATION_FAILED), got ${show(error)}`)
    } else if (!((error as ValidationError).issues?.length > 0)) {
      problems.push(`${what}: ValidationError without issues`)
    }
    const expectedMode = how === 'rejects' ? 'rejected' : 'threw synchronously'
    if (settled.mode !== expectedMode) {
      problems.push(`${what}: ${settled.mode}, but it should have ${how === 'rejects' ? 'rejected' : 'thrown'}`)
    }
  }
  if (queries.length > 0) problems.push(`${what}: sent ${queries.length} query(ies) first: ${queries.join(' ;; ')}`)
  return { problems, error: settled.mode === 'resolved' ? undefined : settled.error }
}

interface Case {
  readonly name: string
  readonly call: () => unknown
}

describeEachDatabase(
  'bad input is refused before any SQL',
  (ctx) => {
    let a: FilledTenant
    let b: FilledTenant
    /** A's upload in `processing`, for completeExtraction. */
    let processingUploadId: string
    const A = (): TenantClient => a.tenant

    async function fingerprint(): Promise<Fingerprint> {
      return tableFingerprint(ctx().engine.admin)
    }

    /** Asserts every call is refused properly, and that nothing at all was written meanwhile. */
    async function expectRefused(cases: readonly Case[], how: 'rejects' | 'throws' = 'rejects'): Promise<unknown[]> {
      const before = await fingerprint()
      const problems: string[] = []
      const errors: unknown[] = []
      for (const c of cases) {
        const result = await refusal(c.name, c.call, how)
        problems.push(...result.problems)
        errors.push(result.error)
      }
      expect(problems).toEqual([])
      expect(await fingerprint(), 'a refused call wrote something').toEqual(before)
      return errors
    }

    beforeAll(async () => {
      const db = ctx().db
      a = await fillTenant(db, 'bad-input')
      b = await fillTenant(db, 'other')
      await a.tenant.contacts.create({ productionId: a.production.id, name: 'Ann Other' })
      await a.tenant.departments.create({ name: 'Grip', code: 'GRIP', sortOrder: 2 })
      const upload = await a.tenant.uploads.create({
        productionId: a.production.id,
        fileName: 'day-02.pdf',
        mimeType: 'application/pdf',
        sizeBytes: 1,
        checksumSha256: 'b'.repeat(64),
        storageKey: 'uploads/day-02.pdf',
      })
      processingUploadId = (await a.tenant.uploads.markProcessing(upload.id)).id
    })

    it('the query recorder sees the queries of an accepted call (so "no query logged" means something)', async () => {
      logged.length = 0
      await A().contacts.findById(a.contact.id)
      expect(logged.filter((l) => l.message === 'query').length).toBeGreaterThan(0)
      logged.length = 0
      await ctx().db.organizations.findById(a.org.id)
      expect(logged.filter((l) => l.message === 'query').length).toBeGreaterThan(0)
    })

    // ---- ids -------------------------------------------------------------------------------------

    const VALID_RESULT: ExtractionResult = { contacts: [{ name: 'Pat Doe' }], confidence: 0.9 }
    const repoNames = ['users', 'departments', 'productions', 'contacts', 'uploads', 'apiKeys'] as const
    const PATCH: Record<(typeof repoNames)[number], Record<string, unknown>> = {
      users: { name: 'Renamed' },
      departments: { name: 'Renamed' },
      productions: { title: 'Renamed' },
      contacts: { name: 'Renamed' },
      uploads: { fileName: 'renamed.pdf' },
      apiKeys: { name: 'Renamed' },
    }
    type ById = (id: unknown) => unknown
    const byIdMethods: { name: string; call: ById; valid?: readonly unknown[] }[] = [
      ...repoNames.flatMap((repo) => {
        const r = () => A()[repo] as unknown as Record<string, (...args: unknown[]) => unknown>
        const method = (m: string, ...rest: unknown[]): { name: string; call: ById } => ({
          name: `${repo}.${m}`,
          call: (id) => r()[m]?.(id, ...rest),
        })
        return [
          method('findById'),
          method('getById'),
          method('update', PATCH[repo]),
          // API keys have no softDelete or restore (revoked instead).
          ...(repo === 'apiKeys' ? [] : [method('softDelete'), method('restore')]),
          method('purge'),
        ]
      }),
      { name: 'productions.findWithContacts', call: (id) => A().productions.findWithContacts(id as string) },
      { name: 'uploads.markProcessing', call: (id) => A().uploads.markProcessing(id as string) },
      {
        name: 'uploads.completeExtraction',
        call: (id) => A().uploads.completeExtraction(id as string, VALID_RESULT),
      },
      { name: 'uploads.failExtraction', call: (id) => A().uploads.failExtraction(id as string, 'boom') },
      { name: 'apiKeys.revoke', call: (id) => A().apiKeys.revoke(id as string) },
      {
        name: 'contacts.search({ productionId })',
        call: (id) => A().contacts.search('Jon', { productionId: id as string }),
        valid: [undefined],
      },
      {
        name: 'contacts.findMany({ where: { productionId } })',
        call: (id) => A().contacts.findMany({ where: { productionId: id as string } }),
        valid: [undefined],
      },
      {
        name: 'contacts.count({ where: { productionId: [ok, bad] } })',
        call: (id) => A().contacts.count({ where: { productionId: [a.production.id, id as string] } }),
      },
      {
        name: 'uploads.findMany({ where: { uploadedBy } })',
        // null is a valid filter here: "uploaded by nobody".
        call: (id) => A().uploads.findMany({ where: { uploadedBy: id as string } }),
        valid: [undefined, null],
      },
      ...(['findById', 'getById', 'softDelete', 'restore'] as const).map((m) => ({
        name: `db.organizations.${m}`,
        call: (id: unknown) => ctx().db.organizations[m](id as string),
      })),
      { name: 'db.organizations.update', call: (id) => ctx().db.organizations.update(id as string, { name: 'X' }) },
    ]

    it.each(byIdMethods.map((m) => [m.name, m] as const))(
      '%s refuses every non-UUID id',
      async (name, { call, valid = [] }) => {
        await expectRefused(
          BAD_IDS.filter(([, id]) => !valid.includes(id)).map(([label, id]) => ({
            name: `${name}(${label})`,
            call: () => call(id),
          })),
        )
      },
    )

    it('db.tenant and createTenantClient throw synchronously on a non-UUID organization id', async () => {
      const db = ctx().db
      await expectRefused(
        BAD_IDS.flatMap(([label, id]) => [
          { name: `db.tenant(${label})`, call: () => db.tenant(id as string) },
          {
            name: `createTenantClient(${label})`,
            call: () => createTenantClient(id as string, {}, { database: db }),
          },
        ]),
        'throws',
      )
    })

    // ---- creates ---------------------------------------------------------------------------------

    const contact = (extra: Record<string, unknown>) => ({ productionId: a.production.id, name: 'Pat Doe', ...extra })
    const nested = (depth: number): Record<string, unknown> => {
      let value: Record<string, unknown> = { leaf: true }
      for (let i = 0; i < depth; i++) value = { a: value }
      return value
    }
    const createCases = (): Case[] => {
      const c = (name: string, input: () => unknown) => ({
        name: `contacts.create with ${name}`,
        call: () => A().contacts.create(input() as never),
      })
      const cyclic: Record<string, unknown> = { a: 1 }
      cyclic.self = cyclic
      return [
        c('an empty name', () => contact({ name: '' })),
        c('a 1 MB name', () => contact({ name: MB })),
        c('a NUL byte in the name', () => contact({ name: 'Pat\u0000Doe' })),
        c('a NUL byte in the notes', () => contact({ notes: 'see \u0000 here' })),
        c('a NUL byte in a metadata value', () => contact({ metadata: { note: 'a\u0000b' } })),
        c('a NUL byte in a metadata key', () => contact({ metadata: { 'a\u0000b': 1 } })),
        c('a NUL byte deep in metadata', () => contact({ metadata: { a: [{ b: ['x', 'y\u0000'] }] } })),
        c('a number for the name', () => contact({ name: 42 })),
        c('no name', () => ({ productionId: a.production.id })),
        c('no productionId', () => ({ name: 'Pat Doe' })),
        c('a non-UUID productionId', () => contact({ productionId: "1' or '1'='1" })),
        c('an e-mail without @', () => contact({ email: 'pat.example.com' })),
        c('an e-mail of 1 MB', () => contact({ email: `${MB}@example.com` })),
        c('confidence 1.5', () => contact({ extractionConfidence: 1.5 })),
        c('confidence -0.1', () => contact({ extractionConfidence: -0.1 })),
        c('confidence NaN', () => contact({ extractionConfidence: Number.NaN })),
        c('confidence Infinity', () => contact({ extractionConfidence: Number.POSITIVE_INFINITY })),
        c("confidence '0.5' (a string)", () => contact({ extractionConfidence: '0.5' })),
        c('metadata nested 100 levels deep', () => contact({ metadata: nested(100) })),
        c('metadata nested 100 000 levels deep', () => contact({ metadata: nested(100_000) })),
        c('metadata of 1 MB', () => contact({ metadata: { blob: MB } })),
        c('metadata that is an array', () => contact({ metadata: [1, 2] })),
        c('metadata holding a BigInt', () => contact({ metadata: { n: 10n } })),
        c('metadata with a cycle', () => contact({ metadata: cyclic })),
        c('null input', () => null),
        c('a string input', () => 'Pat Doe'),
        c('an array input', () => [contact({})]),
        {
          name: 'departments.create with a string sortOrder',
          call: () => A().departments.create({ name: 'Art', code: 'ART', sortOrder: '1' } as never),
        },
        {
          name: 'departments.create with sortOrder 1.5',
          call: () => A().departments.create({ name: 'Art', code: 'ART', sortOrder: 1.5 }),
        },
        {
          name: 'departments.create with sortOrder 2^31',
          call: () => A().departments.create({ name: 'Art', code: 'ART', sortOrder: 2 ** 31 }),
        },
        {
          name: 'departments.create with an SQL fragment as code',
          call: () => A().departments.create({ name: 'Art', code: "ART'; drop table departments; --" }),
        },
        {
          name: 'users.create with an e-mail without @',
          call: () => A().users.create({ email: 'nobody', name: 'No Body' }),
        },
        {
          name: 'users.create with role superuser',
          call: () => A().users.create({ email: 'x@example.com', name: 'X', role: 'superuser' } as never),
        },
        {
          name: 'productions.create with an empty title',
          call: () => A().productions.create({ title: '' }),
        },
        {
          name: 'productions.create with endDate before startDate',
          call: () => A().productions.create({ title: 'T', startDate: '2025-02-01', endDate: '2025-01-01' }),
        },
        {
          name: 'productions.create with startDate 2025-13-45',
          call: () => A().productions.create({ title: 'T', startDate: '2025-13-45' }),
        },
        {
          name: 'productions.create with an unknown status',
          call: () => A().productions.create({ title: 'T', status: 'wrapped; drop' } as never),
        },
        {
          name: 'uploads.create with a negative size',
          call: () =>
            A().uploads.create({
              productionId: a.production.id,
              fileName: 'f.pdf',
              mimeType: 'application/pdf',
              sizeBytes: -1,
              checksumSha256: 'a'.repeat(64),
              storageKey: 'k',
            }),
        },
        {
          name: 'uploads.create with a checksum that is not hex',
          call: () =>
            A().uploads.create({
              productionId: a.production.id,
              fileName: 'f.pdf',
              mimeType: 'application/pdf',
              sizeBytes: 1,
              checksumSha256: 'z'.repeat(64),
              storageKey: 'k',
            }),
        },
        {
          name: 'apiKeys.create with an empty name',
          call: () => A().apiKeys.create({ name: '' }),
        },
        {
          name: 'apiKeys.create with 65 scopes',
          call: () => A().apiKeys.create({ name: 'k', scopes: Array.from({ length: 65 }, (_, i) => `s${i}`) }),
        },
        {
          name: 'apiKeys.create with a string expiresAt',
          call: () => A().apiKeys.create({ name: 'k', expiresAt: 'tomorrow' } as never),
        },
        {
          name: 'apiKeys.create with its own keyHash (unknown key: the schema is strict)',
          call: () => A().apiKeys.create({ name: 'k', keyHash: 'a'.repeat(64) } as never),
        },
        {
          name: 'db.organizations.create with an empty name',
          call: () => ctx().db.organizations.create({ name: '', slug: 'ok-slug' }),
        },
        {
          name: 'db.organizations.create with an SQL fragment as slug',
          call: () => ctx().db.organizations.create({ name: 'X', slug: "x'; drop table organizations; --" }),
        },
        {
          name: 'db.organizations.create with a NUL byte in the name',
          call: () => ctx().db.organizations.create({ name: 'X\u0000', slug: 'nul-org' }),
        },
      ]
    }

    it.each(createCases().map((c) => c.name))('%s', async (name) => {
      const c = createCases().find((x) => x.name === name)
      if (!c) throw new Error(name)
      await expectRefused([c])
    })

    it('a NUL byte is reported at the path of the offending value', async () => {
      const [error] = await expectRefused([
        { name: 'contacts.create with NUL in notes', call: () => A().contacts.create(contact({ notes: 'a\u0000' })) },
      ])
      const paths = ((error as ValidationError).issues ?? []).map((i) => i.path.join('.'))
      expect(paths, 'ValidationIssue.path should name the field, e.g. "notes"').toContain('notes')
    })

    it('unknown keys: refused by the strict schemas (uploads.update, apiKeys.update)', async () => {
      await expectRefused([
        {
          name: 'uploads.update setting status directly',
          call: () => A().uploads.update(a.upload.id, { status: 'completed' } as never),
        },
        {
          name: 'uploads.update with an unknown key next to a valid one',
          call: () => A().uploads.update(a.upload.id, { fileName: 'x.pdf', bogus: 1 } as never),
        },
        {
          name: 'apiKeys.update with its keyHash',
          call: () => A().apiKeys.update(a.apiKey.id, { keyHash: 'b'.repeat(64) } as never),
        },
      ])
    })

    // ---- updates ---------------------------------------------------------------------------------

    it.each(repoNames)("%s.update with an empty patch, or only keys that are not the caller's to set", async (repo) => {
      const r = () => A()[repo] as unknown as { update(id: string, patch: unknown): Promise<unknown> }
      const own = {
        users: a.user,
        departments: a.department,
        productions: a.production,
        contacts: a.contact,
        uploads: a.upload,
        apiKeys: a.apiKey,
      }[repo].id
      await expectRefused(
        (
          [
            ['{}', {}],
            ["another tenant's organizationId", { organizationId: b.org.id }],
            ['a new id', { id: UUID }],
            ['createdAt', { createdAt: new Date(0) }],
            ['deletedAt', { deletedAt: new Date() }],
            ['null', null],
            ['a string', 'name=x'],
          ] as const
        ).map(([label, patch]) => ({ name: `${repo}.update(own id, ${label})`, call: () => r().update(own, patch) })),
      )
    })

    it('contacts.update with bad values', async () => {
      const id = a.contact.id
      await expectRefused(
        (
          [
            ['an empty name', { name: '' }],
            ['a NUL in notes', { notes: '\u0000' }],
            ['confidence 2', { extractionConfidence: 2 }],
            ['a non-UUID productionId', { productionId: 'p1' }],
            ['null productionId', { productionId: null }],
            ['an e-mail without @', { email: 'nope' }],
            ['1 MB of notes', { notes: MB }],
          ] as const
        ).map(([label, patch]) => ({
          name: `contacts.update(${label})`,
          call: () => A().contacts.update(id, patch as never),
        })),
      )
    })

    it('apiKeys.update cannot un-revoke a key or forge its bookkeeping (revokedAt, lastUsedAt)', async () => {
      const key = await A().apiKeys.create({ name: 'revoked' })
      await A().apiKeys.revoke(key.id)
      expect(await ctx().db.apiKeys.verify(key.plaintext)).toBeNull()
      await expectRefused([
        {
          name: 'apiKeys.update({ revokedAt: null })',
          call: () => A().apiKeys.update(key.id, { revokedAt: null } as never),
        },
        {
          name: 'apiKeys.update({ lastUsedAt })',
          call: () => A().apiKeys.update(key.id, { lastUsedAt: new Date(0) } as never),
        },
      ])
      expect(await ctx().db.apiKeys.verify(key.plaintext), 'a revoked key verifies again').toBeNull()
    })

    // ---- findMany / count ------------------------------------------------------------------------

    it('findMany refuses unknown sort columns and bad directions', async () => {
      const orderBys: unknown[] = [
        'password',
        'name; drop table contacts',
        'name desc',
        'organizationId',
        'deletedAt',
        '__proto__',
        'constructor',
        'toString',
        '',
        42,
      ]
      const directions: unknown[] = ['sideways', 'ASC', 'desc; drop table contacts', '', 1]
      await expectRefused([
        ...orderBys.map((orderBy) => ({
          name: `contacts.findMany({ orderBy: ${show(orderBy)} })`,
          call: () => A().contacts.findMany({ orderBy: orderBy as never }),
        })),
        ...directions.map((direction) => ({
          name: `contacts.findMany({ direction: ${show(direction)} })`,
          call: () => A().contacts.findMany({ direction: direction as never }),
        })),
        {
          name: "productions.findManyWithContactCounts({ orderBy: 'contactCount' })",
          call: () => A().productions.findManyWithContactCounts({ orderBy: 'contactCount' as never }),
        },
      ])
    })

    it('findMany refuses limits that are not an integer from 1 to 1000', async () => {
      const limits: unknown[] = [0, -1, 1.5, 1001, 1_000_001, Number.NaN, Number.POSITIVE_INFINITY, '10', 2 ** 53]
      await expectRefused(
        limits.flatMap((limit) => [
          {
            name: `contacts.findMany({ limit: ${String(limit)} })`,
            call: () => A().contacts.findMany({ limit: limit as number }),
          },
          {
            name: `db.organizations.findMany({ limit: ${String(limit)} })`,
            call: () => ctx().db.organizations.findMany({ limit: limit as number }),
          },
        ]),
      )
    })

    it('findMany / count refuse unknown filter keys and filter values of the wrong type', async () => {
      const wheres: unknown[] = [
        { password: 'x' },
        { organizationId: b.org.id },
        { 'name; drop table contacts': 1 },
        { name: 'Jon Smith' },
        JSON.parse('{"__proto__": {"productionId": "x"}}'),
        { productionId: 42 },
        { productionId: 'not-a-uuid' },
        { productionId: [a.production.id, 'nope'] },
        { productionId: null },
        { productionId: Array.from({ length: 1001 }, () => a.production.id) },
        { email: '' },
        { email: `${MB}@x` },
        { role: { $ne: null } },
        { role: ['Focus Puller', 7] },
        { departmentId: { in: [] } },
        'productionId = 1',
        null,
        [],
      ]
      await expectRefused(
        wheres.flatMap((where) => [
          {
            name: `contacts.findMany({ where: ${show(where)} })`,
            call: () => A().contacts.findMany({ where: where as never }),
          },
          {
            name: `contacts.count({ where: ${show(where)} })`,
            call: () => A().contacts.count({ where: where as never }),
          },
        ]),
      )
    })

    it("findMany / count / findById refuse a deleted mode other than 'exclude' | 'include' | 'only'", async () => {
      await expectRefused([
        ...(['all', 'ONLY', true, 1, ''] as unknown[]).flatMap((deleted) => [
          {
            name: `contacts.findMany({ deleted: ${show(deleted)} })`,
            call: () => A().contacts.findMany({ deleted: deleted as never }),
          },
          {
            name: `contacts.count({ deleted: ${show(deleted)} })`,
            call: () => A().contacts.count({ deleted: deleted as never }),
          },
          {
            name: `contacts.findById(id, { deleted: ${show(deleted)} })`,
            call: () => A().contacts.findById(a.contact.id, { deleted: deleted as never }),
          },
          {
            name: `db.organizations.findMany({ deleted: ${show(deleted)} })`,
            call: () => ctx().db.organizations.findMany({ deleted: deleted as never }),
          },
        ]),
        {
          // A type error too (api.test-d.ts); a JavaScript caller still gets a ValidationError.
          name: "apiKeys.findMany({ deleted: 'include' }) (keys are not soft-deleted)",
          call: () => A().apiKeys.findMany({ deleted: 'include' as never }),
        },
      ])
    })

    it('findMany refuses tampered cursors', async () => {
      const first = await A().contacts.findMany({ orderBy: 'name', limit: 1 })
      const cursor = first.nextCursor
      expect(cursor, 'two contacts give a second page').toBeTypeOf('string')
      const decoded = JSON.parse(Buffer.from(String(cursor), 'base64url').toString('utf8')) as Record<string, unknown>
      const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
      const byDate = await A().contacts.findMany({ orderBy: 'createdAt', limit: 1 })
      const dateCursor = JSON.parse(Buffer.from(String(byDate.nextCursor), 'base64url').toString('utf8')) as Record<
        string,
        unknown
      >
      const departmentsPage = await A().departments.findMany({ limit: 1 })
      const sortOrderCursor = JSON.parse(
        Buffer.from(String(departmentsPage.nextCursor), 'base64url').toString('utf8'),
      ) as Record<string, unknown>
      const cases: [string, unknown, 'name' | 'createdAt', 'asc' | 'desc'][] = [
        ['random base64', Buffer.from('hello world, not a cursor').toString('base64url'), 'name', 'asc'],
        ['random bytes', Buffer.from([0xff, 0x00, 0x13, 0x37, 0x99]).toString('base64url'), 'name', 'asc'],
        ['not base64 at all', "' or 1=1 --", 'name', 'asc'],
        ['a cursor of another ordering (name → createdAt)', cursor, 'createdAt', 'asc'],
        ['a cursor of the other direction', cursor, 'name', 'desc'],
        ['a cursor with a non-UUID id', encode({ ...decoded, id: "1' or '1'='1" }), 'name', 'asc'],
        ['a cursor without its value', encode({ ...decoded, v: undefined }), 'name', 'asc'],
        ['a cursor whose value is an object', encode({ ...decoded, v: { $gt: '' } }), 'name', 'asc'],
        ['a cursor with a NUL in its value', encode({ ...decoded, v: 'Jon\u0000' }), 'name', 'asc'],
        [
          'a createdAt cursor whose value is not a time',
          encode({ ...dateCursor, v: 'not a time' }),
          'createdAt',
          'asc',
        ],
        // Castable, so PostgreSQL takes it (midnight yesterday): only a check in the library can tell it was forged.
        [
          "a createdAt cursor whose value is 'yesterday'",
          encode({ ...dateCursor, v: 'yesterday' }),
          'createdAt',
          'asc',
        ],
        ['a cursor of 3000 characters', 'A'.repeat(3000), 'name', 'asc'],
        ['a number', 42, 'name', 'asc'],
        ['an empty string', '', 'name', 'asc'],
      ]
      await expectRefused([
        ...cases.map(([label, c, orderBy, direction]) => ({
          name: `contacts.findMany with ${label}`,
          call: () => A().contacts.findMany({ orderBy, direction, cursor: c as string }),
        })),
        {
          name: 'departments.findMany with a sortOrder cursor whose value is not an integer',
          call: () => A().departments.findMany({ cursor: encode({ ...sortOrderCursor, v: 'abc' }) }),
        },
        {
          name: 'db.organizations.findMany with a tampered cursor',
          call: () =>
            ctx().db.organizations.findMany({
              cursor: encode({ s: 'createdAt', d: 'asc', v: 'not a time', id: UUID }),
            }),
        },
        {
          name: 'db.organizations.findMany with a cursor with a non-UUID id',
          call: () =>
            ctx().db.organizations.findMany({
              cursor: encode({ s: 'createdAt', d: 'asc', v: '2026-11-25 16:13:25.798123+00', id: 'x' }),
            }),
        },
      ])
    })

    it('SQL fragments that are valid filter values are just values: no error, no match, no harm', async () => {
      const before = await fingerprint()
      const fragments = ["' or '1'='1", "'; drop table contacts; --", '% _ \\', "Robert'); DROP TABLE users;--"]
      for (const text of fragments) {
        expect((await A().contacts.findMany({ where: { role: text } })).rows, text).toEqual([])
        expect(await A().contacts.count({ where: { email: `${text}@x` } }), text).toBe(0)
        expect((await A().departments.findMany({ where: { name: text } })).rows, text).toEqual([])
        expect((await A().users.findMany({ where: { email: text } })).rows, text).toEqual([])
      }
      expect(await fingerprint()).toEqual(before)
    })

    // ---- search ----------------------------------------------------------------------------------

    it('contacts.search refuses blank, huge or NUL text and out-of-range options', async () => {
      const search = (label: string, text: unknown, options?: unknown) => ({
        name: `contacts.search(${label})`,
        call: () => A().contacts.search(text as string, options as never),
      })
      await expectRefused([
        search("''", ''),
        search("'   '", '   '),
        search('tabs and newlines', '\t\n\r '),
        search('1 MB of text', MB),
        search('201 characters', 'j'.repeat(201)),
        search('a NUL byte', 'Jon\u0000Smith'),
        search('a number', 42),
        search('null', null),
        search('undefined', undefined),
        search('limit 0', 'Jon', { limit: 0 }),
        search('limit 101', 'Jon', { limit: 101 }),
        search('limit -5', 'Jon', { limit: -5 }),
        search('limit 1.5', 'Jon', { limit: 1.5 }),
        search('limit NaN', 'Jon', { limit: Number.NaN }),
        search('threshold 2', 'Jon', { threshold: 2 }),
        search('threshold -1', 'Jon', { threshold: -1 }),
        search('threshold NaN', 'Jon', { threshold: Number.NaN }),
        search("threshold '0.1; reset role'", 'Jon', { threshold: '0.1; reset role' }),
        search('an unknown option', 'Jon', { fuzzy: true }),
        search('options that are a string', 'Jon', 'limit=5'),
      ])
    })

    it('contacts.search with SQL fragments as text returns results or nothing, and harms nothing', async () => {
      const before = await fingerprint()
      for (const text of ["'; drop table contacts; --", '% _ \\', '\\', "' or 1=1 --", '$1', '%%%', "Jon' || '"]) {
        const hits = await A().contacts.search(text)
        expect(Array.isArray(hits), text).toBe(true)
        expect(
          hits.every((h) => h.organizationId === a.org.id),
          text,
        ).toBe(true)
      }
      expect(await fingerprint()).toEqual(before)
      const [tables] = await ctx().engine.admin.query<{ n: number }>(
        `select count(*)::int as n from pg_tables where schemaname = 'public' and tablename in ('contacts', 'users', 'organizations')`,
      )
      expect(tables?.n).toBe(3)
      expect((await A().contacts.search('Jon Smith')).map((h) => h.id)).toEqual([a.contact.id])
    })

    // ---- createMany ------------------------------------------------------------------------------

    const fifty = (bad: Record<number, Record<string, unknown>>) =>
      Array.from({ length: 50 }, (_, i) =>
        bad[i] ? { ...contact({ name: `Row ${i}` }), ...bad[i] } : contact({ name: `Row ${i}` }),
      )

    it('createMany with one bad row among 50 names that row, and inserts none', async () => {
      const [error] = await expectRefused([
        {
          name: 'createMany(row 25 with an empty name)',
          call: () => A().contacts.createMany(fifty({ 25: { name: '' } })),
        },
      ])
      const issues = (error as ValidationError).issues ?? []
      expect(issues.length).toBeGreaterThan(0)
      expect(issues.map((i) => i.path[0])).toEqual(issues.map(() => 25))
      expect(issues.map((i) => i.path.join('.'))).toContain('25.name')
    })

    it('createMany names every bad row, not just the first', async () => {
      const [error] = await expectRefused([
        {
          name: 'createMany(rows 3 and 40 bad)',
          call: () => A().contacts.createMany(fifty({ 3: { extractionConfidence: 1.5 }, 40: { email: 'nope' } })),
        },
      ])
      expect(new Set(((error as ValidationError).issues ?? []).map((i) => i.path[0]))).toEqual(new Set([3, 40]))
    })

    it('createMany with a NUL byte in row 25 names row 25', async () => {
      const [error] = await expectRefused([
        {
          name: 'createMany(row 25 with a NUL byte)',
          call: () => A().contacts.createMany(fifty({ 25: { notes: 'bad\u0000' } })),
        },
      ])
      const paths = ((error as ValidationError).issues ?? []).map((i) => i.path)
      expect(paths.length).toBeGreaterThan(0)
      expect(
        paths.map((p) => p[0]),
        'each issue should start with the bad row index',
      ).toEqual(paths.map(() => 25))
    })

    it('createMany refuses a non-array, a non-object row and a bad chunk size', async () => {
      const many = (label: string, rows: unknown, options?: unknown) => ({
        name: `contacts.createMany(${label})`,
        call: () => A().contacts.createMany(rows as never, options as never),
      })
      await expectRefused([
        many('a string', 'Pat Doe'),
        many('an object', contact({})),
        many('null', null),
        many('undefined', undefined),
        many('an array-like', { length: 2, 0: contact({}), 1: contact({}) }),
        many('null at index 3', [contact({}), contact({}), contact({}), null]),
        many('chunkSize 0', [contact({ name: 'A' }), contact({ name: 'B' })], { chunkSize: 0 }),
        many('chunkSize -1', [contact({ name: 'A' })], { chunkSize: -1 }),
        many('chunkSize 1.5', [contact({ name: 'A' })], { chunkSize: 1.5 }),
      ])
    })

    // ---- uploads ---------------------------------------------------------------------------------

    it('uploads.completeExtraction refuses a malformed result and leaves the upload as it was', async () => {
      const complete = (label: string, result: unknown) => ({
        name: `completeExtraction(${label})`,
        call: () => A().uploads.completeExtraction(processingUploadId, result as ExtractionResult),
      })
      await expectRefused([
        complete('no confidence', { contacts: [] }),
        complete('contacts not an array', { contacts: 'Pat Doe', confidence: 0.5 }),
        complete('confidence 3', { contacts: [], confidence: 3 }),
        complete('confidence NaN', { contacts: [], confidence: Number.NaN }),
        complete('a contact without a name', { contacts: [{ email: 'p@example.com' }], confidence: 0.5 }),
        complete('a contact with a blank name', { contacts: [{ name: '   ' }], confidence: 0.5 }),
        complete('a contact e-mail without @', { contacts: [{ name: 'P', email: 'nope' }], confidence: 0.5 }),
        complete('a NUL in a contact name', { contacts: [{ name: 'P\u0000' }], confidence: 0.5 }),
        complete('an unknown key', { contacts: [], confidence: 0.5, status: 'completed' }),
        complete('null', null),
        complete('a string', 'done'),
      ])
      const [row] = await ctx().engine.admin.query<{ status: string; extraction_result: unknown }>(
        'select status, extraction_result from uploads where id = $1',
        [processingUploadId],
      )
      expect(row).toEqual({ status: 'processing', extraction_result: null })
    })

    it('uploads.failExtraction refuses a blank, NUL-bearing or huge error', async () => {
      const fail = (label: string, error: unknown) => ({
        name: `failExtraction(${label})`,
        call: () => A().uploads.failExtraction(processingUploadId, error as string),
      })
      await expectRefused([
        fail("''", ''),
        fail("'  '", '  '),
        fail('a NUL byte', 'boom\u0000'),
        fail('10 001 characters', 'e'.repeat(10_001)),
        fail('a number', 500),
      ])
    })

    // ---- tenant context --------------------------------------------------------------------------

    it('db.tenant, createTenantClient and withContext throw synchronously on a bad context', async () => {
      const db = ctx().db
      const contexts: [string, unknown][] = [
        ["actorId 'x'", { actorId: 'x' }],
        ['actorId null', { actorId: null }],
        ["apiKeyId 'x'", { apiKeyId: 'x' }],
        ["ip '999.1.1.1'", { ip: '999.1.1.1' }],
        ["ip 'localhost'", { ip: 'localhost' }],
        ['requestId of 1000 characters', { requestId: 'a'.repeat(1000) }],
        ["requestId ''", { requestId: '' }],
        ['requestId with a newline', { requestId: 'a\nb' }],
        ['requestId with a NUL', { requestId: 'a\u0000b' }],
        ['an unknown key', { userId: UUID }],
        ['a string', 'actor'],
      ]
      await expectRefused(
        contexts.flatMap(([label, context]) => [
          { name: `db.tenant(org, ${label})`, call: () => db.tenant(a.org.id, context as never) },
          {
            name: `createTenantClient(org, ${label})`,
            call: () => createTenantClient(a.org.id, context as never, { database: db }),
          },
          ...(typeof context === 'object'
            ? [{ name: `tenant.withContext(${label})`, call: () => A().withContext(context as never) }]
            : []),
        ]),
        'throws',
      )
    })
  },
  { logger: recordingLogger },
)

// ---- createDatabase configuration: no engine needed, nothing connects -------------------------------

describe('createDatabase refuses a bad configuration, naming the field', () => {
  // instanceof is all the config check looks at: no PGlite has to boot for this.
  const fakePglite = Object.create(PGlite.prototype) as PGlite
  const url = 'postgres://nobody@127.0.0.1:1/none'
  const cases: { label: string; config: unknown; field: string }[] = [
    { label: 'no config', config: undefined, field: 'config' },
    { label: 'a null config', config: null, field: 'config' },
    { label: 'primary missing', config: {}, field: 'primary' },
    { label: "primary 'mysql://x'", config: { primary: 'mysql://x' }, field: 'primary' },
    { label: 'primary a number', config: { primary: 5432 }, field: 'primary' },
    { label: 'primary.url not a string', config: { primary: { url: 42 } }, field: 'primary.url' },
    { label: 'pool.max 0', config: { primary: url, pool: { max: 0 } }, field: 'pool.max' },
    { label: 'pool.max 1.5', config: { primary: url, pool: { max: 1.5 } }, field: 'pool.max' },
    { label: "pool.max 'ten'", config: { primary: url, pool: { max: 'ten' } }, field: 'pool.max' },
    {
      label: 'pool.acquireTimeoutMs -1',
      config: { primary: url, pool: { acquireTimeoutMs: -1 } },
      field: 'pool.acquireTimeoutMs',
    },
    {
      label: 'pool.idleTimeoutSeconds -1',
      config: { primary: url, pool: { idleTimeoutSeconds: -1 } },
      field: 'pool.idleTimeoutSeconds',
    },
    { label: 'an unknown pool key', config: { primary: url, pool: { min: 1 } }, field: 'pool' },
    { label: 'appRole with SQL in it', config: { primary: url, appRole: 'Robert"); drop' }, field: 'appRole' },
    { label: "appRole ''", config: { primary: url, appRole: '' }, field: 'appRole' },
    { label: 'statementTimeoutMs -1', config: { primary: url, statementTimeoutMs: -1 }, field: 'statementTimeoutMs' },
    { label: "prepare 'yes'", config: { primary: url, prepare: 'yes' }, field: 'prepare' },
    { label: 'replicas with a PGlite primary', config: { primary: fakePglite, replicas: [url] }, field: 'replicas' },
    { label: 'a PGlite replica', config: { primary: url, replicas: [fakePglite] }, field: 'replicas' },
    { label: "replicas ['mysql://x']", config: { primary: url, replicas: ['mysql://x'] }, field: 'replicas[0]' },
    { label: 'replicas not an array', config: { primary: url, replicas: url }, field: 'replicas' },
    {
      label: 'routing.readYourWritesWaitMs -1',
      config: { primary: url, routing: { readYourWritesWaitMs: -1 } },
      field: 'routing.readYourWritesWaitMs',
    },
    {
      label: "routing.maxLagMs '5s'",
      config: { primary: url, routing: { maxLagMs: '5s' } },
      field: 'routing.maxLagMs',
    },
    {
      label: 'routing.maxBackoffMs below backoffMs',
      config: { primary: url, routing: { backoffMs: 1000, maxBackoffMs: 10 } },
      field: 'routing.maxBackoffMs',
    },
    { label: 'an unknown routing key', config: { primary: url, routing: { sticky: true } }, field: 'routing' },
    {
      label: 'routing.replicaConnectTimeoutSeconds 0',
      config: { primary: url, routing: { replicaConnectTimeoutSeconds: 0 } },
      field: 'routing.replicaConnectTimeoutSeconds',
    },
    { label: 'a hook without a name', config: { primary: url, hooks: [{}] }, field: 'hooks[0]' },
    {
      label: 'a hook whose afterCommit is not a function',
      config: { primary: url, hooks: [{ name: 'h', afterCommit: 1 }] },
      field: 'hooks[0]',
    },
  ]

  it.each(cases.map((c) => [c.label, c.field, c] as const))(
    '%s → INVALID_CONFIGURATION naming %s',
    (_label, field, { config }) => {
      let error: unknown
      let db: unknown
      try {
        db = createDatabase(config as DatabaseConfig)
      } catch (e) {
        error = e
      }
      if (db) void (db as { close(): Promise<void> }).close()
      expect(error, `createDatabase accepted it`).toBeDefined()
      expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION'), show(error)).toBe(true)
      expect((error as Error).message).toContain(field)
    },
  )
})
