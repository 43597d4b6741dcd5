import { beforeAll, expect, it } from 'vitest'
import { isCallsheetDbError } from '../src/errors'
import type { ExtractionResult } from '../src/schema'
import { describeEachDatabase } from './harness/engines'
import { fillTenant, type FilledTenant } from './support/fixtures'

/** What an extractor hands over for a day's call sheet: duplicates, gaps, and one hostile row. */
const callSheet = (): ExtractionResult => ({
  confidence: 0.913,
  extractor: { name: 'callsheet-extractor', version: '2.4.1' },
  contacts: [
    {
      name: 'Jon Smith',
      email: 'jon.smith@crew.example',
      role: 'Focus Puller',
      department: 'Camera',
      confidence: { name: 0.97 },
    },
    { name: 'Joanna Smythe', phone: '+44 20 7946 0001', role: 'Gaffer', department: 'Lighting' },
    // The same person again, with a phone the first row lacked, and the e-mail in another case.
    { name: 'Jon Smith', email: 'JON.SMITH@crew.example', phone: '+44 20 7946 0002', department: 'camera' },
    { name: 'Ade Okafor', role: '1st AD' },
    { name: 'ade okafor', phone: '+44 20 7946 0003' },
    {
      name: "Robert'); DROP TABLE contacts;-- <script>alert(1)</script>",
      email: 'bobby@tables.example',
      department: 'Art Dept.',
    },
    { name: 'Mia Lund', email: 'mia@crew.example', role: 'DOP', department: 'CAMERA' },
  ],
})

describeEachDatabase(
  'extraction ingest',
  (ctx) => {
    let a: FilledTenant
    let b: FilledTenant
    beforeAll(async () => {
      a = await fillTenant(ctx().db, 'ingest-a')
      b = await fillTenant(ctx().db, 'ingest-b')
    })

    const newUpload = (t: FilledTenant) =>
      t.tenant.uploads.create({
        productionId: t.production.id,
        fileName: 'day-03.pdf',
        mimeType: 'application/pdf',
        sizeBytes: 2048,
        checksumSha256: 'f'.repeat(64),
        storageKey: 'day-03.pdf',
      })

    it('ingests a realistic call sheet: merges duplicates, creates or reuses departments, links everything', async () => {
      const upload = await newUpload(a)
      await a.tenant.uploads.markProcessing(upload.id)
      const report = await a.tenant.uploads.ingestExtraction(upload.id, callSheet())
      expect(report).toMatchObject({ contactsCreated: 5, contactsUpdated: 0, duplicatesMerged: 2 })
      // Camera already existed (code CAM, name Camera); Lighting and Art Dept. are new.
      expect(report.departmentsCreated).toBe(2)
      expect(report.upload).toMatchObject({ status: 'completed', extractionConfidence: 0.91, error: null })
      expect(report.upload.extractionResult?.contacts).toHaveLength(7)

      const rows = (await a.tenant.contacts.findMany({ where: { uploadId: upload.id }, orderBy: 'name', limit: 100 }))
        .rows
      expect(rows.map((r) => r.name)).toEqual([
        'Ade Okafor',
        'Joanna Smythe',
        'Jon Smith',
        'Mia Lund',
        "Robert'); DROP TABLE contacts;-- <script>alert(1)</script>",
      ])
      const jon = rows.find((r) => r.name === 'Jon Smith')!
      expect(jon).toMatchObject({
        phone: '+44 20 7946 0002',
        role: 'Focus Puller',
        departmentId: a.department.id,
        extractionConfidence: 0.97,
      })
      expect(rows.find((r) => r.name === 'Mia Lund')?.departmentId).toBe(a.department.id)
      expect(rows.find((r) => r.name === 'Ade Okafor')).toMatchObject({ role: '1st AD', phone: '+44 20 7946 0003' })
      expect(rows.every((r) => r.productionId === a.production.id && r.uploadId === upload.id)).toBe(true)
      const lighting = await a.tenant.departments.findMany({ where: { code: 'LIGHTING' } })
      expect(rows.find((r) => r.name === 'Joanna Smythe')?.departmentId).toBe(lighting.rows[0]?.id)

      // Ingesting the same result again duplicates nothing and changes nothing.
      const before = await a.tenant.contacts.count()
      const again = await a.tenant.uploads.ingestExtraction(upload.id, callSheet())
      expect(again).toMatchObject({
        contactsCreated: 0,
        contactsUpdated: 0,
        contactsUnchanged: 5,
        departmentsCreated: 0,
      })
      expect(await a.tenant.contacts.count()).toBe(before)
    })

    it('a later sheet completes existing contacts without overwriting them', async () => {
      const upload = await newUpload(a)
      const report = await a.tenant.uploads.ingestExtraction(upload.id, {
        confidence: 0.8,
        contacts: [
          { name: 'Mia Lund', email: 'mia@crew.example', phone: '+44 20 7946 0099', role: 'Camera Operator' },
          { name: 'New Person', email: 'new@crew.example' },
        ],
      })
      expect(report).toMatchObject({ contactsCreated: 1, contactsUpdated: 1 })
      const mia = (await a.tenant.contacts.findMany({ where: { email: 'mia@crew.example' } })).rows[0]
      expect(mia).toMatchObject({ phone: '+44 20 7946 0099', role: 'DOP' })
    })

    it('a malformed result marks the upload failed with the validation error and inserts nothing', async () => {
      const upload = await newUpload(a)
      const contactsBefore = await a.tenant.contacts.count({ deleted: 'include' })
      const departmentsBefore = await a.tenant.departments.count({ deleted: 'include' })
      for (const malformed of [
        { contacts: 'not a list', confidence: 0.5 },
        { contacts: [{ name: 'Fine' }, { name: '', email: 'bad' }], confidence: 0.5 },
        { contacts: [{ name: 'Nul\u0000Byte' }], confidence: 0.5 },
        { contacts: [], confidence: 7 },
      ]) {
        const error = await a.tenant.uploads.ingestExtraction(upload.id, malformed).catch((e: unknown) => e)
        expect(isCallsheetDbError(error, 'VALIDATION_FAILED')).toBe(true)
        const failed = await a.tenant.uploads.getById(upload.id)
        expect(failed.status).toBe('failed')
        expect(failed.error).toContain('invalid extraction result')
      }
      expect(await a.tenant.contacts.count({ deleted: 'include' })).toBe(contactsBefore)
      expect(await a.tenant.departments.count({ deleted: 'include' })).toBe(departmentsBefore)
    })

    it("another tenant's upload is not found, and nothing is written anywhere", async () => {
      const upload = await newUpload(b)
      const countB = await b.tenant.contacts.count()
      const error = await a.tenant.uploads.ingestExtraction(upload.id, callSheet()).catch((e: unknown) => e)
      expect(isCallsheetDbError(error, 'NOT_FOUND')).toBe(true)
      expect(await b.tenant.contacts.count()).toBe(countB)
      expect((await b.tenant.uploads.getById(upload.id)).status).toBe('pending')
    })
  },
  {},
  { citus: true },
)
