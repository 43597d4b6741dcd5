/**
 * The in-memory model of the contacts of a few tenants, for the model-based tests (test/model.test.ts).
 * It predicts what each operation does — its result, its error code, the audit rows it writes — from the
 * documented rules only: tenant scoping, soft delete, live-unique e-mail per production (case-insensitive),
 * validation before any SQL, "an update records only the columns that changed", and a production's soft
 * delete taking its live contacts along, tagged, so that its restore brings back exactly those.
 */

/** One contact as the model sees it. */
export interface ModelContact {
  readonly id: string
  readonly tenant: number
  readonly production: number
  name: string
  role: string | null
  email: string | null
  deleted: boolean
  /** The production (index) whose soft delete took this contact along; null when deleted on its own or live. */
  deletedWith: number | null
}

/** One upload as the model sees it: it only goes and comes back with its production. */
export interface ModelUpload {
  readonly id: string
  readonly tenant: number
  readonly production: number
  deleted: boolean
  deletedWith: number | null
}

/** The audit actions of the contacts table. */
type AuditActionName = 'insert' | 'update' | 'soft_delete' | 'restore' | 'purge'

/** One audit row the model expects (values in the database's snake_case). */
export interface ExpectedAudit {
  readonly action: AuditActionName
  readonly entityId: string
  /** insert/purge: a subset the row's values must contain; update: exactly the changed columns. */
  readonly oldValues: Record<string, unknown> | null
  readonly newValues: Record<string, unknown> | null
  /** soft_delete / restore: the cascade tag (`deleted_with`) changed too. */
  readonly tagged?: boolean
}

/** The error codes an operation may end with (a set when the model cannot tell which comes first). */
type ExpectedErrorCode = 'VALIDATION_FAILED' | 'NOT_FOUND' | 'UNIQUE_VIOLATION' | 'FOREIGN_KEY_VIOLATION' | 'CONFLICT'

export type Prediction = { readonly ok: true } | { readonly ok: false; readonly codes: readonly ExpectedErrorCode[] }

/** The row a create sends (already resolved to a production index; `foreign` = another tenant's production). */
export interface RowInput {
  readonly production: number
  readonly foreign: boolean
  readonly name: string
  readonly role?: string | null
  readonly email?: string | null
}

/** The columns an update may change. */
export interface PatchInput {
  readonly name?: string
  readonly role?: string | null
  readonly email?: string | null
}

const EMAIL = /^[^@\s]+@[^@\s]+$/
const validName = (name: string) => name.length >= 1 && name.length <= 200
const validEmail = (email: string | null | undefined) =>
  email === undefined || email === null || (email.length <= 320 && EMAIL.test(email))

const ok: Prediction = { ok: true }
const fail = (...codes: ExpectedErrorCode[]): Prediction => ({ ok: false, codes })

/** The model of all tenants' contacts and their audit trails. */
export class Model {
  /** Live and soft-deleted contacts of every tenant, in creation order (purged ones are removed). */
  readonly contacts: Map<string, ModelContact>
  /** Per tenant, the audit rows expected so far, oldest first. */
  readonly audit: ExpectedAudit[][]
  /** Per tenant, which productions are soft-deleted. */
  readonly productionDeleted: boolean[][]
  /** Every tenant's uploads (one per production, made with the world). */
  readonly uploads: Map<string, ModelUpload>
  /** Per tenant, the audit rows of its uploads expected so far, oldest first. */
  readonly uploadAudit: ExpectedAudit[][]

  constructor(
    readonly tenantCount: number,
    contacts: Map<string, ModelContact> = new Map(),
    audit?: ExpectedAudit[][],
    productionDeleted?: boolean[][],
    uploads: Map<string, ModelUpload> = new Map(),
    uploadAudit?: ExpectedAudit[][],
  ) {
    this.contacts = contacts
    this.audit = audit ?? Array.from({ length: tenantCount }, () => [])
    this.productionDeleted = productionDeleted ?? Array.from({ length: tenantCount }, () => [])
    this.uploads = uploads
    this.uploadAudit = uploadAudit ?? Array.from({ length: tenantCount }, () => [])
  }

  /** A deep copy: a transaction works on one and it replaces the model only if it commits. */
  clone(): Model {
    const contacts = new Map<string, ModelContact>()
    for (const [id, c] of this.contacts) contacts.set(id, { ...c })
    return new Model(
      this.tenantCount,
      contacts,
      this.audit.map((a) => [...a]),
      this.productionDeleted.map((p) => [...p]),
      new Map([...this.uploads].map(([id, u]) => [id, { ...u }])),
      this.uploadAudit.map((a) => [...a]),
    )
  }

  /** The tenant's contacts matching the soft-delete filter, in creation order. */
  rows(tenant: number, deleted: 'exclude' | 'include' | 'only' = 'exclude', production?: number): ModelContact[] {
    return [...this.contacts.values()].filter(
      (c) =>
        c.tenant === tenant &&
        (production === undefined || c.production === production) &&
        (deleted === 'include' || (deleted === 'only' ? c.deleted : !c.deleted)),
    )
  }

