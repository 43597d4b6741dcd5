import { describe, expect, it } from 'vitest'
import {
  apiKeyInsertSchema,
  contactInsertSchema,
  organizationInsertSchema,
  productionInsertSchema,
  uploadInsertSchema,
  userInsertSchema,
} from '../src/schema'

const productionId = '0192f0d4-8d3e-7c2a-9b1e-3f4a5b6c7d8e'

// The zod schemas refuse what the CHECK constraints would, before any SQL is sent.
describe('zod schemas', () => {
  it('accept a realistic contact and refuse out-of-range or hostile values', () => {
    expect(
      contactInsertSchema.parse({
        productionId,
        name: 'Jon Smith',
        email: 'jon@example.com',
        extractionConfidence: 0.87,
      }),
    ).toMatchObject({
      name: 'Jon Smith',
    })
    for (const bad of [
      { productionId, name: 'Jon', extractionConfidence: 1.5 },
      { productionId, name: 'Jon', email: 'not-an-email' },
      { productionId, name: '' },
      { productionId, name: 'x'.repeat(201) },
      { productionId: 'not-a-uuid', name: 'Jon' },
      { productionId, name: 42 },
    ]) {
      expect(contactInsertSchema.safeParse(bad).success, JSON.stringify(bad).slice(0, 80)).toBe(false)
    }
  })

  it('refuse a production ending before it starts, and an unknown status', () => {
    expect(
      productionInsertSchema.safeParse({ title: 'Film', startDate: '2026-05-02', endDate: '2026-05-01' }).success,
    ).toBe(false)
    expect(productionInsertSchema.safeParse({ title: 'Film', status: 'greenlit' }).success).toBe(false)
    expect(
      productionInsertSchema.safeParse({ title: 'Film', startDate: '2026-05-01', endDate: '2026-05-01' }).success,
    ).toBe(true)
  })

  it('refuse malformed hashes, slugs, roles and sizes', () => {
    expect(apiKeyInsertSchema.safeParse({ name: 'k', prefix: 'csk_abcd', keyHash: 'ABC' }).success).toBe(false)
    expect(organizationInsertSchema.safeParse({ name: 'Acme', slug: 'Acme Films' }).success).toBe(false)
    expect(organizationInsertSchema.safeParse({ name: 'Acme', slug: 'acme-films' }).success).toBe(true)
    expect(userInsertSchema.safeParse({ email: 'a@b.c', name: 'A', role: 'root' }).success).toBe(false)
    expect(
      uploadInsertSchema.safeParse({
        productionId,
        fileName: 'a.pdf',
        mimeType: 'application/pdf',
        sizeBytes: -1,
        checksumSha256: 'a'.repeat(64),
        storageKey: 'k',
      }).success,
    ).toBe(false)
  })

  it('refuse the tenant column and unknown keys: the organization comes from the tenant context', () => {
    const tenantColumn = contactInsertSchema.safeParse({ productionId, name: 'Jon', organizationId: productionId })
    expect(tenantColumn.success).toBe(false)
    expect(contactInsertSchema.safeParse({ productionId, name: 'Jon', departmentID: productionId }).success).toBe(false)
  })
})
