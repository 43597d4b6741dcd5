import { sql } from 'drizzle-orm'
import { check, foreignKey, index, jsonb, numeric, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { citext, organizationId, primaryId, tenantPrimaryKey, softDelete, tenantPolicy, timestamps } from './columns'
import { departments } from './departments'
import { organizations } from './organizations'
import { productions } from './productions'
import { uploads } from './uploads'

/** Free-form contact metadata (extractor hints, app fields). */
export type ContactMetadata = Record<string, unknown>

/** Crew and cast members of a production, typed in or extracted from a call sheet. */
export const contacts = pgTable(
  'contacts',
  {
    id: primaryId(),
    organizationId: organizationId(),
    productionId: uuid('production_id').notNull(),
    departmentId: uuid('department_id'),
    uploadId: uuid('upload_id'),
    name: text('name').notNull(),
    email: citext('email'),
    phone: text('phone'),
    role: text('role'),
    extractionConfidence: numeric('extraction_confidence', { precision: 3, scale: 2, mode: 'number' }),
    notes: text('notes'),
    metadata: jsonb('metadata').$type<ContactMetadata>().notNull().default({}),
    ...timestamps(),
    ...softDelete(),
    /** The production whose soft delete took this row along; restoring it restores exactly these rows. */
    deletedWith: uuid('deleted_with'),
  },
  (t) => [
    tenantPrimaryKey('contacts', t),
    foreignKey({
      name: 'contacts_organization_fk',
      columns: [t.organizationId],
      foreignColumns: [organizations.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'contacts_production_fk',
      columns: [t.organizationId, t.productionId],
      foreignColumns: [productions.organizationId, productions.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'contacts_department_fk',
      columns: [t.organizationId, t.departmentId],
      foreignColumns: [departments.organizationId, departments.id],
    }),
    foreignKey({
      name: 'contacts_upload_fk',
      columns: [t.organizationId, t.uploadId],
      foreignColumns: [uploads.organizationId, uploads.id],
    }),
    index('contacts_production_idx').on(t.organizationId, t.productionId, t.createdAt),
    index('contacts_department_idx').on(t.organizationId, t.departmentId),
    index('contacts_upload_idx').on(t.organizationId, t.uploadId),
    // The natural key createMany and extraction ingest merge on: one live contact per e-mail per
    // production (the same freelancer may work on several productions of an organization).
    uniqueIndex('contacts_email_live_key')
      .on(t.organizationId, t.productionId, t.email)
      .where(sql`${t.deletedAt} is null and ${t.email} is not null`),
    index('contacts_email_idx')
      .on(t.organizationId, t.email)
      .where(sql`${t.deletedAt} is null and ${t.email} is not null`),
    index('contacts_name_trgm_idx').using('gin', t.organizationId, t.name.op('gin_trgm_ops')),
    check(
      'contacts_confidence_range',
      sql`${t.extractionConfidence} is null or ${t.extractionConfidence} between 0 and 1`,
    ),
    check('contacts_name_length', sql`char_length(${t.name}) between 1 and 200`),
    // Only a deleted row can carry the cascade tag of the parent whose soft delete took it along.
    check('contacts_deleted_with_only_deleted', sql`${t.deletedWith} is null or ${t.deletedAt} is not null`),
    check(
      'contacts_email_format',
      sql`${t.email} is null or (char_length(${t.email}) <= 320 and ${t.email} ~ '^[^@[:space:]]+@[^@[:space:]]+$')`,
    ),
    check('contacts_phone_length', sql`${t.phone} is null or char_length(${t.phone}) <= 50`),
    check('contacts_role_length', sql`${t.role} is null or char_length(${t.role}) <= 200`),
    check('contacts_notes_length', sql`${t.notes} is null or char_length(${t.notes}) <= 10000`),
    tenantPolicy(),
  ],
)
