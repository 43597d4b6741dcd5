// Installs the packed tarball into a scratch project and uses it the way users do, from ESM and CJS:
// the shipped drizzle/ folder must be found and migrate an in-memory database.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
const project = mkdtempSync(join(tmpdir(), 'callsheet-packed-'))
try {
  const tarball = resolve(
    run('npm', ['pack', '--silent', '--pack-destination', project], process.cwd()).trim().split('\n').pop(),
  )
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'packed-check', private: true }))
  run('npm', ['install', '--no-audit', '--no-fund', join(project, tarball.split('/').pop())], project)
  writeFileSync(
    join(project, 'esm.mjs'),
    `import { createMigratedPglite } from '@callsheet/db/testing'
import { contacts } from '@callsheet/db/schema'
import { migrate } from '@callsheet/db'
const pg = await createMigratedPglite()
await migrate(pg)
const { rows } = await pg.query('select count(*)::int as n from contacts')
if (rows[0].n !== 0 || typeof contacts !== 'object') throw new Error('unexpected')
const { createDatabase } = await import('@callsheet/db')
const db = createDatabase({ primary: pg })
const org = await db.organizations.create({ name: 'Packed', slug: 'packed' })
const tenant = db.tenant(org.id)
const production = await tenant.productions.create({ title: 'Packed Picture' })
await tenant.contacts.create({ productionId: production.id, name: 'Jon Smith' })
const hits = await tenant.contacts.search('jon smth')
if (hits.length !== 1) throw new Error('search through the packed package found ' + hits.length)
await db.close()
await pg.close()
console.log('ESM import of the packed package: migrated PGlite, tenant client and search OK')
`,
  )
  writeFileSync(
    join(project, 'cjs.cjs'),
    `const { createMigratedPglite } = require('@callsheet/db/testing')
const { isCallsheetDbError } = require('@callsheet/db')
;(async () => {
  const pg = await createMigratedPglite()
  await pg.query('select 1 from users limit 1')
  await pg.close()
  if (typeof isCallsheetDbError !== 'function') throw new Error('unexpected')
  console.log('CJS require of the packed package: migrated PGlite OK')
})()
`,
  )
  process.stdout.write(run('node', ['esm.mjs'], project))
  process.stdout.write(run('node', ['cjs.cjs'], project))

  // An app's own vitest test on the testing entry, as the README shows it.
  const vitestVersion = JSON.parse(
    run('node', ['-p', "JSON.stringify(require('vitest/package.json').version)"], process.cwd()),
  )
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `vitest@${vitestVersion}`], project)
  writeFileSync(
    join(project, 'app.test.mjs'),
    `import { afterAll, beforeAll, expect, it } from 'vitest'
import { createTestDatabase, seedTenant, expectTenantIsolation } from '@callsheet/db/testing'
let db
beforeAll(async () => { db = await createTestDatabase() })
afterAll(() => db?.close())
it('seeds a tenant and keeps tenants apart', async () => {
  const { tenant, contacts } = await seedTenant(db, { productions: 1, contactsPerProduction: 3 })
  expect(await tenant.contacts.count()).toBe(3)
  expect(contacts).toHaveLength(3)
  await expectTenantIsolation(db, ({ as, foreign }) => as.contacts.findById(foreign.contactId))
})
it('a second test database is a fresh copy', async () => {
  const other = await createTestDatabase()
  try {
    expect(await other.organizations.findMany()).toMatchObject({ rows: [] })
  } finally {
    await other.close()
  }
})
`,
  )
  // Generous hang bounds, not vitest's 10 s defaults: PGlite's cold start took longer than that on the
  // shared 2-core CI machine under load. Passing with the defaults on such a machine is issue 19's target.
  process.stdout.write(
    run(
      'npx',
      ['vitest', 'run', '--reporter=dot', '--hookTimeout=300000', '--testTimeout=300000', 'app.test.mjs'],
      project,
    ),
  )
  console.log('vitest test of the packed testing entry: createTestDatabase, seedTenant, expectTenantIsolation OK')
  const help = run('npx', ['callsheet-db', '--help'], project)
  if (!help.includes('doctor')) throw new Error('callsheet-db --help from the packed package: ' + help)
  console.log('callsheet-db bin of the packed package OK')
} finally {
  rmSync(project, { recursive: true, force: true })
}
