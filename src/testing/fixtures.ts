import type { Database } from '../client/create-database'
import type { TenantContext } from '../unit-of-work/tenant-context'
import type { Contact, Department, Organization, Production } from '../schema/types'
import type { TenantClient } from '../client/tenant-client'

/** Options of {@link seedTenant}. */
export interface SeedTenantOptions {
  /**
   * Picks the names, titles and roles: the same seed gives the same data.
   * @default 1
   */
  readonly seed?: number
  /**
   * Productions to create, 0–50.
   * @default 2
   */
  readonly productions?: number
  /**
   * Contacts per production, 0–1000.
   * @default 5
   */
  readonly contactsPerProduction?: number
  /**
   * Departments to create, 1–10 (from a fixed list: Camera, Grip, Electric, …).
   * @default 4
   */
  readonly departments?: number
  /**
   * Prefix of the organization's slug (lower-case words joined by `-`); a counter per database is
   * appended so several seeds fit in one database.
   * @default 'seed'
   */
  readonly label?: string
  /** Audit context of the returned tenant client. */
  readonly context?: TenantContext
}

/** What {@link seedTenant} created. */
export interface SeededTenant {
  readonly organization: Organization
  /** A client of the organization (with `options.context`). */
  readonly tenant: TenantClient
  readonly departments: readonly Department[]
  readonly productions: readonly Production[]
  /** Every contact, production by production. */
  readonly contacts: readonly Contact[]
}

const DEPARTMENTS: readonly { name: string; code: string; roles: readonly string[] }[] = [
  { name: 'Camera', code: 'CAM', roles: ['Director of Photography', 'Camera Operator', '1st AC', '2nd AC', 'DIT'] },
  { name: 'Grip', code: 'GRP', roles: ['Key Grip', 'Best Boy Grip', 'Dolly Grip', 'Grip'] },
  { name: 'Electric', code: 'ELE', roles: ['Gaffer', 'Best Boy Electric', 'Electrician', 'Genny Operator'] },
  { name: 'Sound', code: 'SND', roles: ['Production Sound Mixer', 'Boom Operator', 'Sound Utility'] },
  { name: 'Art', code: 'ART', roles: ['Production Designer', 'Art Director', 'Set Decorator', 'Props Master'] },
  { name: 'Costume', code: 'COS', roles: ['Costume Designer', 'Costume Supervisor', 'Set Costumer'] },
  { name: 'Hair & Make-up', code: 'HMU', roles: ['Make-up Department Head', 'Key Hair Stylist', 'Make-up Artist'] },
  { name: 'Production', code: 'PRD', roles: ['Line Producer', 'Production Coordinator', 'Production Assistant'] },
  { name: 'Assistant Directors', code: 'AD', roles: ['1st AD', '2nd AD', '2nd 2nd AD'] },
  { name: 'Locations', code: 'LOC', roles: ['Location Manager', 'Key Assistant Location Manager', 'Location Scout'] },
]
const FIRST_NAMES = [
  'Ada',
  'Ben',
  'Carmen',
  'Dev',
  'Elena',
  'Femi',
  'Grace',
  'Hiro',
  'Ines',
  'Jonah',
  'Kofi',
  'Lena',
  'Mateo',
  'Nadia',
  'Omar',
  'Priya',
  'Quinn',
  'Rosa',
  'Sami',
  'Tove',
  'Uma',
  'Viktor',
  'Wen',
  'Yusuf',
  'Zoe',
]
const LAST_NAMES = [
  'Abara',
  'Berg',
  'Castillo',
  'Dubois',
  'Eriksen',
  'Fontaine',
  'Gallagher',
  'Haddad',
  'Ivanova',
  'Jensen',
  'Kowalski',
  'Lindqvist',
  'Moreau',
  'Nakamura',
  'Okafor',
  'Petrov',
  'Quinlan',
  'Rossi',
  'Santos',
  'Tanaka',
]
const TITLE_WORDS = [
  'Long',
  'Quiet',
  'Northern',
  'Last',
  'Silver',
  'Hollow',
  'Burning',
  'Distant',
  'Paper',
  'Winter',
  'Salt',
  'Glass',
]
const TITLE_NOUNS = ['Night', 'Harbour', 'Orchard', 'Signal', 'Road', 'Tide', 'Garden', 'Summer', 'Line', 'Crown']
const STATUSES = ['development', 'pre_production', 'production', 'post_production'] as const

