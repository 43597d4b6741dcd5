/**
 * The scratch app's test files for bench/test-database.ts: 7 files as a new user writes them from the
 * docs (docs/testing.md) — one database per file in beforeAll, seedTenant, expectTenantIsolation, and in
 * two files a database per test in beforeEach — with no vitest configuration at all.
 */
const perFile = (n: number): string => `import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, expectTenantIsolation, seedTenant, type TestDatabase } from '@callsheet/db/testing'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(() => db.close())

describe('feature ${n}', () => {
  it('seeds a tenant and reads it back', async () => {
    const a = await seedTenant(db, { productions: 2, contactsPerProduction: 5 })
    expect(await a.tenant.contacts.count()).toBe(10)
  })

  it('keeps tenants apart', async () => {
    await seedTenant(db, { seed: ${n + 100} })
    await expectTenantIsolation(db, ({ as, foreign }) => as.contacts.findById(foreign.contactId))
  })

  it('searches contacts', async () => {
    const a = await seedTenant(db, { seed: ${n + 200}, productions: 1, contactsPerProduction: 3 })
    const first = a.contacts[0]!
    const hits = await a.tenant.contacts.search(first.name, { limit: 3 })
    expect(hits.map((h) => h.id)).toContain(first.id)
  })
})
`

const perTest = (n: number): string => `import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTestDatabase, seedTenant, type TestDatabase } from '@callsheet/db/testing'

let db: TestDatabase
beforeEach(async () => {
  db = await createTestDatabase()
})
afterEach(() => db.close())

describe('feature ${n}, a database per test', () => {
  for (const k of [1, 2, 3]) {
    it('starts empty (' + k + ')', async () => {
      expect((await db.organizations.findMany()).rows).toEqual([])
      const a = await seedTenant(db, { seed: k })
      expect(await a.tenant.productions.count()).toBeGreaterThan(0)
    })
  }
})
`

/** File name → text. */
export function testDatabaseSuiteFiles(): Record<string, string> {
  const files: Record<string, string> = {}
  for (let n = 1; n <= 5; n++) files[`feature-${n}.test.ts`] = perFile(n)
  for (let n = 6; n <= 7; n++) files[`feature-${n}.test.ts`] = perTest(n)
  return files
}
