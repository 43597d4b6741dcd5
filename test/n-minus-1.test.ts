import { getTableConfig, PgTable } from 'drizzle-orm/pg-core'
import { is } from 'drizzle-orm'
import postgres from 'postgres'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { migrate } from '../src/migrations/migrate'
import { createScratchDatabase, withDatabase } from '../tools/postgres-server'
import type * as HeadLibrary from '../src/index'
import { testProof } from './harness/secret'
import { availableEngines, describeEachEngine, type TestEngine } from './harness/engines'
import type { SqlRunner } from './harness/sql-runner'
import { importPrevious, previousRelease, type PreviousRelease } from './support/previous-release'

// N-1 compatibility (docs/schema-evolution.md): during a rolling deploy, instances still running the previous
// release of this library serve requests against the schema the next release's migrate() produced. This
// builds the previous release from the ref compat/previous-release.json names (cached by commit in
// node_modules/.cache; no network), migrates a database with HEAD's migrations, applies the expand step of
// every change type docs/schema-evolution.md allows in one release, and drives the previous release's
// public API on it: every repository operation, search, createMany, audit reads, and tenant isolation.
// Then each one-step (unsafe) variant is applied alone and shown to break the previous release, so the test
// detects what it claims to. The API is typed with HEAD's types; at run time it is the previous release's.

type Library = typeof HeadLibrary
type Database = ReturnType<Library['createDatabase']>
type Tenant = ReturnType<Database['tenant']>

/**
 * The next release's expand migrations, one per change type docs/schema-evolution.md lets a release ship
 * while the previous one still runs. On a server the index is built CONCURRENTLY, outside a transaction.
 */
const EXPAND: Record<string, string> = {
  'add a nullable column': `ALTER TABLE contacts ADD COLUMN pronouns text`,
  'add a NOT NULL column with a constant default': `ALTER TABLE contacts ADD COLUMN source text NOT NULL DEFAULT 'manual'`,
  'rename role → job_title, expand: the new column, kept in step both ways by a trigger, backfilled': `
    ALTER TABLE contacts ADD COLUMN job_title text;
    ALTER TABLE contacts ADD CONSTRAINT contacts_job_title_length
      CHECK (job_title IS NULL OR char_length(job_title) <= 200) NOT VALID;
    CREATE FUNCTION contacts_sync_job_title() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        IF NEW.job_title IS NULL THEN NEW.job_title := NEW.role;
        ELSIF NEW.role IS NULL THEN NEW.role := NEW.job_title;
        END IF;
      ELSIF NEW.role IS DISTINCT FROM OLD.role THEN NEW.job_title := NEW.role;
      ELSIF NEW.job_title IS DISTINCT FROM OLD.job_title THEN NEW.role := NEW.job_title;
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER contacts_sync_job_title BEFORE INSERT OR UPDATE OF role, job_title ON contacts
      FOR EACH ROW EXECUTE FUNCTION contacts_sync_job_title();
    ALTER TABLE contacts NO FORCE ROW LEVEL SECURITY;
    ALTER TABLE contacts DISABLE TRIGGER contacts_audit_update;
    ALTER TABLE contacts DISABLE TRIGGER contacts_set_updated_at;
    UPDATE contacts SET job_title = role WHERE job_title IS DISTINCT FROM role;
    ALTER TABLE contacts ENABLE TRIGGER contacts_set_updated_at;
    ALTER TABLE contacts ENABLE TRIGGER contacts_audit_update;
    ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
    ALTER TABLE contacts VALIDATE CONSTRAINT contacts_job_title_length`,
  'relax a check: phone ≤ 50 → ≤ 80 (the new one NOT VALID, validated, then the old one dropped)': `
    ALTER TABLE contacts ADD CONSTRAINT contacts_phone_length_80 CHECK (phone IS NULL OR char_length(phone) <= 80) NOT VALID;
    ALTER TABLE contacts VALIDATE CONSTRAINT contacts_phone_length_80;
    ALTER TABLE contacts DROP CONSTRAINT contacts_phone_length`,
  'contract preparation: a column the next release stops writing loses NOT NULL': `ALTER TABLE uploads ALTER COLUMN storage_key DROP NOT NULL`,
  'add a tenant table (registered)': `
    CREATE TABLE contact_tags (
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      organization_id uuid NOT NULL DEFAULT callsheet_tenant() REFERENCES organizations (id) ON DELETE CASCADE,
      contact_id uuid NOT NULL,
      tag text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT contact_tags_pkey PRIMARY KEY (organization_id, id),
      CONSTRAINT contact_tags_contact_fk FOREIGN KEY (organization_id, contact_id)
        REFERENCES contacts (organization_id, id) ON DELETE CASCADE
    );
    SELECT callsheet_register_tenant_table('contact_tags')`,
}
const CONCURRENT_INDEX = `CREATE INDEX CONCURRENTLY contacts_source_idx ON contacts (organization_id, source)`

