import { readFileSync } from 'node:fs'

// The files of the scratch app of test/app-workflow.test.ts: a user's project that depends on the packed
// tarball, written the way README "Your own tenant tables" tells users to. Kept as text, since they
// import `@callsheet/db` by its package name, which only the scratch app resolves.

/**
 * The app's own tables: test/fixtures/app/schema.ts (the in-repo app of test/app-tables.test.ts), importing
 * ours by the package name as a user does. It imports ours to reference them and does not re-export them.
 */
export const APP_SCHEMA = readFileSync(new URL('../fixtures/app/schema.ts', import.meta.url), 'utf8').replace(
  "from '../../../src/schema'",
  "from '@callsheet/db/schema'",
)

export const APP_DRIZZLE_CONFIG = `import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: './drizzle',
})
`

/** What the custom migration `drizzle-kit generate --custom --name register_tenant_tables` gets. */
export const APP_REGISTRATION = `SELECT callsheet_register_tenant_table('call_times');
--> statement-breakpoint
SELECT callsheet_register_tenant_table('call_notes');
`

/**
 * The app's script, run with `node --import tsx app.mts <workflow|upgrade|testing>`; prints one JSON line.
 * APP_ENGINE=pglite (APP_PGLITE_DIR: its data directory, so that the upgrade run finds the same
 * database) or postgres (APP_OWNER_URL migrates and counts, APP_RUNTIME_URL serves the tenants).
 */
