import type { Database } from '../../src/client/create-database'
import type { TenantClient } from '../../src/client/tenant-client'
import type { ApiKey, Contact, Department, Organization, Production, Upload, User } from '../../src/schema/types'

/** One organization filled through the public API, with a row of every kind. */
export interface FilledTenant {
  readonly org: Organization
  readonly tenant: TenantClient
  readonly user: User
  readonly department: Department
  readonly production: Production
  readonly upload: Upload
  readonly contact: Contact
  readonly apiKey: ApiKey & { plaintext: string }
}

let counter = 0

/** Creates an organization and one row in every tenant table, through the library. */
export async function fillTenant(db: Database, label = 'org'): Promise<FilledTenant> {
  counter++
  const slug = `${label}-${counter}-${Math.random().toString(36).slice(2, 8)}`
  const org = await db.organizations.create({ name: `${label} ${counter}`, slug })
  const tenant = db.tenant(org.id, { requestId: `fill-${slug}` })
  const user = await tenant.users.create({ email: `owner@${slug}.example`, name: 'Olive Owner', role: 'owner' })
  const department = await tenant.departments.create({ name: 'Camera', code: 'CAM', sortOrder: 1 })
  const production = await tenant.productions.create({ title: `The ${label} Picture`, code: 'P1', createdBy: user.id })
  const upload = await tenant.uploads.create({
    productionId: production.id,
    uploadedBy: user.id,
    fileName: 'day-01.pdf',
    mimeType: 'application/pdf',
    sizeBytes: 1234,
    checksumSha256: 'a'.repeat(64),
    storageKey: `uploads/${slug}/day-01.pdf`,
  })
  const contact = await tenant.contacts.create({
    productionId: production.id,
    departmentId: department.id,
    uploadId: upload.id,
    name: 'Jon Smith',
    email: `jon@${slug}.example`,
    role: 'Focus Puller',
    extractionConfidence: 0.87,
  })
  const apiKey = await tenant.apiKeys.create({ name: 'extractor', scopes: ['uploads:write'], createdBy: user.id })
  return { org, tenant, user, department, production, upload, contact, apiKey }
}
