import { sql } from 'drizzle-orm'
import { bigint, check, foreignKey, index, jsonb, numeric, pgTable, text, uuid } from 'drizzle-orm/pg-core'
import {
  optionalTimestamp,
  organizationId,
  primaryId,
  tenantPrimaryKey,
  softDelete,
  tenantPolicy,
  timestamps,
} from './columns'
import { organizations } from './organizations'
import { productions } from './productions'
import { users } from './users'

/** Where an uploaded call sheet is in extraction. */
export const UPLOAD_STATUSES = ['pending', 'processing', 'completed', 'failed'] as const
export type UploadStatus = (typeof UPLOAD_STATUSES)[number]

/** One contact as the extractor saw it on a call sheet. */
export interface ExtractedContact {
  name: string
  email?: string | null
  phone?: string | null
  role?: string | null
  department?: string | null
  /** per-field confidence between 0 and 1 */
  confidence?: Partial<Record<'name' | 'email' | 'phone' | 'role' | 'department', number>>
}

/** What the extractor produced for one upload, stored verbatim on the upload. */
export interface ExtractionResult {
  contacts: ExtractedContact[]
  /** overall confidence between 0 and 1 */
  confidence: number
  extractor?: { name: string; version?: string }
  warnings?: string[]
}

/** Uploaded call-sheet files and the result of extracting contacts from them. */
export const uploads = pgTable(
  'uploads',
  {
    id: primaryId(),
    organizationId: organizationId(),
    productionId: uuid('production_id').notNull(),
    uploadedBy: uuid('uploaded_by'),
    fileName: text('file_name').notNull(),
    mimeType: text('mime_type').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    checksumSha256: text('checksum_sha256').notNull(),
    storageKey: text('storage_key').notNull(),
    status: text('status').$type<UploadStatus>().notNull().default('pending'),
    extractionResult: jsonb('extraction_result').$type<ExtractionResult>(),
    extractionConfidence: numeric('extraction_confidence', { precision: 3, scale: 2, mode: 'number' }),
    error: text('error'),
    processedAt: optionalTimestamp('processed_at'),
    ...timestamps(),
    ...softDelete(),
    /** The production whose soft delete took this row along; restoring it restores exactly these rows. */
    deletedWith: uuid('deleted_with'),
  },
  (t) => [
    tenantPrimaryKey('uploads', t),
    foreignKey({
      name: 'uploads_organization_fk',
      columns: [t.organizationId],
      foreignColumns: [organizations.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'uploads_production_fk',
      columns: [t.organizationId, t.productionId],
      foreignColumns: [productions.organizationId, productions.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'uploads_uploaded_by_fk',
      columns: [t.organizationId, t.uploadedBy],
      foreignColumns: [users.organizationId, users.id],
    }),
    index('uploads_production_idx').on(t.organizationId, t.productionId, t.createdAt),
    index('uploads_uploaded_by_idx').on(t.organizationId, t.uploadedBy),
    index('uploads_status_idx')
      .on(t.organizationId, t.status)
      .where(sql`${t.deletedAt} is null and ${t.status} in ('pending', 'processing')`),
    check('uploads_status_check', sql`${t.status} in ('pending', 'processing', 'completed', 'failed')`),
    check('uploads_size_check', sql`${t.sizeBytes} >= 0`),
    // Only a deleted row can carry the cascade tag of the parent whose soft delete took it along.
    check('uploads_deleted_with_only_deleted', sql`${t.deletedWith} is null or ${t.deletedAt} is not null`),
    check('uploads_checksum_format', sql`${t.checksumSha256} ~ '^[0-9a-f]{64}$'`),
    check(
      'uploads_confidence_range',
      sql`${t.extractionConfidence} is null or ${t.extractionConfidence} between 0 and 1`,
    ),
    check('uploads_file_name_length', sql`char_length(${t.fileName}) between 1 and 255`),
    check('uploads_mime_type_length', sql`char_length(${t.mimeType}) between 1 and 255`),
    check('uploads_storage_key_length', sql`char_length(${t.storageKey}) between 1 and 1024`),
    check('uploads_error_length', sql`${t.error} is null or char_length(${t.error}) <= 10000`),
    tenantPolicy(),
  ],
)
