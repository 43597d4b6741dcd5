import { expect } from 'vitest'
import type { Database } from '../../../src/client/create-database'
import { isCallsheetDbError } from '../../../src/errors'
import type { Contact } from '../../../src/schema/types'
import type { TenantClient, TenantRepositories } from '../../../src/client/tenant-client'
import { Model, similarity, type ExpectedAudit, type PatchInput, type Prediction, type RowInput } from './model'
import { PRODUCTIONS_PER_TENANT, TENANTS, type Deleted, type Op, type Ref, type RowSpec, type WriteOp } from './ops'

/** How often the whole state of the touched tenants is compared with the model. */
export type CheckLevel = 'step' | 'sequence'

/** The real side of one sequence: fresh organizations, each with its productions. */
interface World {
  readonly orgIds: string[]
  readonly tenants: TenantClient[]
  /** productionIds[tenant][index] */
  readonly productionIds: string[][]
  /** Per tenant, every contact id it ever issued — committed, purged or rolled back — as targets. */
  readonly knownIds: string[][]
  model: Model
}

let worldCounter = 0
/** Audit rows are read with an explicit range: `to` defaults to the JS clock, which may trail the database's. */
const AUDIT_FROM = new Date(Date.now() - 3_600_000)
const auditTo = () => new Date(Date.now() + 3_600_000)

/** The contacts every tenant starts with (so that updates, conflicts and cross-tenant ids have targets). */
const SEED_ROWS: readonly RowInput[] = [
  { production: 0, foreign: false, name: 'Jon Smith', role: 'Focus Puller', email: 'jon@crew.example' },
  { production: 0, foreign: false, name: 'Bob Stone', role: null, email: 'bob@crew.example' },
  { production: 1, foreign: false, name: 'Cara Mendes', role: 'Grip', email: null },
  // Soft-deleted right away: a restore target, and its e-mail is free for a live row (then restore conflicts).
  { production: 0, foreign: false, name: 'Dev Patel', role: null, email: 'ann@crew.example' },
]
const SEED_DELETED = 3

/**
 * Creates `TENANTS` organizations, each with `PRODUCTIONS_PER_TENANT` productions and the seed contacts
 * (one transaction per tenant), and the model of them.
 */
async function createWorld(db: Database): Promise<World> {
  worldCounter++
  const model = new Model(TENANTS)
  const orgIds: string[] = []
  const tenants: TenantClient[] = []
  const productionIds: string[][] = []
  const knownIds: string[][] = []
  for (let t = 0; t < TENANTS; t++) {
    const slug = `model-${process.pid}-${worldCounter}-${t}`
    const org = await db.organizations.create({ name: `Model ${worldCounter} ${t}`, slug })
    const tenant = db.tenant(org.id, { requestId: `model-${worldCounter}` })
    const { productions, contacts, uploads } = await tenant.transaction(async (tx) => {
      const productions = (
        await tx.productions.createMany(
          Array.from({ length: PRODUCTIONS_PER_TENANT }, (_, p) => ({ title: `P${p}` })),
          { returning: 'ids' },
        )
      ).map(String)
      const contacts = (
        await tx.contacts.createMany(
          SEED_ROWS.map((r) => ({
            productionId: productions[r.production],
            name: r.name,
            role: r.role,
            email: r.email,
          })) as never,
          { returning: 'ids' },
        )
      ).map(String)
      await tx.contacts.softDelete(contacts[SEED_DELETED] as string)
      // One upload per production: they only go and come back with it.
      const uploads: string[] = []
      for (const [p, productionId] of productions.entries()) {
        const upload = await tx.uploads.create({
          productionId,
          fileName: `p${p}.pdf`,
          mimeType: 'application/pdf',
          sizeBytes: 1,
          checksumSha256: 'a'.repeat(64),
          storageKey: `model/${worldCounter}/${t}/${p}.pdf`,
        })
        uploads.push(upload.id)
      }
      return { productions, contacts, uploads }
    })
    orgIds.push(org.id)
    tenants.push(tenant)
    productionIds.push(productions)
    knownIds.push(contacts)
    model.applyCreate(t, SEED_ROWS, contacts)
    model.applySoftDelete(t, contacts[SEED_DELETED] as string)
    uploads.forEach((id, p) => model.applyCreateUpload(t, p, id))
  }
  return { orgIds, tenants, productionIds, knownIds, model }
}

