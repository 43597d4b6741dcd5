import type { Database } from '../client/create-database'
import type { TenantClient } from '../client/tenant-client'
import { TENANT_TABLE_NAMES } from '../schema/table-names'
import { TENANT_TABLE, type TenantTable } from '../schema/tenant-table'
import { getTableName } from 'drizzle-orm'
import { seedTenant, type SeededTenant } from './fixtures'

/** A's ids, handed to the probe as the ids an attacker in tenant B would try. */
export interface ForeignIds {
  readonly organizationId: string
  readonly productionId: string
  readonly contactId: string
  readonly departmentId: string
  readonly productionIds: readonly string[]
  readonly contactIds: readonly string[]
  readonly departmentIds: readonly string[]
  /** A's rows of the app's tables (`options.tables`, seeded by `options.seed`), by table name. */
  readonly appIds: Readonly<Record<string, readonly string[]>>
}

/** What the probe of {@link expectTenantIsolation} gets. */
export interface IsolationProbeInput {
  /** A client of tenant B: run the app's code path as B with this (or build your own from `organizationId`). */
  readonly as: TenantClient
  /** Tenant B's organization id (for app code that takes an org id and builds its own client). */
  readonly organizationId: string
  /** The database, for app code that takes it. */
  readonly db: Database
  /** Tenant A's ids: feed them to the code path as if B had guessed or stolen them. */
  readonly foreign: ForeignIds
  /** Everything seeded for B (its own rows, for code paths that need valid ids of their own). */
  readonly self: SeededTenant
}

/** Options of {@link expectTenantIsolation}. */
export interface TenantIsolationOptions {
  /**
   * Productions per seeded tenant.
   * @default 2
   */
  readonly productions?: number
  /**
   * Contacts per production.
   * @default 3
   */
  readonly contactsPerProduction?: number
  /**
   * The app's own tenant tables (made with `tenantTable`): A's rows in them are snapshotted (any change
   * while the probe runs is a breach) and their ids are markers (returning one is a leak).
   */
  readonly tables?: readonly TenantTable[]
  /** Seeds the app's rows for each tenant (A, then B), after the library's rows. */
  readonly seed?: (tenant: TenantClient, seeded: SeededTenant) => Promise<void> | void
}

/** What {@link expectTenantIsolation} found when the isolation held. */
export interface TenantIsolationReport {
  /** What the probe returned (`undefined` if it threw). */
  readonly result: unknown
  /**
   * What the probe threw, if it did: a `NotFoundError` for a foreign id is usually the correct
   * outcome, so a throw is not a failure by itself — assert on it if your code path must not throw.
   */
  readonly error: unknown
  /** The two seeded tenants. */
  readonly a: SeededTenant
  readonly b: SeededTenant
}

/** Thrown by {@link expectTenantIsolation}: the probe saw or changed tenant A's data. */
export class TenantIsolationError extends Error {
  /** Where A's values appeared in what the probe returned or threw, e.g. `result.rows[0].id: <uuid>`. */
  readonly leaks: readonly string[]
  /** A's rows that were added, removed or updated while the probe ran. */
  readonly changes: readonly string[]

  constructor(leaks: readonly string[], changes: readonly string[]) {
    const parts: string[] = []
    if (leaks.length > 0) parts.push(`the probe, run as tenant B, returned tenant A's data:\n  ${leaks.join('\n  ')}`)
    if (changes.length > 0) parts.push(`tenant A's rows changed while the probe ran:\n  ${changes.join('\n  ')}`)
    super(`Tenant isolation broken: ${parts.join('\n')}`)
    this.name = 'TenantIsolationError'
    this.leaks = leaks
    this.changes = changes
  }
}

type Snapshot = Map<string, string>

// Every tenant table, from the schema, by its tenant-client property (api_keys → apiKeys), so a new table is
// snapshotted without another edit. audit_logs is append-only and read by time range: the audit suites check it.
type SnapshotTable = 'users' | 'departments' | 'productions' | 'contacts' | 'uploads' | 'apiKeys'
const TABLES = TENANT_TABLE_NAMES.filter((name) => name !== 'audit_logs').map(
  (name) => name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()) as SnapshotTable,
)

