import { createInsertSchema, createSelectSchema, createUpdateSchema } from 'drizzle-zod'
import { z } from 'zod'
import { apiKeys } from './api-keys'
import { AUDIT_ACTIONS, auditLogs } from './audit-logs'
import { contacts } from './contacts'
import { departments } from './departments'
import { organizations } from './organizations'
import { PRODUCTION_STATUSES, productions } from './productions'
import { UPLOAD_STATUSES, uploads } from './uploads'
import { USER_ROLES, users } from './users'

// Refinements mirror the CHECK constraints, so bad input is refused before any SQL; the database
// still enforces every one of them on its own.
// A zod schema given whole (rather than a refining function) replaces drizzle-zod's, so defaulted and
// nullable columns must say .optional() / .nullish() themselves.
// citext is a custom column type, which drizzle-zod cannot map: the e-mail schema is given whole.
const email = z
  .string()
  .max(320)
  .regex(/^[^@\s]+@[^@\s]+$/, 'must be an e-mail address')
const nameText = (max: number) => (s: z.ZodString) => s.min(1).max(max)
const codeSchema = z.string().regex(/^[A-Za-z0-9_-]{1,50}$/, 'must be 1-50 letters, digits, _ or -')
const code = () => codeSchema

/** A JSON object of bounded size and depth: JSONB fields refuse nesting bombs and megabyte payloads. */
export const jsonObject = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const problem = jsonProblem(value)
  if (problem) ctx.addIssue({ code: 'custom', message: problem })
})

const MAX_JSON_DEPTH = 32
const MAX_JSON_BYTES = 64 * 1024

function jsonProblem(value: unknown): string | undefined {
  let depthExceeded = false
  const walk = (v: unknown, depth: number): void => {
    if (depthExceeded) return
    if (depth > MAX_JSON_DEPTH) {
      depthExceeded = true
      return
    }
    if (Array.isArray(v)) v.forEach((x) => walk(x, depth + 1))
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach((x) => walk(x, depth + 1))
  }
  walk(value, 0)
  if (depthExceeded) return `must not nest deeper than ${MAX_JSON_DEPTH} levels`
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    return 'must be JSON-serialisable'
  }
  if (text !== undefined && Buffer.byteLength(text) > MAX_JSON_BYTES)
    return `must be at most ${MAX_JSON_BYTES} bytes as JSON`
  return undefined
}
// PostgreSQL has no year 0 (ISO 8601 does): 0000-01-01 would reach the database and be refused there.
const isoDate = z.iso.date().refine((d) => !d.startsWith('0000'), 'must be a date from the year 1 on')

/** Organization rows as stored. */
export const organizationSelectSchema = createSelectSchema(organizations)
/** A new organization; `id`, timestamps and `deletedAt` are set by the library and the database. */
export const organizationInsertSchema = createInsertSchema(organizations, {
  name: nameText(200),
  slug: (s) => s.max(63).regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'must be lower-case words joined by -'),
  settings: jsonObject.optional(),
})
  .omit({ createdAt: true, updatedAt: true, deletedAt: true })
  .strict()
/** A partial organization update. */
export const organizationUpdateSchema = organizationInsertSchema.omit({ id: true }).partial().strict()

const tenantOwned = { organizationId: true, createdAt: true, updatedAt: true, deletedAt: true } as const

export const userSelectSchema = createSelectSchema(users)
/** A new user of the current organization (the organization comes from the tenant context). */
export const userInsertSchema = createInsertSchema(users, {
  email,
  name: nameText(200),
  role: z.enum(USER_ROLES).optional(),
})
  .omit(tenantOwned)
  .strict()
export const userUpdateSchema = userInsertSchema.omit({ id: true }).partial().strict()

export const departmentSelectSchema = createSelectSchema(departments)
export const departmentInsertSchema = createInsertSchema(departments, {
  name: nameText(200),
  code,
  sortOrder: z.number().int().min(-2147483648).max(2147483647).optional(),
})
  .omit(tenantOwned)
  .strict()
export const departmentUpdateSchema = departmentInsertSchema.omit({ id: true }).partial().strict()

export const productionSelectSchema = createSelectSchema(productions)
export const productionInsertSchema = createInsertSchema(productions, {
  title: nameText(300),
  code: codeSchema.nullish(),
  status: z.enum(PRODUCTION_STATUSES).optional(),
  startDate: isoDate.nullish(),
  endDate: isoDate.nullish(),
})
  .omit(tenantOwned)
  .strict()
  .refine((p) => !p.startDate || !p.endDate || p.endDate >= p.startDate, {
    message: 'endDate must not be before startDate',
    path: ['endDate'],
  })
export const productionUpdateSchema = createUpdateSchema(productions, {
  title: nameText(300),
  code: codeSchema.nullish(),
  status: z.enum(PRODUCTION_STATUSES).optional(),
  startDate: isoDate.nullish(),
  endDate: isoDate.nullish(),
})
  .omit({ ...tenantOwned, id: true })
  .strict()

export const contactSelectSchema = createSelectSchema(contacts)
export const contactInsertSchema = createInsertSchema(contacts, {
  name: nameText(200),
  email: email.nullish(),
  phone: z.string().max(50).nullish(),
  role: z.string().max(200).nullish(),
  notes: z.string().max(10_000).nullish(),
  extractionConfidence: z.number().min(0).max(1).nullish(),
  metadata: jsonObject.optional(),
})
  .omit({ ...tenantOwned, deletedWith: true })
  .strict()
export const contactUpdateSchema = contactInsertSchema.omit({ id: true }).partial().strict()

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex characters')

export const uploadSelectSchema = createSelectSchema(uploads)
export const uploadInsertSchema = createInsertSchema(uploads, {
  fileName: nameText(255),
  mimeType: nameText(255),
  sizeBytes: (s) => s.int().min(0),
  checksumSha256: sha256Hex,
  storageKey: nameText(1024),
  status: z.enum(UPLOAD_STATUSES).optional(),
  extractionConfidence: z.number().min(0).max(1).nullish(),
  error: z.string().max(10_000).nullish(),
})
  .omit({ ...tenantOwned, deletedWith: true })
  .strict()
export const uploadUpdateSchema = uploadInsertSchema.omit({ id: true }).partial().strict()

export const apiKeySelectSchema = createSelectSchema(apiKeys)
export const apiKeyInsertSchema = createInsertSchema(apiKeys, {
  name: nameText(200),
  prefix: (s) => s.regex(/^[A-Za-z0-9_]{4,32}$/),
  keyHash: sha256Hex,
  scopes: z.array(z.string().min(1).max(100)).max(64),
})
  .omit({ organizationId: true, createdAt: true, updatedAt: true })
  .strict()
// Revocation and last use are recorded by revoke() and verify(), never patched: un-revoking a key by
// update would bring a withdrawn credential back.
export const apiKeyUpdateSchema = apiKeyInsertSchema
  .pick({ name: true, scopes: true, expiresAt: true })
  .partial()
  .strict()

export const auditLogSelectSchema = createSelectSchema(auditLogs, { action: z.enum(AUDIT_ACTIONS) })