/** Runs one sequence against a fresh world, checking each step and the whole state at the end. */
export async function runSequence(db: Database, ops: readonly Op[], level: CheckLevel): Promise<void> {
  const world = await createWorld(db)
  for (const [i, op] of ops.entries()) {
    try {
      const touched = await runOp(world, op)
      if (level === 'step') for (const t of touched) await checkTenantRows(world, t, false)
    } catch (error) {
      throw new Error(`step ${i} of ${ops.length} (${JSON.stringify(op)}) failed: ${String(error)}`, { cause: error })
    }
  }
  try {
    await checkAll(world)
  } catch (error) {
    throw new Error(`final state check failed: ${String(error)}`, { cause: error })
  }
}

function resolveRef(world: World, model: Model, actor: number, ref: Ref): string {
  const own = world.knownIds[actor] as string[]
  const inState = (deleted: 'exclude' | 'only') => model.rows(actor, deleted).map((c) => c.id)
  const pool =
    ref.owner === 'other'
      ? world.knownIds.filter((_, t) => t !== actor).flat()
      : ref.owner === 'missing'
        ? []
        : ref.owner === 'self'
          ? own
          : inState(ref.owner === 'live' ? 'exclude' : 'only')
  const fallback = ref.owner === 'live' || ref.owner === 'deleted' ? own : []
  const from = pool.length > 0 ? pool : fallback
  return from.length === 0 ? ref.missingId : (from[ref.pick % from.length] as string)
}

/**
 * The production a production op acts on: one in the state it needs (live to delete, deleted to restore)
 * when the actor has one, so that cascades and their restores happen often; else the op's own index,
 * which then gives NOT_FOUND.
 */
function resolveProduction(model: Model, actor: number, op: { kind: string; production: number }): number {
  const deleting = op.kind === 'productionSoftDelete'
  const fits = Array.from({ length: PRODUCTIONS_PER_TENANT }, (_, p) => p).filter(
    (p) => Boolean(model.productionDeleted[actor]?.[p]) !== deleting,
  )
  return fits.length > 0 ? (fits[op.production % fits.length] as number) : op.production
}

function resolveRow(world: World, actor: number, spec: RowSpec): { input: Record<string, unknown>; model: RowInput } {
  const foreign = spec.bad === 'foreign'
  const owner = foreign ? (actor + 1) % TENANTS : actor
  const name = spec.bad === 'name' ? '' : spec.name
  const email = spec.bad === 'email' ? 'not-an-email' : spec.email
  const input: Record<string, unknown> = {
    productionId: world.productionIds[owner]?.[spec.production],
    name,
    ...(spec.role === undefined ? {} : { role: spec.role }),
    ...(email === undefined ? {} : { email }),
  }
  return { input, model: { production: spec.production, foreign, name, role: spec.role, email } }
}

/** The model's view of a contact row, to compare with what the database returned. */
function view(
  world: World,
  c: {
    tenant: number
    production: number
    name: string
    role: string | null
    email: string | null
    deleted: boolean
    deletedWith: number | null
    id: string
  },
) {
  return {
    id: c.id,
    organizationId: world.orgIds[c.tenant],
    productionId: world.productionIds[c.tenant]?.[c.production],
    name: c.name,
    role: c.role,
    email: c.email,
    deleted: c.deleted,
    deletedWith: c.deletedWith === null ? null : world.productionIds[c.tenant]?.[c.deletedWith],
  }
}

function actual(row: Contact) {
  return {
    id: row.id,
    organizationId: row.organizationId,
    productionId: row.productionId,
    name: row.name,
    role: row.role,
    email: row.email,
    deleted: row.deletedAt !== null,
    deletedWith: row.deletedWith,
  }
}

/** Outcomes per operation kind (`create:ok`, `update:UNIQUE_VIOLATION`, …): proof the sequences reach each case. */
export const outcomes = new Map<string, number>()
const tally = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1)