async function snapshot(db: Database, tenant: TenantClient, appTables: readonly TenantTable[]): Promise<Snapshot> {
  const rows: Snapshot = new Map()
  const org = await db.organizations.findById(tenant.organizationId, { deleted: 'include' })
  rows.set(`organizations/${tenant.organizationId}`, org ? stamp(org) : 'missing')
  for (const table of TABLES) {
    let cursor: string | undefined
    do {
      const options = { limit: 1000, ...(cursor ? { cursor } : {}) }
      // API keys are never soft-deleted (revoked instead): their reads take no `deleted` filter.
      const page =
        table === 'apiKeys'
          ? await tenant.apiKeys.findMany(options)
          : await tenant[table].findMany({ ...options, deleted: 'include' })
      for (const row of page.rows) rows.set(`${table}/${row.id}`, stamp(row))
      cursor = page.nextCursor ?? undefined
    } while (cursor)
  }
  for (const [name, rowIds] of Object.entries(await appRows(tenant, appTables))) {
    for (const [id, row] of rowIds) rows.set(`${name}/${id}`, stamp(row))
  }
  return rows
}

type AppRow = { id: string; updatedAt: Date; deletedAt?: Date | null }

/** Every row of the tenant in each app table (soft-deleted ones included), by table name. */
async function appRows(
  tenant: TenantClient,
  tables: readonly TenantTable[],
): Promise<Record<string, Map<string, AppRow>>> {
  const out: Record<string, Map<string, AppRow>> = {}
  for (const table of tables) {
    const rows = new Map<string, AppRow>()
    const repository = tenant.table(table) as unknown as {
      findMany(o: object): Promise<{ rows: AppRow[]; nextCursor: string | null }>
    }
    const deleted = table[TENANT_TABLE].softDelete ? { deleted: 'include' } : {}
    let cursor: string | undefined
    do {
      const page = await repository.findMany({ limit: 1000, ...deleted, ...(cursor ? { cursor } : {}) })
      for (const row of page.rows) rows.set(row.id, row)
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    out[getTableName(table)] = rows
  }
  return out
}

function stamp(row: { updatedAt: Date; deletedAt?: Date | null; revokedAt?: Date | null }): string {
  const gone =
    'revokedAt' in row
      ? `revoked_at=${row.revokedAt?.toISOString() ?? 'null'}`
      : `deleted_at=${row.deletedAt?.toISOString() ?? 'null'}`
  return `updated_at=${row.updatedAt.toISOString()} ${gone}`
}

function diff(before: Snapshot, after: Snapshot): string[] {
  const changes: string[] = []
  for (const [key, was] of before) {
    const now = after.get(key)
    if (now === undefined) changes.push(`${key}: removed`)
    else if (now !== was) changes.push(`${key}: ${was} -> ${now}`)
  }
  for (const key of after.keys()) if (!before.has(key)) changes.push(`${key}: added`)
  return changes
}

/** Every string that identifies tenant A: ids, the organization's slug and name, contacts' e-mails. */
function markersOf(a: SeededTenant): Map<string, string> {
  const markers = new Map<string, string>()
  markers.set(a.organization.id, 'organization id')
  markers.set(a.organization.slug, 'organization slug')
  markers.set(a.organization.name, 'organization name')
  for (const d of a.departments) markers.set(d.id, 'department id')
  for (const p of a.productions) markers.set(p.id, 'production id')
  for (const c of a.contacts) {
    markers.set(c.id, 'contact id')
    if (c.email) markers.set(c.email, 'contact e-mail')
  }
  return markers
}

/** Walks any value (objects, arrays, Maps, Sets, errors, cycles) for strings containing a marker. */
function scan(value: unknown, markers: Map<string, string>, path: string, seen: WeakSet<object>, out: string[]): void {
  if (typeof value === 'string') {
    const lower = value.toLowerCase()
    for (const [marker, what] of markers) {
      if (lower.includes(marker.toLowerCase())) out.push(`${path}: ${what} ${marker}`)
    }
    return
  }
  if (value === null || typeof value !== 'object') return
  if (seen.has(value)) return
  seen.add(value)
  if (value instanceof Date) return
  if (value instanceof Map) {
    for (const [k, v] of value) {
      scan(k, markers, `${path}.<key>`, seen, out)
      scan(v, markers, `${path}.get(${typeof k === 'string' ? JSON.stringify(k) : '…'})`, seen, out)
    }
    return
  }
  if (value instanceof Set || Array.isArray(value)) {
    let i = 0
    for (const v of value) scan(v, markers, `${path}[${i++}]`, seen, out)
    return
  }
  if (value instanceof Error) {
    scan(value.message, markers, `${path}.message`, seen, out)
    scan(value.cause, markers, `${path}.cause`, seen, out)
  }
  for (const [k, v] of Object.entries(value)) {
    scan(k, markers, `${path}.<key>`, seen, out)
    scan(v, markers, `${path}.${k}`, seen, out)
  }
}

/**
 * Checks that one of the app's code paths keeps tenants apart. Seeds two tenants, A and B, then runs
 * `probe` as tenant B with A's ids, and throws {@link TenantIsolationError} if
 * - what the probe returned contains any of A's ids, slug, name or contacts' e-mails (deep scan of
 *   objects, arrays, Maps, Sets; substring match, case-insensitive), or what it threw contains any of
 *   them other than the ids in `foreign` (an error may echo the id it was asked for), or
 * - any of A's rows was added, removed or updated (`updated_at`, `deleted_at`) while it ran.
 *
 * Framework-agnostic: it only throws. Seeds go into `db` (use a test database; the probe must not
 * change A's data for other reasons, and nothing else should write to A meanwhile).
 *
 * @throws TenantIsolationError listing every leak and change.
 *
 * @example
 * ```ts
 * it('GET /contacts/:id is tenant-safe', async () => {
 *   await expectTenantIsolation(db, ({ as, foreign }) => getContactHandler(as, foreign.contactId))
 * })
 * ```
 * With the app's own tables: `options.tables` snapshots them and `options.seed` fills them for each tenant.
 * ```ts
 * await expectTenantIsolation(db, ({ as, foreign }) => getCallTime(as, foreign.appIds.call_times![0]!), {
 *   tables: [callTimes],
 *   seed: (tenant, seeded) =>
 *     tenant.table(callTimes).create({ contactId: seeded.contacts[0]!.id, callAt: new Date() }),
 * })
 * ```
 */
export async function expectTenantIsolation(
  db: Database,
  probe: (input: IsolationProbeInput) => unknown,
  options: TenantIsolationOptions = {},
): Promise<TenantIsolationReport> {
  const counts = { productions: options.productions ?? 2, contactsPerProduction: options.contactsPerProduction ?? 3 }
  if (counts.productions < 1 || counts.contactsPerProduction < 1) {
    throw new RangeError('expectTenantIsolation: productions and contactsPerProduction must be at least 1')
  }
  const marker = Math.random().toString(36).slice(2, 10)
  const a = await seedTenant(db, { ...counts, seed: 101, label: `isolation-a-${marker}` })
  const b = await seedTenant(db, { ...counts, seed: 202, label: `isolation-b-${marker}` })
  const appTables = options.tables ?? []
  for (const table of appTables) {
    if ((table as { [TENANT_TABLE]?: unknown } | undefined)?.[TENANT_TABLE] === undefined)
      throw new TypeError('expectTenantIsolation: options.tables takes tables made with tenantTable()')
  }
  if (options.seed) {
    await options.seed(a.tenant, a)
    await options.seed(b.tenant, b)
  }
  const aApp = await appRows(a.tenant, appTables)
  const first = <T>(rows: readonly T[], what: string): T => {
    const row = rows[0]
    if (row === undefined) throw new Error(`expectTenantIsolation: no ${what} seeded`)
    return row
  }
  const foreign: ForeignIds = {
    organizationId: a.organization.id,
    productionId: first(a.productions, 'production').id,
    contactId: first(a.contacts, 'contact').id,
    departmentId: first(a.departments, 'department').id,
    productionIds: a.productions.map((p) => p.id),
    contactIds: a.contacts.map((c) => c.id),
    departmentIds: a.departments.map((d) => d.id),
    appIds: Object.fromEntries(Object.entries(aApp).map(([name, rows]) => [name, [...rows.keys()]])),
  }

  const before = await snapshot(db, a.tenant, appTables)
  let result: unknown
  let error: unknown
  try {
    result = await probe({ as: b.tenant, organizationId: b.organization.id, db, foreign, self: b })
  } catch (thrown) {
    error = thrown
  }
  const after = await snapshot(db, a.tenant, appTables)

  const markers = markersOf(a)
  for (const [name, rows] of Object.entries(aApp)) for (const id of rows.keys()) markers.set(id, `${name} id`)
  const leaks: string[] = []
  scan(result, markers, 'result', new WeakSet(), leaks)
  if (error !== undefined) {
    // An error may echo the ids it was given ("contact <id> not found"): only what B was not given counts.
    const given = new Set<string>([
      foreign.organizationId,
      ...foreign.productionIds,
      ...foreign.contactIds,
      ...foreign.departmentIds,
      ...Object.values(foreign.appIds).flat(),
    ])
    const unseen = new Map([...markers].filter(([value]) => !given.has(value)))
    scan(error, unseen, 'thrown', new WeakSet(), leaks)
  }
  const changes = diff(before, after)
  if (leaks.length > 0 || changes.length > 0) throw new TenantIsolationError(leaks, changes)
  return { result, error, a, b }
}
