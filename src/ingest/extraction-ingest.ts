import { and, eq, sql } from 'drizzle-orm'
import type { z } from 'zod'
import { NotFoundError } from '../errors'
import { contacts } from '../schema/contacts'
import { departments } from '../schema/departments'
import type { extractedContactSchema, extractionResultSchema, IngestReport } from '../schema/extraction'
import type { Upload } from '../schema/types'
import { uploads } from '../schema/uploads'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { ContactsRepository } from '../repositories/contacts-repository'
import { DepartmentsRepository } from '../repositories/departments-repository'
import { liveCondition } from '../repositories/soft-delete'

type Extracted = z.output<typeof extractedContactSchema>
type Result = z.output<typeof extractionResultSchema>

const FIELDS = ['phone', 'role'] as const

/** A department label as a code: upper-case letters, digits and `_`, at most 50. */
function departmentCode(label: string): string {
  const code = label
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toUpperCase()
    .slice(0, 50)
  return code === '' ? 'DEPT' : code
}

const nameKey = (name: string) => name.trim().replace(/\s+/g, ' ').toLowerCase()
const mergeKey = (c: Extracted) => (c.email ? `e:${c.email.toLowerCase()}` : `n:${nameKey(c.name)}`)

/** Folds rows of one result that describe the same person: the first non-empty value of each field wins. */
function mergeDuplicates(rows: readonly Extracted[]): { merged: Extracted[]; duplicates: number } {
  const byKey = new Map<string, Extracted>()
  for (const row of rows) {
    const key = mergeKey(row)
    const seen = byKey.get(key)
    if (!seen) {
      byKey.set(key, { ...row })
      continue
    }
    for (const f of [...FIELDS, 'department', 'email'] as const) if (!seen[f] && row[f]) seen[f] = row[f]
    if (row.confidence) seen.confidence = { ...row.confidence, ...seen.confidence }
  }
  return { merged: [...byKey.values()], duplicates: rows.length - byKey.size }
}

/**
 * The body of `uploads.ingestExtraction`, run inside one tenant transaction: the upload is locked, the
 * result stored, departments created or reused by code, contacts merged and batch-inserted, the upload
 * marked completed. Idempotent: the same result twice creates nothing the second time.
 */
export async function ingestValidResult(
  runtime: TenantRuntime,
  uploadId: string,
  result: Result,
): Promise<IngestReport> {
  const org = runtime.organizationId
  const [upload] = await runtime.read((db) =>
    db
      .select()
      .from(uploads)
      .where(and(eq(uploads.organizationId, org), eq(uploads.id, uploadId), liveCondition(uploads.deletedAt)))
      .for('update'),
  )
  if (!upload) throw new NotFoundError('uploads', uploadId)

  const { merged, duplicates } = mergeDuplicates(result.contacts)

  // Departments: reuse a live one with the code (or the same name), create the rest in one batch.
  const labels = [...new Set(merged.map((c) => c.department).filter((d): d is string => !!d))]
  const departmentRepo = new DepartmentsRepository(runtime)
  const codes = [...new Set(labels.map(departmentCode))]
  const existingDepartments = codes.length
    ? await runtime.read((db) =>
        db
          .select({ id: departments.id, code: departments.code, name: departments.name })
          .from(departments)
          .where(
            and(
              eq(departments.organizationId, org),
              liveCondition(departments.deletedAt),
              sql`(${departments.code} = any(${sql.param(codes)}) or lower(${departments.name}) = any(${sql.param(labels.map((l) => l.toLowerCase()))}))`,
            ),
          ),
      )
    : []
  const departmentByLabel = new Map<string, string>()
  const missing = new Map<string, string>()
  for (const label of labels) {
    const found =
      existingDepartments.find((d) => d.code === departmentCode(label)) ??
      existingDepartments.find((d) => d.name.toLowerCase() === label.toLowerCase())
    if (found) departmentByLabel.set(label, found.id)
    else if (!missing.has(departmentCode(label))) missing.set(departmentCode(label), label)
  }
  const created = missing.size
    ? await departmentRepo.createMany([...missing].map(([code, label]) => ({ code, name: label.slice(0, 200) })))
    : []
  for (const label of labels) {
    if (!departmentByLabel.has(label)) {
      const d = created.find((c) => c.code === departmentCode(label))
      if (d) departmentByLabel.set(label, d.id)
    }
  }

  // Contacts already in the production: matched by e-mail, or by name when there is no e-mail.
  const emails = merged.filter((c) => c.email).map((c) => c.email!.toLowerCase())
  const names = merged.filter((c) => !c.email).map((c) => nameKey(c.name))
  const existing =
    emails.length || names.length
      ? await runtime.read((db) =>
          db
            .select()
            .from(contacts)
            .where(
              and(
                eq(contacts.organizationId, org),
                eq(contacts.productionId, upload.productionId),
                liveCondition(contacts.deletedAt),
                sql`(lower(${contacts.email}::text) = any(${sql.param(emails)}) or (${contacts.email} is null and lower(regexp_replace(trim(${contacts.name}), '\\s+', ' ', 'g')) = any(${sql.param(names)})))`,
              ),
            ),
        )
      : []
  const existingByKey = new Map(
    existing.map((c) => [c.email ? `e:${c.email.toLowerCase()}` : `n:${nameKey(c.name)}`, c] as const),
  )

  const contactRepo = new ContactsRepository(runtime)
  const toInsert = []
  let updated = 0
  let unchanged = 0
  for (const c of merged) {
    const departmentId = c.department ? (departmentByLabel.get(c.department) ?? null) : null
    const confidence = Math.round((c.confidence?.name ?? result.confidence) * 100) / 100
    const current = existingByKey.get(mergeKey(c))
    if (!current) {
      toInsert.push({
        productionId: upload.productionId,
        uploadId: upload.id,
        departmentId,
        name: c.name,
        email: c.email ?? null,
        phone: c.phone ?? null,
        role: c.role ?? null,
        extractionConfidence: confidence,
        metadata: c.confidence ? { extraction: { confidence: c.confidence } } : {},
      })
      continue
    }
    // Complete what is missing; never overwrite what someone already has.
    const patch: Record<string, unknown> = {}
    if (!current.phone && c.phone) patch.phone = c.phone
    if (!current.role && c.role) patch.role = c.role
    if (!current.departmentId && departmentId) patch.departmentId = departmentId
    if (Object.keys(patch).length === 0) {
      unchanged++
      continue
    }
    await contactRepo.update(current.id, patch)
    updated++
  }
  const inserted = toInsert.length ? await contactRepo.createMany(toInsert, { returning: 'count' }) : 0

  const [done] = await runtime.write({
    entity: 'uploads',
    operation: 'update',
    ids: [upload.id],
    values: [],
    statement: async (db) =>
      (await db
        .update(uploads)
        .set({
          status: 'completed',
          extractionResult: result,
          extractionConfidence: Math.round(result.confidence * 100) / 100,
          error: null,
          processedAt: sql`now()`,
        })
        .where(and(eq(uploads.organizationId, org), eq(uploads.id, upload.id)))
        .returning()) as Record<string, unknown>[],
  })
  return {
    upload: done as Upload,
    contactsCreated: inserted,
    contactsUpdated: updated,
    contactsUnchanged: unchanged,
    duplicatesMerged: duplicates,
    departmentsCreated: created.length,
  }
}