/** Awaits `work` and checks it against the prediction; returns its value when it was to succeed. */
async function expectOutcome<T>(
  kind: string,
  prediction: Prediction,
  work: () => Promise<T>,
): Promise<{ value: T } | undefined> {
  tally(`${kind}:${prediction.ok ? 'ok' : prediction.codes.join('|')}`)
  let value: T
  try {
    value = await work()
  } catch (error) {
    if (prediction.ok) throw new Error(`expected success, got ${describeError(error)}`, { cause: error })
    const codes = prediction.codes
    if (!codes.some((code) => isCallsheetDbError(error, code))) {
      throw new Error(`expected an error ${codes.join(' or ')}, got ${describeError(error)}`, { cause: error })
    }
    return undefined
  }
  if (!prediction.ok) throw new Error(`expected an error ${prediction.codes.join(' or ')}, but it succeeded`)
  return { value }
}

function describeError(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown }
  return `${String(e?.code)}: ${String(e?.message)}`
}

/**
 * Runs one write through `repos` (a tenant or a transaction), predicting with and updating `model`.
 * Returns the tenants whose rows it may have touched.
 */
async function runWrite(
  world: World,
  repos: TenantRepositories,
  model: Model,
  actor: number,
  op: WriteOp,
  issued: string[],
): Promise<void> {
  const contacts = repos.contacts
  switch (op.kind) {
    case 'create':
    case 'createMany': {
      const specs = op.kind === 'create' ? [op.row] : op.rows
      const rows = specs.map((s) => resolveRow(world, actor, s))
      const prediction = model.predictCreate(
        actor,
        rows.map((r) => r.model),
      )
      const result = await expectOutcome(op.kind, prediction, async () =>
        op.kind === 'create'
          ? [await contacts.create(rows[0]?.input as never)]
          : await contacts.createMany(rows.map((r) => r.input) as never),
      )
      if (!result) return
      const created = result.value as Contact[]
      expect(created).toHaveLength(rows.length)
      const ids = created.map((c) => c.id)
      for (const id of ids) {
        expect(world.knownIds.flat()).not.toContain(id)
        expect(issued).not.toContain(id)
      }
      issued.push(...ids)
      model.applyCreate(
        actor,
        rows.map((r) => r.model),
        ids,
      )
      for (const c of created) expect(actual(c)).toEqual(view(world, model.contacts.get(c.id)!))
      return
    }
    case 'update': {
      const id = resolveRef(world, model, actor, op.ref)
      const patch: PatchInput = op.patch
      const prediction = model.predictUpdate(actor, id, patch)
      const result = await expectOutcome(op.kind, prediction, () => contacts.update(id, patch))
      if (!result) return
      model.applyUpdate(actor, id, patch)
      expect(actual(result.value)).toEqual(view(world, model.contacts.get(id)!))
      return
    }
    case 'softDelete': {
      const id = resolveRef(world, model, actor, op.ref)
      const result = await expectOutcome(op.kind, model.predictSoftDelete(actor, id), () => contacts.softDelete(id))
      if (!result) return
      model.applySoftDelete(actor, id)
      expect(actual(result.value)).toEqual(view(world, model.contacts.get(id)!))
      return
    }
    case 'restore': {
      const id = resolveRef(world, model, actor, op.ref)
      const result = await expectOutcome(op.kind, model.predictRestore(actor, id), () => contacts.restore(id))
      if (!result) return
      model.applyRestore(actor, id)
      expect(actual(result.value)).toEqual(view(world, model.contacts.get(id)!))
      return
    }
    case 'purge': {
      const id = resolveRef(world, model, actor, op.ref)
      const result = await expectOutcome(op.kind, model.predictPurge(actor, id), () => contacts.purge(id))
      if (!result) return
      model.applyPurge(actor, id)
      return
    }
    case 'productionSoftDelete':
    case 'productionRestore': {
      const production = resolveProduction(model, actor, op)
      const id = world.productionIds[actor]?.[production] as string
      const deleting = op.kind === 'productionSoftDelete'
      const prediction = deleting
        ? model.predictProductionSoftDelete(actor, production)
        : model.predictProductionRestore(actor, production)
      const result = await expectOutcome(op.kind, prediction, () =>
        deleting ? repos.productions.softDelete(id) : repos.productions.restore(id),
      )
      if (!result) return
      expect(result.value.deletedAt !== null).toBe(deleting)
      if (deleting) model.applyProductionSoftDelete(actor, production)
      else model.applyProductionRestore(actor, production)
      return
    }
  }
}

/** Whether a write predicted to fail would abort a transaction (a database error, not one raised before SQL). */
function abortsTransaction(prediction: Prediction): boolean {
  return !prediction.ok && prediction.codes.some((c) => c !== 'NOT_FOUND' && c !== 'VALIDATION_FAILED')
}

