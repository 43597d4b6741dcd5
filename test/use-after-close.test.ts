import { describe, expect, it } from 'vitest'
import { createDatabase, type Database } from '../src/client/create-database'
import { isCallsheetDbError } from '../src/errors'
import { createTestDatabase } from '../src/testing'
import { describeEachEngine, type TestEngine } from './harness/engines'

/** What every use after close() must be: the typed, never retryable DATABASE_CLOSED, and nothing sent. */
async function expectClosed(label: string, use: () => Promise<unknown>): Promise<void> {
  const error: unknown = await use().then(
    () => new Error(`${label}: resolved after close()`),
    (e: unknown) => e,
  )
  expect(isCallsheetDbError(error, 'DATABASE_CLOSED'), `${label}: ${String(error)}`).toBe(true)
  expect(isCallsheetDbError(error) && error.retryable, label).toBe(false)
}

/** Every entry point of a `Database`, each used once after close(). */
async function expectEveryUseRefused(db: Database, organizationId: string): Promise<void> {
  const tenant = db.tenant(organizationId)
  await expectClosed('tenant read', () => tenant.departments.findMany())
  await expectClosed('tenant write', () => tenant.departments.create({ name: 'Camera', code: 'CAM' }))
  await expectClosed('tenant transaction', () => tenant.transaction((tx) => tx.departments.count()))
  await expectClosed('organizations.create', () => db.organizations.create({ name: 'Late', slug: 'late' }))
  await expectClosed('organizations.findMany', () => db.organizations.findMany())
  await expectClosed('apiKeys.verify', () =>
    db.apiKeys.verify(`csk_${organizationId.replace(/-/g, '')}_${'0'.repeat(64)}`),
  )
  await expectClosed('maintenance', () => db.maintenance.ensureAuditPartitions())
  await expectClosed('monitoring', () => db.monitoring.tableSizes())
}

describeEachEngine('use after close()', (engine: () => TestEngine) => {
  it('raises DatabaseClosedError (DATABASE_CLOSED, not retryable) for every operation, and close() stays idempotent', async () => {
    const e = engine()
    const primary = e.pglite ?? e.url
    if (primary === undefined) throw new Error('engine has no target')
    const db = createDatabase({ primary, ...(e.ownerUrl === undefined ? {} : { admin: e.ownerUrl }) })
    const org = await db.organizations.create({ name: 'Closing', slug: `closing-${Date.now()}` })
    await db.tenant(org.id).departments.findMany()
    await db.organizations.findMany()
    await db.close()
    await expectEveryUseRefused(db, org.id)
    await db.close()
    // A PGlite passed in stays open for its owner.
    if (e.pglite) expect((await e.pglite.query('select 1 as one')).rows).toEqual([{ one: 1 }])
  })
})

describe('use after close() of a test database', () => {
  it('raises DatabaseClosedError, not PGlite\'s "PGlite is closed"', async () => {
    const db = await createTestDatabase()
    const org = await db.organizations.create({ name: 'Closing', slug: 'closing' })
    await db.close()
    await expectEveryUseRefused(db, org.id)
    await db.close()
  })
})