  /** The row `id` as the tenant sees it with this filter (another tenant's row is never seen). */
  visible(tenant: number, id: string, deleted: 'exclude' | 'include' | 'only' = 'exclude'): ModelContact | undefined {
    const c = this.contacts.get(id)
    if (!c || c.tenant !== tenant) return undefined
    if (deleted === 'exclude' && c.deleted) return undefined
    if (deleted === 'only' && !c.deleted) return undefined
    return c
  }

  /** Whether another live contact of the tenant's production holds this e-mail (case-insensitive). */
  private emailTaken(tenant: number, production: number, email: string, except?: string): boolean {
    const key = email.toLowerCase()
    for (const c of this.contacts.values()) {
      if (c.id === except || c.deleted || c.tenant !== tenant || c.production !== production) continue
      if (c.email !== null && c.email.toLowerCase() === key) return true
    }
    return false
  }

  predictCreate(tenant: number, rows: readonly RowInput[]): Prediction {
    if (rows.some((r) => !validName(r.name) || !validEmail(r.email))) return fail('VALIDATION_FAILED')
    const foreign = rows.some((r) => r.foreign)
    const seen = new Set<string>()
    let duplicate = false
    for (const r of rows) {
      if (r.email === undefined || r.email === null) continue
      // The unique index is (organization, production, e-mail): two rows naming the same foreign
      // production with one e-mail clash with each other too, whatever the foreign key says.
      const key = `${r.foreign ? 'foreign:' : ''}${r.production}|${r.email.toLowerCase()}`
      if (seen.has(key) || (!r.foreign && this.emailTaken(tenant, r.production, r.email))) duplicate = true
      seen.add(key)
    }
    // One INSERT statement: which constraint the server reports first is not the model's business.
    if (foreign && duplicate) return fail('FOREIGN_KEY_VIOLATION', 'UNIQUE_VIOLATION')
    if (foreign) return fail('FOREIGN_KEY_VIOLATION')
    if (duplicate) return fail('UNIQUE_VIOLATION')
    return ok
  }

  applyCreate(tenant: number, rows: readonly RowInput[], ids: readonly string[]): void {
    rows.forEach((r, i) => {
      const id = ids[i] as string
      const c: ModelContact = {
        id,
        tenant,
        production: r.production,
        name: r.name,
        role: r.role ?? null,
        email: r.email ?? null,
        deleted: false,
        deletedWith: null,
      }
      this.contacts.set(id, c)
      this.log(tenant, {
        action: 'insert',
        entityId: id,
        oldValues: null,
        newValues: { name: c.name, role: c.role, email: c.email, deleted_at: null },
      })
    })
  }

  predictUpdate(tenant: number, id: string, patch: PatchInput): Prediction {
    if (Object.keys(patch).length === 0) return fail('VALIDATION_FAILED')
    if (patch.name !== undefined && !validName(patch.name)) return fail('VALIDATION_FAILED')
    if (!validEmail(patch.email)) return fail('VALIDATION_FAILED')
    const c = this.visible(tenant, id)
    if (!c) return fail('NOT_FOUND')
    if (typeof patch.email === 'string' && this.emailTaken(tenant, c.production, patch.email, c.id)) {
      return fail('UNIQUE_VIOLATION')
    }
    return ok
  }

  applyUpdate(tenant: number, id: string, patch: PatchInput): void {
    const c = this.visible(tenant, id) as ModelContact
    const oldValues: Record<string, unknown> = {}
    const newValues: Record<string, unknown> = {}
    for (const key of ['name', 'role', 'email'] as const) {
      const value = patch[key]
      if (value === undefined || value === c[key]) continue
      oldValues[key] = c[key]
      newValues[key] = value
    }
    Object.assign(c, patch)
    // A no-op update records nothing.
    if (Object.keys(newValues).length > 0) this.log(tenant, { action: 'update', entityId: id, oldValues, newValues })
  }

  predictSoftDelete(tenant: number, id: string): Prediction {
    return this.visible(tenant, id) ? ok : fail('NOT_FOUND')
  }

  applySoftDelete(tenant: number, id: string): void {
    const c = this.visible(tenant, id) as ModelContact
    c.deleted = true
    this.log(tenant, { action: 'soft_delete', entityId: id, oldValues: { deleted_at: null }, newValues: null })
  }

  /** Whether restoring these rows together would give two live rows of a production one e-mail. */
  private restoreClashes(tenant: number, rows: readonly ModelContact[]): boolean {
    const seen = new Set<string>()
    for (const c of rows) {
      if (c.email === null) continue
      const key = `${c.production}|${c.email.toLowerCase()}`
      if (seen.has(key) || this.emailTaken(tenant, c.production, c.email, c.id)) return true
      seen.add(key)
    }
    return false
  }