function predictWrite(world: World, model: Model, actor: number, op: WriteOp): Prediction {
  switch (op.kind) {
    case 'create':
      return model.predictCreate(actor, [resolveRow(world, actor, op.row).model])
    case 'createMany':
      return model.predictCreate(
        actor,
        op.rows.map((r) => resolveRow(world, actor, r).model),
      )
    case 'update':
      return model.predictUpdate(actor, resolveRef(world, model, actor, op.ref), op.patch)
    case 'softDelete':
      return model.predictSoftDelete(actor, resolveRef(world, model, actor, op.ref))
    case 'restore':
      return model.predictRestore(actor, resolveRef(world, model, actor, op.ref))
    case 'purge':
      return model.predictPurge(actor, resolveRef(world, model, actor, op.ref))
    case 'productionSoftDelete':
      return model.predictProductionSoftDelete(actor, resolveProduction(model, actor, op))
    case 'productionRestore':
      return model.predictProductionRestore(actor, resolveProduction(model, actor, op))
  }
}

class Rollback extends Error {}

/** Runs one operation; returns the tenants whose state should be re-checked. */
async function runOp(world: World, op: Op): Promise<number[]> {
  const tenant = world.tenants[op.actor] as TenantClient
  // Per step the actor's rows are compared; a cross-tenant write that changed another tenant would show
  // in that tenant's rows and audit trail at the end of the sequence.
  const touched = [op.actor]
  switch (op.kind) {
    case 'create':
    case 'createMany':
    case 'update':
    case 'softDelete':
    case 'restore':
    case 'purge':
    case 'productionSoftDelete':
    case 'productionRestore': {
      const issued: string[] = []
      await runWrite(world, tenant, world.model, op.actor, op, issued)
      world.knownIds[op.actor]?.push(...issued)
      return touched
    }
    case 'transaction': {
      const draft = world.model.clone()
      const issued: string[] = []
      const work = tenant.transaction(async (tx) => {
        for (const w of op.ops) {
          // A statement error aborts the transaction: only writes that succeed, or fail before any SQL, go in.
          if (abortsTransaction(predictWrite(world, draft, op.actor, w))) continue
          await runWrite(world, tx, draft, op.actor, w, issued)
        }
        // Inside, the transaction sees its own writes.
        for (const id of issued) {
          const c = draft.visible(op.actor, id, 'include')
          const row = await tx.contacts.findById(id, { deleted: 'include' })
          expect(row && actual(row)).toEqual(c && view(world, c))
        }
        expect(await tx.contacts.count({ deleted: 'include' })).toBe(draft.rows(op.actor, 'include').length)
        if (!op.commit) throw new Rollback('roll back')
      })
      if (op.commit) {
        await work
        world.model = draft
      } else {
        await expect(work).rejects.toBeInstanceOf(Rollback)
      }
      tally(`transaction:${op.commit ? 'commit' : 'rollback'}:${issued.length > 0 ? 'wrote' : 'empty'}`)
      // Rolled-back ids stay as targets: they must be "not found" from now on.
      world.knownIds[op.actor]?.push(...issued)
      return touched
    }
    case 'findById': {
      const id = resolveRef(world, world.model, op.actor, op.ref)
      const options = op.deleted === undefined ? undefined : { deleted: op.deleted }
      const row = await tenant.contacts.findById(id, options)
      const c = world.model.visible(op.actor, id, op.deleted ?? 'exclude')
      tally(`findById:${op.ref.owner}:${c ? 'found' : 'undefined'}`)
      if (row) expect(row.organizationId).toBe(world.orgIds[op.actor])
      expect(row && actual(row)).toEqual(c && view(world, c))
      return []
    }
    case 'findMany': {
      const page = await tenant.contacts.findMany(findOptions(world, op.actor, op.deleted, op.production))
      expect(page.nextCursor).toBeNull()
      for (const row of page.rows) expect(row.organizationId).toBe(world.orgIds[op.actor])
      expect(sortById(page.rows.map(actual))).toEqual(
        sortById(world.model.rows(op.actor, op.deleted ?? 'exclude', op.production).map((c) => view(world, c))),
      )
      return []
    }
    case 'count': {
      const options = findOptions(world, op.actor, op.deleted, op.production)
      delete (options as { limit?: number }).limit
      const n = await tenant.contacts.count(options as never)
      expect(n).toBe(world.model.rows(op.actor, op.deleted ?? 'exclude', op.production).length)
      return []
    }
    case 'search': {
      const productionId = op.production === undefined ? undefined : world.productionIds[op.actor]?.[op.production]
      const hits = await tenant.contacts.search(op.text, { limit: op.limit, ...(productionId ? { productionId } : {}) })
      tally(`search:${hits.length > 0 ? 'hits' : 'none'}`)
      for (const h of hits) expect(h.organizationId).toBe(world.orgIds[op.actor])
      checkSearch(world, op.actor, op.text, op.limit, op.production, hits)
      return []
    }
  }
}