/** mulberry32: a tiny deterministic PRNG (numbers in [0, 1)), enough to vary names by seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function pick<T>(rand: () => number, list: readonly T[]): T {
  const item = list[Math.floor(rand() * list.length)]
  if (item === undefined) throw new Error('empty list')
  return item
}

function intOption(value: number | undefined, fallback: number, min: number, max: number, name: string): number {
  const n = value ?? fallback
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`seedTenant: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
  return n
}

// Seeds per database, so two seedTenant calls on one database never collide on the slug.
const seedsPerDatabase = new WeakMap<Database, number>()

/**
 * Creates an organization with departments, productions and crew contacts through the public API,
 * with realistic film-crew names and roles chosen deterministically from `options.seed`.
 *
 * @throws RangeError for an out-of-range count; the library's errors if a write fails.
 *
 * @example
 * ```ts
 * const { tenant, productions, contacts } = await seedTenant(db, { productions: 3, contactsPerProduction: 10 })
 * expect(await tenant.contacts.count({ where: { productionId: productions[0]!.id } })).toBe(10)
 * ```
 */
export async function seedTenant(db: Database, options: SeedTenantOptions = {}): Promise<SeededTenant> {
  const seed = intOption(options.seed, 1, 0, 2 ** 32 - 1, 'seed')
  const productionCount = intOption(options.productions, 2, 0, 50, 'productions')
  const perProduction = intOption(options.contactsPerProduction, 5, 0, 1000, 'contactsPerProduction')
  const departmentCount = intOption(options.departments, 4, 1, DEPARTMENTS.length, 'departments')
  const label = options.label ?? 'seed'
  const rand = seededRandom(seed)

  const n = (seedsPerDatabase.get(db) ?? 0) + 1
  seedsPerDatabase.set(db, n)
  const slug = `${label}-${seed}-${n}`
  const company = `${pick(rand, LAST_NAMES)} & ${pick(rand, LAST_NAMES)} Pictures`
  const organization = await db.organizations.create({ name: `${company} (${slug})`, slug })
  const tenant = db.tenant(organization.id, options.context ?? { requestId: `seed-${slug}` })

  const departmentDefs = DEPARTMENTS.slice(0, departmentCount)
  const departments = await tenant.departments.createMany(
    departmentDefs.map((d, i) => ({ name: d.name, code: d.code, sortOrder: i + 1 })),
  )

  const productions: Production[] = []
  const contacts: Contact[] = []
  for (let p = 0; p < productionCount; p++) {
    const production = await tenant.productions.create({
      title: `The ${pick(rand, TITLE_WORDS)} ${pick(rand, TITLE_NOUNS)}`,
      code: `P${p + 1}`,
      status: pick(rand, STATUSES),
    })
    productions.push(production)
    if (perProduction === 0) continue
    const inputs = Array.from({ length: perProduction }, (_, c) => {
      const di = Math.floor(rand() * departmentDefs.length)
      const def = departmentDefs[di]
      const department = departments[di]
      if (!def || !department) throw new Error('seedTenant: department index out of range')
      const first = pick(rand, FIRST_NAMES)
      const last = pick(rand, LAST_NAMES)
      return {
        productionId: production.id,
        departmentId: department.id,
        name: `${first} ${last}`,
        // The index keeps e-mails unique within the production; the slug ties them to this tenant.
        email: `${first}.${last}.${c + 1}@${slug}.example`.toLowerCase(),
        phone: `+44 7700 9${String(Math.floor(rand() * 100_000)).padStart(5, '0')}`,
        role: pick(rand, def.roles),
      }
    })
    contacts.push(...(await tenant.contacts.createMany(inputs)))
  }
  return { organization, tenant, departments, productions, contacts }
}
