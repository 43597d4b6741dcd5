import { expect, it } from 'vitest'
import { isCallsheetDbError, type TenantClient } from '../src'
import { describeEachDatabase } from './harness/engines'

// Inputs the fuzzer (test/fuzz.test.ts) found reaching the driver or crashing before the fixes; each
// must now be a ValidationError with nothing written.

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const refused = async (attempt: () => unknown): Promise<unknown> => {
  try {
    await attempt()
  } catch (error) {
    return error
  }
  throw new Error('accepted')
}

describeEachDatabase('inputs the fuzzer found', (ctx) => {
  const tenantOf = async (label: string): Promise<TenantClient> => {
    const { db } = ctx()
    const org = await db.organizations.create({ name: label, slug: `${label}-${Date.now().toString(36)}` })
    return db.tenant(org.id)
  }

  it.each([
    [
      'a sparse array as a name',
      (t: TenantClient) => t.departments.create({ name: new Array<string>(1) as never, code: 'A' }),
    ],
    ['a BigInt orderBy', (t: TenantClient) => t.contacts.findMany({ orderBy: 10n as never })],
    ['a 10,000-deep array as limit', (t: TenantClient) => t.contacts.findMany({ limit: deep(10_000) as never })],
    [
      'a null-prototype object as limit',
      (t: TenantClient) => t.contacts.findMany({ limit: Object.create(null) as never }),
    ],
    ['an unknown findMany option', (t: TenantClient) => t.contacts.findMany({ limt: 5 } as never)],
    ['an unknown count option', (t: TenantClient) => t.contacts.count({ delted: 'only' } as never)],
    ['an unknown findById option', (t: TenantClient) => t.contacts.findById(crypto.randomUUID(), { x: 1 } as never)],
    ['a search threshold of 8e-323 is fine, not an error', null],
    ['a year-0 production date', (t: TenantClient) => t.productions.create({ title: 'Zero', startDate: '0000-01-01' })],
    [
      'an api key expiring in a six-digit year',
      (t: TenantClient) => t.apiKeys.create({ name: 'k', expiresAt: new Date(8.6e15) }),
    ],
    ['a lone surrogate in a name', (t: TenantClient) => t.users.create({ email: 'a@b.example', name: '忆\udfff' })],
    ['withContext(null)', (t: TenantClient) => t.withContext(null as never)],
  ] as const)('%s → VALIDATION_FAILED', async (_label, attempt) => {
    const tenant = await tenantOf('regress')
    if (attempt === null) {
      expect(await tenant.contacts.search('jon', { threshold: 8e-323 })).toEqual([])
      return
    }
    const error = await refused(() => attempt(tenant))
    expect(isCallsheetDbError(error, 'VALIDATION_FAILED'), String(error)).toBe(true)
    expect(await tenant.users.count({ deleted: 'include' })).toBe(0)
    expect(await tenant.departments.count({ deleted: 'include' })).toBe(0)
    expect(await tenant.productions.count({ deleted: 'include' })).toBe(0)
  })

  it('tampered timestamp cursors PostgreSQL would refuse are refused first', async () => {
    const { db } = ctx()
    const tenant = await tenantOf('cursors')
    const id = crypto.randomUUID()
    for (const at of [
      '0000-01-01 00:00:00+00',
      '2621-08-24 00:20:38.490921-22:25',
      '2023-02-29 00:00:00+00',
      '2024-13-01 00:00:00+00',
      '2024-01-01 24:00:00+00',
    ]) {
      for (const attempt of [
        () => db.organizations.findMany({ cursor: b64({ s: 'createdAt', d: 'asc', v: at, id }) }),
        () => tenant.auditLogs.history('contacts', id, { cursor: b64({ s: 'createdAt', d: 'desc', v: at, id }) }),
      ]) {
        const error = await refused(attempt)
        expect(isCallsheetDbError(error, 'VALIDATION_FAILED'), `${at}: ${String(error)}`).toBe(true)
      }
    }
    // What PostgreSQL prints is still accepted: a leap day, offsets with minutes.
    for (const at of ['2024-02-29 23:59:59.999999+00', '2026-11-25 16:13:25.798123+05:30', '2026-01-01 00:00:00-15']) {
      await expect(
        db.organizations.findMany({ cursor: b64({ s: 'createdAt', d: 'asc', v: at, id }) }),
      ).resolves.toHaveProperty('rows')
    }
  })

  it('an extraction result with NUL in a key: ValidationError, the upload failed with a storable reason', async () => {
    const tenant = await tenantOf('ingest-nul')
    const p = await tenant.productions.create({ title: 'Nul' })
    const upload = await tenant.uploads.create({
      productionId: p.id,
      fileName: 'x.pdf',
      mimeType: 'application/pdf',
      sizeBytes: 1,
      checksumSha256: 'a'.repeat(64),
      storageKey: 'k',
    })
    const error = await refused(() =>
      tenant.uploads.ingestExtraction(upload.id, { contacts: { 'a\u0000b': 1 }, confidence: 1 }),
    )
    expect(isCallsheetDbError(error, 'VALIDATION_FAILED')).toBe(true)
    const after = await tenant.uploads.getById(upload.id)
    expect(after.status).toBe('failed')
    expect(after.error).not.toContain('\u0000')
    expect(await tenant.contacts.count()).toBe(0)
  })

  it('100,000 unknown keys give a short error message, not a megabyte', async () => {
    const tenant = await tenantOf('wide')
    const wide: Record<string, string> = { productionId: crypto.randomUUID(), name: 'Wide' }
    for (let i = 0; i < 100_000; i++) wide[`k${i}`] = 'v'
    const error = await refused(() => tenant.contacts.create(wide as never))
    expect(isCallsheetDbError(error, 'VALIDATION_FAILED')).toBe(true)
    expect((error as Error).message.length).toBeLessThan(5_000)
  })
})

function deep(levels: number): unknown {
  let value: unknown = 1
  for (let i = 0; i < levels; i++) value = [value]
  return value
}