function findOptions(world: World, actor: number, deleted: Deleted, production: number | undefined) {
  const productionId = production === undefined ? undefined : world.productionIds[actor]?.[production]
  return {
    limit: 1000,
    ...(deleted === undefined ? {} : { deleted }),
    ...(productionId === undefined ? {} : { where: { productionId } }),
  }
}

const sortById = <T extends { id: string }>(rows: T[]): T[] => [...rows].sort((a, b) => (a.id < b.id ? -1 : 1))

const THRESHOLD = 0.3

/** Live rows whose name is trigram-similar to `text`, best first then by id, as pg_trgm ranks them. */
function checkSearch(
  world: World,
  actor: number,
  text: string,
  limit: number,
  production: number | undefined,
  hits: (Contact & { score: number })[],
): void {
  const candidates = world.model.rows(actor, 'exclude', production).map((c) => ({ c, score: similarity(c.name, text) }))
  // pg_trgm compares in float4: a score within rounding of the threshold could go either way.
  const borderline = candidates.some(({ score }) => Math.abs(score - THRESHOLD) < 1e-6)
  const expected = candidates
    .filter(({ score }) => score >= THRESHOLD)
    .sort((a, b) => (Math.abs(a.score - b.score) > 1e-6 ? b.score - a.score : a.c.id < b.c.id ? -1 : 1))
    .slice(0, limit)
  for (const h of hits) {
    const c = world.model.visible(actor, h.id)
    expect(c, `search hit ${h.id} is not a live contact of the tenant`).toBeDefined()
    expect(actual(h)).toEqual(view(world, c!))
    expect(h.score).toBeCloseTo(similarity(c!.name, text), 5)
  }
  if (!borderline) expect(hits.map((h) => h.id)).toEqual(expected.map((e) => e.c.id))
}

/** The tenant's rows (all of them, deleted included) equal the model's; `withCount`: the live count too. */
async function checkTenantRows(world: World, t: number, withCount: boolean): Promise<void> {
  const tenant = world.tenants[t] as TenantClient
  const page = await tenant.contacts.findMany({ deleted: 'include', limit: 1000 })
  for (const row of page.rows) expect(row.organizationId).toBe(world.orgIds[t])
  expect(sortById(page.rows.map(actual))).toEqual(sortById(world.model.rows(t, 'include').map((c) => view(world, c))))
  if (withCount) expect(await tenant.contacts.count()).toBe(world.model.rows(t).length)
  const uploads = await tenant.uploads.findMany({ deleted: 'include', limit: 1000 })
  expect(
    sortById(
      uploads.rows.map((u) => ({
        id: u.id,
        organizationId: u.organizationId,
        productionId: u.productionId,
        deleted: u.deletedAt !== null,
        deletedWith: u.deletedWith,
      })),
    ),
  ).toEqual(
    sortById(
      world.model.uploadRows(t).map((u) => ({
        id: u.id,
        organizationId: world.orgIds[t],
        productionId: world.productionIds[t]?.[u.production],
        deleted: u.deleted,
        deletedWith: u.deletedWith === null ? null : world.productionIds[t]?.[u.deletedWith],
      })),
    ),
  )
}

/**
 * Everything, for every tenant: rows, live count, one other tenant's id not found, the audit trail; for
 * tenant 0 (the busiest) also paging by name.
 */