/** The one-step variants docs/schema-evolution.md forbids, each with the statement that undoes it. */
const UNSAFE = {
  rename: {
    apply: `ALTER TABLE contacts RENAME COLUMN notes TO remarks`,
    undo: `ALTER TABLE contacts RENAME COLUMN remarks TO notes`,
  },
  notNullWithoutDefault: {
    // The default fills the existing rows; dropping it leaves what an unsafe migration leaves.
    apply: `ALTER TABLE contacts ADD COLUMN rate numeric NOT NULL DEFAULT 0; ALTER TABLE contacts ALTER COLUMN rate DROP DEFAULT`,
    undo: `ALTER TABLE contacts DROP COLUMN rate`,
  },
  typeInPlace: {
    apply: `ALTER TABLE contacts DROP CONSTRAINT contacts_confidence_range;
      ALTER TABLE contacts ALTER COLUMN extraction_confidence TYPE text USING extraction_confidence::text`,
    undo: `ALTER TABLE contacts ALTER COLUMN extraction_confidence TYPE numeric(3,2) USING extraction_confidence::numeric(3,2);
      ALTER TABLE contacts ADD CONSTRAINT contacts_confidence_range
        CHECK (extraction_confidence IS NULL OR extraction_confidence BETWEEN 0 AND 1)`,
  },
  dropUsedColumn: {
    apply: `ALTER TABLE contacts DROP COLUMN phone`,
    undo: `ALTER TABLE contacts ADD COLUMN phone text CONSTRAINT contacts_phone_length_80 CHECK (phone IS NULL OR char_length(phone) <= 80)`,
  },
}

interface CatalogColumn extends Record<string, unknown> {
  table: string
  column: string
  type: string
  base: string
  not_null: boolean
  has_default: boolean
}

/**
 * What in the database would break the previous release's statements, read from its own drizzle schema:
 * a table or column it names that is missing or of another type, and a NOT NULL column without a default
 * that its inserts cannot fill (it does not know the column). Types are compared by base type, as PostgreSQL
 * names them (a length or precision changed in place is not seen: widening is safe, narrowing is a new
 * constraint — docs/schema-evolution.md).
 */
async function incompatibilities(admin: SqlRunner, previousSchema: Record<string, unknown>): Promise<string[]> {
  const tables = Object.values(previousSchema)
    .filter((t): t is PgTable => is(t, PgTable))
    .map((t) => getTableConfig(t))
  const rows = await admin.query<CatalogColumn>(
    `select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
            a.atttypid::regtype::text as base,
            a.attnotnull as not_null, (a.atthasdef or a.attidentity <> '' or a.attgenerated <> '') as has_default
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
        and c.relname = any($1::text[])`,
    [tables.map((t) => t.name)],
  )
  const declared = [...new Set(tables.flatMap((t) => t.columns.map((c) => c.getSQLType())))]
  const bases = new Map(
    (
      await admin.query<{ declared: string; base: string | null }>(
        'select t as declared, to_regtype(t)::text as base from unnest($1::text[]) as t',
        [declared],
      )
    ).map((r) => [r.declared, r.base]),
  )
  const found: string[] = []
  for (const table of tables) {
    const columns = new Map(rows.filter((r) => r.table === table.name).map((r) => [r.column, r]))
    if (columns.size === 0) {
      found.push(`table ${table.name} is missing`)
      continue
    }
    const known = new Set(table.columns.map((c) => c.name))
    for (const column of table.columns) {
      const actual = columns.get(column.name)
      if (!actual) found.push(`${table.name}.${column.name} is missing`)
      else if (actual.base !== bases.get(column.getSQLType()))
        found.push(`${table.name}.${column.name} is ${actual.type}, not ${column.getSQLType()}`)
    }
    for (const actual of columns.values())
      if (actual.not_null && !actual.has_default && !known.has(actual.column))
        found.push(`${table.name}.${actual.column} is NOT NULL without a default and unknown to the previous release`)
  }
  return found
}