  predictProductionSoftDelete(tenant: number, production: number): Prediction {
    return this.productionDeleted[tenant]?.[production] ? fail('NOT_FOUND') : ok
  }

  /** The tenant's uploads, in creation order. */
  uploadRows(tenant: number): ModelUpload[] {
    return [...this.uploads.values()].filter((u) => u.tenant === tenant)
  }

  applyCreateUpload(tenant: number, production: number, id: string): void {
    this.uploads.set(id, { id, tenant, production, deleted: false, deletedWith: null })
    ;(this.uploadAudit[tenant] as ExpectedAudit[]).push({
      action: 'insert',
      entityId: id,
      oldValues: null,
      newValues: { deleted_at: null },
    })
  }

  /** The production's live contacts and uploads go with it, tagged, each with its own audit row. */
  applyProductionSoftDelete(tenant: number, production: number): void {
    this.cascade(tenant, production, true)
  }

  predictProductionRestore(tenant: number, production: number): Prediction {
    if (!this.productionDeleted[tenant]?.[production]) return fail('NOT_FOUND')
    // The contacts it brings back may clash with live ones created since: the whole restore fails.
    return this.restoreClashes(tenant, this.taggedWith(tenant, production)) ? fail('UNIQUE_VIOLATION', 'CONFLICT') : ok
  }

  /** Exactly the contacts and uploads its soft delete took along come back. */
  applyProductionRestore(tenant: number, production: number): void {
    this.cascade(tenant, production, false)
  }

  /** A production's soft delete tags and takes its live rows along; its restore brings back exactly those. */
  private cascade(tenant: number, production: number, deleting: boolean): void {
    ;(this.productionDeleted[tenant] as boolean[])[production] = deleting
    const tables: [readonly (ModelContact | ModelUpload)[], ExpectedAudit[]][] = [
      [this.rows(tenant, 'include', production), this.audit[tenant] as ExpectedAudit[]],
      [this.uploadRows(tenant), this.uploadAudit[tenant] as ExpectedAudit[]],
    ]
    for (const [rows, log] of tables) {
      for (const r of rows) {
        const moves = r.production === production && (deleting ? !r.deleted : r.deleted && r.deletedWith === production)
        if (!moves) continue
        r.deleted = deleting
        r.deletedWith = deleting ? production : null
        log.push(
          deleting
            ? { action: 'soft_delete', entityId: r.id, oldValues: { deleted_at: null }, newValues: null, tagged: true }
            : { action: 'restore', entityId: r.id, oldValues: null, newValues: { deleted_at: null }, tagged: true },
        )
      }
    }
  }

  private taggedWith(tenant: number, production: number): ModelContact[] {
    return this.rows(tenant, 'only', production).filter((c) => c.deletedWith === production)
  }

  predictRestore(tenant: number, id: string): Prediction {
    const c = this.visible(tenant, id, 'only')
    if (!c) return fail('NOT_FOUND')
    if (c.email !== null && this.emailTaken(tenant, c.production, c.email, c.id)) return fail('CONFLICT')
    return ok
  }

  applyRestore(tenant: number, id: string): void {
    const c = this.visible(tenant, id, 'only') as ModelContact
    // Restored on its own, a contact leaves the cascade of the production that took it along.
    const tagged = c.deletedWith !== null
    c.deleted = false
    c.deletedWith = null
    this.log(tenant, { action: 'restore', entityId: id, oldValues: null, newValues: { deleted_at: null }, tagged })
  }

  predictPurge(tenant: number, id: string): Prediction {
    return this.visible(tenant, id, 'include') ? ok : fail('NOT_FOUND')
  }

  applyPurge(tenant: number, id: string): void {
    const c = this.visible(tenant, id, 'include') as ModelContact
    this.contacts.delete(id)
    this.log(tenant, {
      action: 'purge',
      entityId: id,
      oldValues: { name: c.name, role: c.role, email: c.email },
      newValues: null,
    })
  }

  private log(tenant: number, entry: ExpectedAudit): void {
    ;(this.audit[tenant] as ExpectedAudit[]).push(entry)
  }
}

/** pg_trgm's trigram set: lower-cased alphanumeric words, each padded with two spaces before, one after. */
function trigrams(text: string): Set<string> {
  const out = new Set<string>()
  for (const word of text.toLowerCase().split(/[^a-z0-9]+/)) {
    if (word === '') continue
    const padded = `  ${word} `
    for (let i = 0; i + 3 <= padded.length; i++) out.add(padded.slice(i, i + 3))
  }
  return out
}

/** pg_trgm's `similarity(a, b)`: shared trigrams over all distinct trigrams. */
export function similarity(a: string, b: string): number {
  const ta = trigrams(a)
  const tb = trigrams(b)
  if (ta.size === 0 || tb.size === 0) return 0
  let common = 0
  for (const t of ta) if (tb.has(t)) common++
  return common / (ta.size + tb.size - common)
}