async function checkAll(world: World): Promise<void> {
  for (let t = 0; t < TENANTS; t++) {
    const tenant = world.tenants[t] as TenantClient
    await checkTenantRows(world, t, true)

    if (t === 0) {
      // Paging by name, three at a time: each live row once, in (name, id) order.
      const paged: string[] = []
      let cursor: string | undefined
      for (let guard = 0; guard < 100; guard++) {
        const page = await tenant.contacts.findMany({ orderBy: 'name', limit: 3, ...(cursor ? { cursor } : {}) })
        paged.push(...page.rows.map((r) => r.id))
        if (!page.nextCursor) break
        cursor = page.nextCursor
      }
      const byName = world.model
        .rows(t)
        .sort((a, b) => (a.name !== b.name ? (a.name < b.name ? -1 : 1) : a.id < b.id ? -1 : 1))
        .map((c) => c.id)
      expect(paged).toEqual(byName)
    }

    // The next tenant's newest id, live, deleted, purged or rolled back, is never found here.
    const foreign = world.knownIds[(t + 1) % TENANTS]?.at(-1)
    if (foreign) expect(await tenant.contacts.findById(foreign, { deleted: 'include' })).toBeUndefined()

    await checkAudit(world, t)
  }
}

/** Exactly one audit row per committed change of a contact or an upload, with the right action and values. */
async function checkAudit(world: World, t: number): Promise<void> {
  await checkAuditOf(world, t, 'contacts', world.model.audit[t] as ExpectedAudit[])
  await checkAuditOf(world, t, 'uploads', world.model.uploadAudit[t] as ExpectedAudit[])
}

async function checkAuditOf(
  world: World,
  t: number,
  entityType: 'contacts' | 'uploads',
  expected: readonly ExpectedAudit[],
): Promise<void> {
  const tenant = world.tenants[t] as TenantClient
  const page = await tenant.auditLogs.findMany({ from: AUDIT_FROM, to: auditTo(), entityType, limit: 1000 })
  expect(page.nextCursor).toBeNull()
  const rows = [...page.rows].reverse() // oldest first
  for (const row of rows) expect(row.organizationId).toBe(world.orgIds[t])
  expect(rows.length, `${entityType} audit rows of the tenant`).toBe(expected.length)

  const group = <T extends { entityId: string }>(list: readonly T[]) => {
    const map = new Map<string, T[]>()
    for (const item of list) map.set(item.entityId, [...(map.get(item.entityId) ?? []), item])
    return map
  }
  const actualBy = group(rows)
  const expectedBy = group(expected)
  expect([...actualBy.keys()].sort()).toEqual([...expectedBy.keys()].sort())
  for (const [id, want] of expectedBy) {
    const got = actualBy.get(id) ?? []
    expect(
      got.map((r) => r.action),
      `audit actions of ${id}`,
    ).toEqual(want.map((w) => w.action))
    want.forEach((w, i) => {
      const row = got[i]!
      const oldValues = row.oldValues as Record<string, unknown> | null
      const newValues = row.newValues as Record<string, unknown> | null
      switch (w.action) {
        case 'insert':
          expect(oldValues).toBeNull()
          expect(newValues).toMatchObject({ ...w.newValues, id, organization_id: world.orgIds[t] })
          break
        case 'update':
          expect({ oldValues, newValues }).toEqual({ oldValues: w.oldValues, newValues: w.newValues })
          break
        case 'soft_delete': {
          // Taken along by its production's soft delete: tagged with that production.
          const tag = w.tagged ? { deleted_with: null } : {}
          expect(oldValues).toEqual({ deleted_at: null, ...tag })
          expect(Object.keys(newValues ?? {}).sort()).toEqual(Object.keys({ deleted_at: 0, ...tag }).sort())
          expect(newValues?.deleted_at).not.toBeNull()
          if (w.tagged) expect(newValues?.deleted_with).not.toBeNull()
          break
        }
        case 'restore': {
          const tag = w.tagged ? { deleted_with: null } : {}
          expect(Object.keys(oldValues ?? {}).sort()).toEqual(Object.keys({ deleted_at: 0, ...tag }).sort())
          expect(oldValues?.deleted_at).not.toBeNull()
          if (w.tagged) expect(oldValues?.deleted_with).not.toBeNull()
          expect(newValues).toEqual({ deleted_at: null, ...tag })
          break
        }
        case 'purge':
          expect(oldValues).toMatchObject({ ...w.oldValues, id, organization_id: world.orgIds[t] })
          expect(newValues).toBeNull()
          break
      }
    })
  }
}