/** The error code a library (of either release) gave, or the SQLSTATE under it. */
function failure(error: unknown): string {
  const e = error as { code?: unknown; sqlState?: unknown; cause?: { code?: unknown } }
  return `${String(e.code)}/${String(e.sqlState ?? e.cause?.code)}`
}
const outcome = (work: Promise<unknown>) =>
  work.then(
    () => 'ok',
    (error: unknown) => failure(error),
  )

let release: PreviousRelease
let previous: Library
let previousSchema: Record<string, unknown>

beforeAll(async () => {
  release = await previousRelease()
  previous = await importPrevious<Library>(release, 'index')
  previousSchema = await importPrevious<Record<string, unknown>>(release, 'schema')
}, 600_000)

describeEachEngine('the previous release on the next schema (N-1)', (engine: () => TestEngine) => {
  let db: Database
  let a: Tenant
  let b: Tenant
  let production: { id: string }
  let productionOfB: { id: string }
  let contactOfB: { id: string }
  let orgOfB: string

  let contactOfBBefore: Record<string, unknown> | undefined

  beforeAll(async () => {
    const { admin } = engine()
    db = previous.createDatabase({
      pool: { max: 4 },
      primary: engine().pglite ?? engine().url!,
      ...(engine().ownerUrl === undefined ? {} : { admin: engine().ownerUrl }),
    })
    // Rows the previous release wrote before the deploy: the expand step's backfill has something to do.
    const orgA = await db.organizations.create({ name: 'N-1 A', slug: `n1-a-${engine().name}` })
    const orgB = await db.organizations.create({ name: 'N-1 B', slug: `n1-b-${engine().name}` })
    a = db.tenant(orgA.id, { requestId: 'n-1-a' })
    b = db.tenant(orgB.id, { requestId: 'n-1-b' })
    orgOfB = orgB.id
    production = await a.productions.create({ title: 'Old Code, New Schema' })
    productionOfB = await b.productions.create({ title: 'The Other Picture' })
    contactOfB = await b.contacts.create({ productionId: productionOfB.id, name: 'Bea Other', role: 'Gaffer' })
    ;[contactOfBBefore] = await admin.query(
      `select updated_at::text, (select count(*)::int from audit_logs where entity_id = $1) as audit
         from contacts where id = $1`,
      [contactOfB.id],
    )
    for (const sql of Object.values(EXPAND)) await admin.exec(sql)
    await admin.exec(CONCURRENT_INDEX)
  })

  afterAll(async () => {
    await db?.close()
  })

  it(`builds the previous release from compat/previous-release.json`, () => {
    expect(release.commit).toMatch(/^[0-9a-f]{40}$/)
    expect(typeof previous.createDatabase).toBe('function')
  })

  it("backfilled the rename's new column without touching updated_at or the audit trail", async () => {
    const [after] = await engine().admin.query(
      `select updated_at::text, (select count(*)::int from audit_logs where entity_id = $1) as audit, job_title
         from contacts where id = $1`,
      [contactOfB.id],
    )
    expect(after).toEqual({ ...contactOfBBefore, job_title: 'Gaffer' })
  })

  it('finds nothing of the previous release missing, retyped or unfillable in the next schema', async () => {
    expect(await incompatibilities(engine().admin, previousSchema)).toEqual([])
  })

  it("lets the previous release's migrate() run on the next release's database (a restart or a rollback): nothing to apply", async () => {
    const target = engine().pglite ?? engine().ownerUrl!
    const report = await previous.migrate(target)
    expect(report.applied).toEqual([])
  })

  it("serves the previous release's repositories: create, findById, findMany, update, softDelete, restore, search, createMany, audit", async () => {
    const { admin } = engine()
    const created = await a.contacts.create({ productionId: production.id, name: 'Jon Smith', role: 'Focus Puller' })
    expect(created).toMatchObject({ name: 'Jon Smith', role: 'Focus Puller' })
    // The rows the previous release writes get the next release's columns from the expand step.
    const [stored] = await admin.query<{ job_title: string; source: string; pronouns: string | null }>(
      'select job_title, source, pronouns from contacts where id = $1',
      [created.id],
    )
    expect(stored).toEqual({ job_title: 'Focus Puller', source: 'manual', pronouns: null })

    expect((await a.contacts.findById(created.id))?.role).toBe('Focus Puller')
    const updated = await a.contacts.update(created.id, { role: '1st AC' })
    expect(updated.role).toBe('1st AC')
    // The next release writes the new column; the previous one reads it under the old name.
    await admin.query(`update contacts set job_title = 'Camera Operator', pronouns = 'he/him' where id = $1`, [
      created.id,
    ])
    expect((await a.contacts.getById(created.id)).role).toBe('Camera Operator')

    const page = await a.contacts.findMany({ where: { productionId: production.id }, orderBy: 'name', limit: 10 })
    expect(page.rows.map((r) => r.id)).toEqual([created.id])
    const hits = await a.contacts.search('jon smth')
    expect(hits.map((h) => h.id)).toEqual([created.id])

    const ids = await a.contacts.createMany(
      [
        { productionId: production.id, name: 'Ada Grip', role: 'Key Grip' },
        { productionId: production.id, name: 'Bo Best', email: 'bo@n1.example' },
      ],
      { returning: 'ids' },
    )
    expect(ids).toHaveLength(2)
    const batch = await admin.query<{ job_title: string | null; source: string }>(
      'select job_title, source from contacts where id = any($1::uuid[]) order by name',
      [ids],
    )
    expect(batch).toEqual([
      { job_title: 'Key Grip', source: 'manual' },
      { job_title: null, source: 'manual' },
    ])

    const deleted = await a.contacts.softDelete(created.id)
    expect(deleted.deletedAt).toBeInstanceOf(Date)
    expect(await a.contacts.findById(created.id)).toBeUndefined()
    expect((await a.contacts.restore(created.id)).deletedAt).toBeNull()

    // The upload's storage key is still written by the previous release after it lost NOT NULL.
    const upload = await a.uploads.create({
      productionId: production.id,
      fileName: 'day-01.pdf',
      mimeType: 'application/pdf',
      sizeBytes: 10,
      checksumSha256: 'c'.repeat(64),
      storageKey: 'k/day-01.pdf',
    })
    expect((await a.uploads.getById(upload.id)).storageKey).toBe('k/day-01.pdf')

    // Audit rows carry the next release's columns too; the previous release reads them as opaque values.
    const history = await a.auditLogs.history('contacts', created.id)
    expect(history.rows.map((r) => r.action)).toEqual(['restore', 'soft_delete', 'update', 'update', 'insert'])
    expect(history.rows.at(-1)?.newValues).toMatchObject({ role: 'Focus Puller', job_title: 'Focus Puller' })
    const recent = await a.auditLogs.findMany({ from: new Date(Date.now() - 3_600_000), entityType: 'contacts' })
    expect(recent.rows.length).toBeGreaterThanOrEqual(7)
  })

  it("keeps tenants apart: another tenant's ids are not found and a cross-tenant write is refused without a trace", async () => {
    const { admin } = engine()
    const trace = async () =>
      admin.query(
        `select (select count(*)::int from audit_logs) as audit,
                (select count(*)::int from contacts) as contacts,
                (select jsonb_agg(c order by c.id) from contacts c where organization_id = $1) as rows_of_b`,
        [orgOfB],
      )
    const before = await trace()
    expect(await a.contacts.findById(contactOfB.id)).toBeUndefined()
    expect(await outcome(a.contacts.getById(contactOfB.id))).toMatch(/^NOT_FOUND\//)
    expect(await outcome(a.contacts.update(contactOfB.id, { role: 'stolen' }))).toMatch(/^NOT_FOUND\//)
    expect(await outcome(a.contacts.softDelete(contactOfB.id))).toMatch(/^NOT_FOUND\//)
    expect(await outcome(a.contacts.purge(contactOfB.id))).toMatch(/^NOT_FOUND\//)
    expect(await a.contacts.search('bea other')).toEqual([])
    expect(await outcome(a.contacts.create({ productionId: productionOfB.id, name: 'Intruder' }))).toMatch(
      /^FOREIGN_KEY_VIOLATION\//,
    )
    expect(
      await outcome(
        a.contacts.createMany([{ productionId: productionOfB.id, name: 'Intruder' }], { returning: 'ids' }),
      ),
    ).toMatch(/^FOREIGN_KEY_VIOLATION\//)
    expect((await a.auditLogs.history('contacts', contactOfB.id)).rows).toEqual([])
    expect(await trace()).toEqual(before)
  })

  it('is broken by a rename in one step, and the schema check names the column', async () => {
    const { admin } = engine()
    const [contact] = (await a.contacts.findMany({ limit: 1 })).rows
    await admin.exec(UNSAFE.rename.apply)
    try {
      expect(await incompatibilities(admin, previousSchema)).toEqual(['contacts.notes is missing'])
      expect(await outcome(a.contacts.findById(contact!.id))).toMatch(/\/42703$/)
      expect(await outcome(a.contacts.create({ productionId: production.id, name: 'Too Soon' }))).toMatch(/\/42703$/)
    } finally {
      await admin.exec(UNSAFE.rename.undo)
    }
    expect((await a.contacts.findById(contact!.id))?.id).toBe(contact!.id)
  })

  it('is broken by a NOT NULL column without a default: its inserts fail, its reads do not', async () => {
    const { admin } = engine()
    await admin.exec(UNSAFE.notNullWithoutDefault.apply)
    try {
      expect(await incompatibilities(admin, previousSchema)).toEqual([
        'contacts.rate is NOT NULL without a default and unknown to the previous release',
      ])
      expect(await outcome(a.contacts.create({ productionId: production.id, name: 'No Rate' }))).toMatch(
        /^NOT_NULL_VIOLATION\/23502$/,
      )
      expect(
        await outcome(a.contacts.createMany([{ productionId: production.id, name: 'No Rate' }], { returning: 'ids' })),
      ).toMatch(/^NOT_NULL_VIOLATION\/23502$/)
      expect((await a.contacts.findMany({ limit: 1 })).rows).toHaveLength(1)
    } finally {
      await admin.exec(UNSAFE.notNullWithoutDefault.undo)
    }
  })

  it('is flagged by a type changed in place', async () => {
    const { admin } = engine()
    await admin.exec(UNSAFE.typeInPlace.apply)
    try {
      expect(await incompatibilities(admin, previousSchema)).toEqual([
        'contacts.extraction_confidence is text, not numeric(3, 2)',
      ])
    } finally {
      await admin.exec(UNSAFE.typeInPlace.undo)
    }
  })

  it('is broken by dropping a column it still reads (contract before the release that stopped using it)', async () => {
    const { admin } = engine()
    const [contact] = (await a.contacts.findMany({ limit: 1 })).rows
    await admin.exec(UNSAFE.dropUsedColumn.apply)
    try {
      expect(await incompatibilities(admin, previousSchema)).toEqual(['contacts.phone is missing'])
      expect(await outcome(a.contacts.findById(contact!.id))).toMatch(/\/42703$/)
      expect(await outcome(a.contacts.update(contact!.id, { name: 'Renamed' }))).toMatch(/\/42703$/)
    } finally {
      await admin.exec(UNSAFE.dropUsedColumn.undo)
    }
    // Dropping a column the previous release does not know is the contract step that is safe.
    await admin.exec('ALTER TABLE contacts DROP COLUMN pronouns')
    expect(await incompatibilities(admin, previousSchema)).toEqual([])
    expect((await a.contacts.findById(contact!.id))?.id).toBe(contact!.id)
  })
})

// docs/schema-evolution.md, "Backfills": a migration runs as the tables' owner, which FORCE ROW LEVEL SECURITY
// binds when it is not a superuser (as in production): a plain UPDATE in a migration sees no tenant row.
const server = inject('postgresServer')

/** The audit rows and the departments' updated_at, read as a superuser. */
async function seedState(ownerUrl: string): Promise<unknown> {
  const sql = postgres(withDatabase(server!.adminUrl, new URL(ownerUrl).pathname.slice(1)), {
    max: 1,
    onnotice: () => {},
  })
  try {
    return await sql`select (select count(*)::int from audit_logs) as audit,
                            (select jsonb_agg(updated_at order by code) from departments) as updated`
  } finally {
    await sql.end({ timeout: 5 })
  }
}

if (server && availableEngines().includes('postgres')) {
  it('a backfill as a non-superuser owner: nothing under FORCE, refused by the audit policy with NO FORCE alone, every row unaudited with the triggers off [postgres]', async () => {
    const owner = `cs_evolve_${Math.random().toString(16).slice(2, 10)}`
    const superuser = postgres(server.adminUrl, { max: 1, onnotice: () => {} })
    const scratch = await createScratchDatabase(server.adminUrl, 'cs_evolve')
    try {
      await superuser.unsafe(`create role ${owner} login nosuperuser nobypassrls createrole`)
      await superuser.unsafe(`alter database ${scratch.name} owner to ${owner}`)
      const url = withDatabase(server.adminUrl.replace('//postgres@', `//${owner}@`), scratch.name)
      await migrate(url)
      const seed = postgres(scratch.url, { max: 1, onnotice: () => {} })
      try {
        const [org] = await seed<
          { id: string }[]
        >`insert into organizations (name, slug) values ('B', 'b') returning id`
        // In a tenant unit: the audit trigger runs as the owner, whom audit_logs' policy binds too.
        await seed.begin(async (tx) => {
          await tx`select set_config('app.organization_id', ${org!.id}, true),
                          set_config('app.tenant_proof', ${testProof(org!.id)}, true)`
          await tx`insert into departments (organization_id, name, code)
                   values (${org!.id}, 'Camera', 'CAM'), (${org!.id}, 'Grip', 'GRP')`
        })
      } finally {
        await seed.end({ timeout: 5 })
      }
      const sql = postgres(url, { max: 1, onnotice: () => {} })
      try {
        await sql.unsafe(`ALTER TABLE departments ADD COLUMN short_code text`)
        const plain = await sql.unsafe(`UPDATE departments SET short_code = lower(code)`)
        expect(plain.count).toBe(0)
        // Without a tenant the audit trigger's row is refused by audit_logs' own policy: the whole UPDATE fails.
        await expect(
          sql.begin(async (tx) => {
            await tx.unsafe(`ALTER TABLE departments NO FORCE ROW LEVEL SECURITY`)
            await tx.unsafe(`UPDATE departments SET short_code = lower(code)`)
          }),
        ).rejects.toMatchObject({ code: '42501' })
        const before = await seedState(url)
        const bracketed = await sql.begin(async (tx) => {
          await tx.unsafe(`ALTER TABLE departments NO FORCE ROW LEVEL SECURITY`)
          await tx.unsafe(`ALTER TABLE departments DISABLE TRIGGER departments_audit_update`)
          await tx.unsafe(`ALTER TABLE departments DISABLE TRIGGER departments_set_updated_at`)
          const done = await tx.unsafe(`UPDATE departments SET short_code = lower(code) WHERE short_code IS NULL`)
          await tx.unsafe(`ALTER TABLE departments ENABLE TRIGGER departments_set_updated_at`)
          await tx.unsafe(`ALTER TABLE departments ENABLE TRIGGER departments_audit_update`)
          await tx.unsafe(`ALTER TABLE departments FORCE ROW LEVEL SECURITY`)
          return done.count
        })
        expect(bracketed).toBe(2)
        // Not a tenant's change: no audit row, updated_at as it was.
        expect(await seedState(url)).toEqual(before)
        const [forced] = await sql<{ forced: boolean }[]>`
          select relforcerowsecurity as forced from pg_class where oid = 'public.departments'::regclass`
        expect(forced?.forced).toBe(true)
        const [triggers] = await sql<{ disabled: number }[]>`
          select count(*)::int as disabled from pg_trigger
           where tgrelid = 'public.departments'::regclass and not tgisinternal and tgenabled = 'D'`
        expect(triggers?.disabled).toBe(0)
      } finally {
        await sql.end({ timeout: 5 })
      }
    } finally {
      await scratch.drop()
      await superuser.unsafe(`drop role if exists ${owner}`)
      await superuser.end({ timeout: 5 })
    }
  })
}
