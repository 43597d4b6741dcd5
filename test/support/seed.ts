import { createHash, randomBytes } from 'node:crypto'
import type { SqlRunner } from '../harness/sql-runner'

/** The ids of one seeded organization's rows. */
export interface SeededTenant {
  organizationId: string
  userId: string
  departmentId: string
  productionId: string
  uploadId: string
  contactId: string
  apiKeyId: string
  auditId: string
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

/**
 * Seeds one organization with a row in every tenant table, as the owner (RLS does not bind a superuser
 * owner). `slug` must be unique per database.
 */
export async function seedTenant(db: SqlRunner, slug: string): Promise<SeededTenant> {
  const one = async (text: string, params: unknown[]): Promise<string> => {
    const [row] = await db.query<{ id: string }>(text, params)
    if (!row) throw new Error(`seed returned no row: ${text}`)
    return row.id
  }
  const organizationId = await one(`insert into organizations (name, slug) values ($1, $2) returning id`, [
    `Org ${slug}`,
    slug,
  ])
  const userId = await one(
    `insert into users (organization_id, email, name, role) values ($1, $2, 'Pat Producer', 'owner') returning id`,
    [organizationId, `pat@${slug}.example`],
  )
  const departmentId = await one(
    `insert into departments (organization_id, name, code) values ($1, 'Camera', 'CAM') returning id`,
    [organizationId],
  )
  const productionId = await one(
    `insert into productions (organization_id, title, code, status, created_by) values ($1, $2, 'P1', 'production', $3) returning id`,
    [organizationId, `The ${slug} Picture`, userId],
  )
  const uploadId = await one(
    `insert into uploads (organization_id, production_id, uploaded_by, file_name, mime_type, size_bytes, checksum_sha256, storage_key)
     values ($1, $2, $3, 'day-01.pdf', 'application/pdf', 1024, $4, $5) returning id`,
    [organizationId, productionId, userId, sha256(slug), `uploads/${slug}/day-01.pdf`],
  )
  const contactId = await one(
    `insert into contacts (organization_id, production_id, department_id, upload_id, name, email, role, extraction_confidence)
     values ($1, $2, $3, $4, 'Jon Smith', $5, 'Focus Puller', 0.87) returning id`,
    [organizationId, productionId, departmentId, uploadId, `jon@${slug}.example`],
  )
  const apiKeyId = await one(
    `insert into api_keys (organization_id, name, prefix, key_hash, created_by) values ($1, 'CI key', 'csk_test', $2, $3) returning id`,
    [organizationId, sha256(randomBytes(32).toString('hex')), userId],
  )
  const auditId = await one(
    `insert into audit_logs (organization_id, action, entity_type, entity_id) values ($1, 'insert', 'contacts', $2) returning id`,
    [organizationId, contactId],
  )
  return { organizationId, userId, departmentId, productionId, uploadId, contactId, apiKeyId, auditId }
}
