import { afterAll, describe, expect, it, vi } from 'vitest'
import { createDatabase } from '../src/client/create-database'
import { createPglite } from '../src/engine/pglite/create-pglite'
import { migrate } from '../src/migrations/migrate'
import { TenantProofs, tenantKeyOf, tenantProof } from '../src/engine/tenant-proof'
import { describeEachEngine } from './harness/engines'
import { TEST_SECRET } from './harness/secret'
import { asAppRole } from './harness/sql-runner'
import { seedTenant } from './support/seed'

describe('tenant proofs in Node', () => {
  it('are cached per organization until close to expiry: a unit pays a map lookup, not an HMAC', () => {
    vi.useFakeTimers({ now: new Date('2026-12-03T10:00:00Z') })
    try {
      const proofs = new TenantProofs(TEST_SECRET)
      const first = proofs.proof('0190a4c2-0000-7000-8000-000000000001')
      expect(first).toMatch(/^[0-9a-f]{16}\.\d+\.[0-9a-f]{64}$/)
      vi.advanceTimersByTime(299_000)
      expect(proofs.proof('0190a4c2-0000-7000-8000-000000000001')).toBe(first)
      vi.advanceTimersByTime(2_000)
      const renewed = proofs.proof('0190a4c2-0000-7000-8000-000000000001')
      expect(renewed).not.toBe(first)
      expect(proofs.proof('0190a4c2-0000-7000-8000-000000000002')).not.toBe(renewed)
    } finally {
      vi.useRealTimers()
    }
  })

  it('are empty without a secret or a tenant', () => {
    expect(new TenantProofs(undefined).proof('0190a4c2-0000-7000-8000-000000000001')).toBe('')
    expect(new TenantProofs(TEST_SECRET).proof('')).toBe('')
  })

  it('sign with a key derived from the secret: the stored key material is not the secret itself', () => {
    const key = tenantKeyOf(TEST_SECRET)
    expect(key.innerPad).toHaveLength(128)
    expect(key.outerPad).toHaveLength(128)
    expect(key.innerPad).not.toContain(Buffer.from(TEST_SECRET).toString('hex'))
    expect(tenantProof(TEST_SECRET, 'x', 1).split('.')[0]).toBe(key.id)
  })
})

describeEachEngine(
  'tenant proofs in the database',
  (engine) => {
    it('callsheet_tenant() computes the same HMAC as Node: the proven tenant sees its rows, a wrong one none', async () => {
      const a = await seedTenant(engine().admin, 'proof-a')
      const seen = await asAppRole(engine().admin, a.organizationId, (tx) =>
        tx.query<{ tenant: string; n: number }>(
          'select callsheet_tenant() as tenant, (select count(*)::int from departments) as n',
        ),
      )
      expect(seen).toEqual([{ tenant: a.organizationId, n: 1 }])
    })

    it('the key material is readable by the owner only', async () => {
      const [row] = await engine().admin.query<{ usage: boolean; select: boolean }>(
        `select has_schema_privilege('callsheet_app', 'callsheet_private', 'USAGE') as usage,
              has_table_privilege('callsheet_app', 'callsheet_private.tenant_keys', 'SELECT') as select`,
      )
      expect(row).toEqual({ usage: false, select: false })
    })
  },
  { citus: true },
)

describe('PGlite installs its own key', () => {
  const closing: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const close of closing) await close()
  })

  it('with no secret anywhere: a random one, and db.apiKeys.verify works as the first call', async () => {
    const saved = process.env.CALLSHEET_SECRET
    delete process.env.CALLSHEET_SECRET
    try {
      const pg = await createPglite()
      closing.push(() => pg.close())
      await migrate(pg)
      const [{ n } = { n: -1 }] = (
        await pg.query<{ n: number }>('select count(*)::int as n from callsheet_private.tenant_keys')
      ).rows
      expect(n).toBe(0)
      const setup = createDatabase({ primary: pg })
      const org = await setup.organizations.create({ name: 'Zero Setup', slug: 'zero-setup' })
      const key = await setup.tenant(org.id).apiKeys.create({ name: 'k', scopes: [] })
      // A second Database on the same PGlite shares its random secret; its first call is a verify.
      const other = createDatabase({ primary: pg })
      expect(await other.apiKeys.verify(key.plaintext)).toMatchObject({ organizationId: org.id })
      expect(await other.tenant(org.id).apiKeys.count()).toBe(1)
    } finally {
      process.env.CALLSHEET_SECRET = saved
    }
  })
})