export const APP_SCRIPT = `import {
  closeDefaultDatabase,
  createDatabase,
  createPglite,
  createTenantClient,
  isCallsheetDbError,
  migrate,
  setDefaultDatabase,
} from '@callsheet/db'
import { createTestDatabase } from '@callsheet/db/testing'
import { contacts } from '@callsheet/db/schema'
import { and, eq } from 'drizzle-orm'
import postgres from 'postgres'
import { callNotes, callTimes } from './db/schema.ts'

const mode = process.argv[2]
const engine = process.env.APP_ENGINE
const pg = engine === 'pglite' && mode !== 'testing' ? await createPglite({ dataDir: process.env.APP_PGLITE_DIR }) : undefined
const ownerSql = engine !== 'postgres' ? undefined : postgres(process.env.APP_OWNER_URL!, { max: 1, onnotice: () => {} })
const target = pg ?? process.env.APP_OWNER_URL!
// As the owner (a superuser in the test: RLS does not hide anything from it).
const owner = async <T,>(text: string): Promise<T[]> =>
  pg ? ((await pg.query(text)).rows as T[]) : ((await ownerSql!.unsafe(text)) as unknown as T[])
const ledger = async () => ({
  library: await owner<{ hash: string }>('select hash from callsheet_migrations.applied order by id'),
  app: await owner<{ hash: string; created_at: string }>(
    'select hash, created_at::text from drizzle.__drizzle_migrations order by id',
  ),
})
const count = async (table: string) =>
  (await owner<{ n: number }>(\`select count(*)::int as n from \${table}\`))[0]!.n
const codeOf = (error: unknown) => (isCallsheetDbError(error) ? error.code : \`not ours: \${String(error)}\`)
const refusal = (work: Promise<unknown>) =>
  work.then(
    () => 'accepted',
    (error: unknown) => codeOf(error),
  )

let summary: Record<string, unknown>
if (mode === 'testing') {
  // The app's own tests: a migrated test database, the app's migrations on it, the default database.
  const db = await createTestDatabase()
  await migrate(db.pglite, { appMigrationsFolder: './drizzle' })
  setDefaultDatabase(db)
  const org = await db.organizations.create({ name: 'Test Org', slug: 'test-org' })
  const tenant = createTenantClient(org.id)
  const production = await tenant.productions.create({ title: 'Test Picture' })
  const contact = await tenant.contacts.create({ productionId: production.id, name: 'Jon Smith' })
  await tenant.table(callTimes).create({ contactId: contact.id, productionId: production.id, callAt: new Date() })
  summary = { callTimes: await tenant.table(callTimes).count() }
  await closeDefaultDatabase()
} else if (mode === 'upgrade') {
  const before = await ledger()
  await migrate(target, { appMigrationsFolder: './drizzle' })
  const after = await ledger()
  const probe = await owner<{ v: string }>('select callsheet_upgrade_probe() as v')
  summary = { before, after, probe: probe[0]?.v }
} else {
  await migrate(target, { appMigrationsFolder: './drizzle' })
  const db = createDatabase(
    pg ? { primary: pg } : { primary: process.env.APP_RUNTIME_URL!, admin: process.env.APP_OWNER_URL! },
  )
  try {
    const orgA = await db.organizations.create({ name: 'App A', slug: 'app-a' })
    const orgB = await db.organizations.create({ name: 'App B', slug: 'app-b' })
    const a = db.tenant(orgA.id, { requestId: 'app-a' })
    const b = db.tenant(orgB.id, { requestId: 'app-b' })
    const productionA = await a.productions.create({ title: 'The Long Night' })
    const contactA = await a.contacts.create({ productionId: productionA.id, name: 'Jon Smith' })
    const productionB = await b.productions.create({ title: 'Other Picture' })
    const contactB = await b.contacts.create({ productionId: productionB.id, name: 'Ann Other' })

    // Writes and reads through the repository vocabulary and the unit's drizzle handle.
    const call = await a.table(callTimes).create({
      contactId: contactA.id,
      productionId: productionA.id,
      callAt: new Date('2027-01-04T06:30:00Z'),
      location: 'stage 4',
    })
    const note = await a.table(callNotes).create({ callTimeId: call.id, body: 'bring the long lens', tags: ['camera'] })
    const joined = await a.transaction(async (tx) => {
      await tx.db.insert(callNotes).values({ callTimeId: call.id, body: 'second unit' })
      await tx.db.update(callTimes).set({ sequence: 2 }).where(eq(callTimes.id, call.id))
      return tx.db
        .select({ name: contacts.name, sequence: callTimes.sequence, location: callTimes.location })
        .from(callTimes)
        .innerJoin(contacts, and(eq(contacts.organizationId, callTimes.organizationId), eq(contacts.id, callTimes.contactId)))
        .where(eq(callTimes.id, call.id))
    })
    const notesOfA = await a.read((r) => r.db.$count(callNotes))
    const callB = await b.table(callTimes).create({ contactId: contactB.id, productionId: productionB.id, callAt: new Date() })

    // Cross-tenant attempts: B with A's ids, A with B's references and organization_id.
    const traces = async () => ({
      callTimes: await count('call_times'),
      callNotes: await count('call_notes'),
      auditLogs: await count('audit_logs'),
    })
    const before = await traces()
    const crossTenant = {
      findByIdOfOther: (await b.table(callTimes).findById(call.id)) === undefined ? 'undefined' : 'found',
      noteFindByIdOfOther: (await b.table(callNotes).findById(note.id)) === undefined ? 'undefined' : 'found',
      getByIdOfOther: await refusal(b.table(callTimes).getById(call.id)),
      updateOfOther: await refusal(b.table(callTimes).update(call.id, { location: 'hijacked' })),
      softDeleteOfOther: await refusal(b.table(callTimes).softDelete(call.id)),
      purgeNoteOfOther: await refusal(b.table(callNotes).purge(note.id)),
      txDbSelectOfOther: (await b.read((r) => r.db.select().from(callTimes).where(eq(callTimes.id, call.id)))).length,
      txDbUpdateOfOther: (
        await b.transaction((tx) =>
          tx.db.update(callTimes).set({ location: 'hijacked' }).where(eq(callTimes.id, call.id)).returning(),
        )
      ).length,
      referenceToOthersContact: await refusal(
        a.table(callTimes).create({ contactId: contactB.id, productionId: productionA.id, callAt: new Date() }),
      ),
      referenceToOthersCallTime: await refusal(a.table(callNotes).create({ callTimeId: callB.id, body: 'sneaky' })),
      txDbReferenceToOthersContact: await refusal(
        a.transaction((tx) =>
          tx.db.insert(callTimes).values({ contactId: contactB.id, productionId: productionA.id, callAt: new Date() }),
        ),
      ),
      txDbInsertWithOthersOrganizationId: await refusal(
        a.transaction((tx) =>
          tx.db.insert(callTimes).values({
            organizationId: orgB.id,
            contactId: contactB.id,
            productionId: productionB.id,
            callAt: new Date(),
          }),
        ),
      ),
    }
    const after = await traces()
    const forced = await owner<{ relname: string; relforcerowsecurity: boolean }>(
      "select relname, relforcerowsecurity from pg_class where relname in ('call_times', 'call_notes') order by relname",
    )
    summary = {
      joined,
      notesOfA,
      mine: (await a.table(callTimes).getById(call.id)).location,
      crossTenant,
      traces: { before, after },
      forceRowLevelSecurity: Object.fromEntries(forced.map((r) => [r.relname, r.relforcerowsecurity])),
      ledger: await ledger(),
    }
  } finally {
    await db.close()
  }
}
await ownerSql?.end({ timeout: 5 })
await pg?.close()
console.log(JSON.stringify(summary))
`
