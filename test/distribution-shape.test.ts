import { beforeAll, expect, it } from 'vitest'
import { describeEachEngine } from './harness/engines'
import { expectSqlState, type SqlRunner } from './harness/sql-runner'
import { testProof } from './harness/secret'
import { seedTenant, type SeededTenant } from './support/seed'
import { catalogQuery, type CatalogQuery } from '../src/distribution/catalog-query'
import {
  DISTRIBUTION_COLUMN,
  REFERENCE_TABLES,
  distributionViolations,
  type DistributionShapeOptions,
} from '../src/distribution/citus-shape'
import { citusPolicyStatements } from '../src/distribution/citus-policies'
import { describeViolation, type DistributionViolation } from '../src/distribution/distribution-rules'
import { settingsStatement } from '../src/engine/settings-statement'
import { isCallsheetDbError } from '../src/errors'

// The Citus shape of the catalog (src/distribution/citus-shape.ts): what a cluster would refuse, read on
// a single node, so that `npm test` fails when a table, index, foreign key, policy or trigger stops being
// distributable by organization_id.

const runOf =
  (db: SqlRunner): CatalogQuery =>
  (text, params) =>
    db.query(text, params)

const ROLLBACK = new Error('rollback')

/** Runs `fn` in a transaction that is always rolled back, and returns what it returned. */
async function rolledBack<T>(db: SqlRunner, fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
  let result: { value: T } | undefined
  await db
    .transaction(async (tx) => {
      result = { value: await fn(tx) }
      throw ROLLBACK
    })
    .catch((error: unknown) => {
      if (error !== ROLLBACK) throw error
    })
  if (result === undefined) throw new Error('unreachable: the transaction ended without a result')
  return result.value
}

/** Applies the Citus form of the policies (what distribute() does first). */
async function inlinePolicies(tx: SqlRunner): Promise<void> {
  for (const statement of await citusPolicyStatements(runOf(tx))) await tx.exec(statement)
}

const line = (v: DistributionViolation) => `${v.rule} ${v.object === v.table ? v.table : `${v.table}.${v.object}`}`
const key = (v: DistributionViolation) => `${line(v)}: ${v.detail}`

// The current schema's violations, read once per engine (the fixtures roll back, so it never changes).
const baselines = new WeakMap<SqlRunner, Promise<DistributionViolation[]>>()
const baselineOf = (db: SqlRunner, options?: DistributionShapeOptions) => {
  if (options !== undefined) return distributionViolations(runOf(db), options)
  const known = baselines.get(db) ?? distributionViolations(runOf(db))
  baselines.set(db, known)
  return known
}

/** The violations `mutation` adds to the current schema's (and checks it removes none), rolled back. */
async function addedBy(db: SqlRunner, mutation: string, options?: DistributionShapeOptions): Promise<string[]> {
  const before = await baselineOf(db, options)
  return rolledBack(db, async (tx) => {
    await tx.exec(mutation)
    const after = await distributionViolations(runOf(tx), options)
    const had = new Set(before.map(key))
    const has = new Set(after.map(key))
    expect(before.filter((v) => !has.has(key(v))).map(key), 'violations the mutation removed').toEqual([])
    return after.filter((v) => !had.has(key(v))).map(line)
  })
}

const AUDITED = ['api_keys', 'contacts', 'departments', 'productions', 'uploads', 'users']
const TENANT_POLICIES = [...AUDITED, 'audit_logs', 'organizations'].map((t) => `R5 ${t}.tenant_isolation`)

// The migrated schema as the check sees it: distributable but for the tenant predicate's subquery, which a
// single node keeps (evaluated once per statement; the inline form costs up to 82× on a seq scan,
// docs/citus-findings.md) and distribute() rewrites with citusPolicyStatements.
const CURRENT_SCHEMA = [...TENANT_POLICIES].sort()

const fixtureFunction = (name: string, body: string, declare = '') =>
  `create function ${name}() returns trigger language plpgsql as $fn$ ${declare} begin ${body} end $fn$`

describeEachEngine('distribution shape (Citus)', (engine) => {
  const db = () => engine().admin

  it('reports only the tenant predicate subqueries that distribute() rewrites, nothing else', async () => {
    const found = (await distributionViolations(runOf(db()))).map(line)
    expect([...found].sort()).toEqual(CURRENT_SCHEMA)
  })

  it('reads the same through the drivers themselves (postgres.js, PGlite) as through the test runner', async () => {
    const client = engine().sql ?? engine().pglite
    if (client === undefined) throw new Error('engine has no client')
    const direct = await distributionViolations(catalogQuery(client))
    expect(direct).toEqual(await distributionViolations(runOf(db())))
  })

  it('classifies by the reference tables it names, which exist, and by the distribution column', async () => {
    const missing = await db().query<{ name: string }>(
      `select name from unnest($1::text[]) as name where to_regclass(name) is null`,
      [[...REFERENCE_TABLES]],
    )
    expect(missing).toEqual([])
    const [withColumn] = await db().query<{ n: number }>(
      `select count(*)::int as n from pg_attribute where attname = $1 and attrelid = 'public.contacts'::regclass`,
      [DISTRIBUTION_COLUMN],
    )
    expect(withColumn?.n).toBe(1)
  })

  it('says which rule, what is wrong and what Citus does', async () => {
    const found = await rolledBack(db(), async (tx) => {
      await tx.exec('create table fixture_target (id uuid primary key, organization_id uuid not null)')
      return distributionViolations(runOf(tx))
    })
    const [pkey] = found.filter((v) => v.object === 'fixture_target_pkey')
    if (pkey === undefined) throw new Error('fixture_target_pkey is not reported')
    expect(describeViolation(pkey)).toBe(
      'R2 fixture_target.fixture_target_pkey: unique index without organization_id among its key columns (Citus: 0A000 cannot create constraint: "Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column (with an equality operator if EXCLUDE)". Citus accepts organization_id in INCLUDE only, but the key is then unique per shard, not per table: refused here too)',
    )
  })

  it('is distributable once the policies are inline: no violation at all', async () => {
    const found = await rolledBack(db(), async (tx) => {
      await inlinePolicies(tx)
      return distributionViolations(runOf(tx))
    })
    expect(found.map(key)).toEqual([])
  })

  it('the policy rewrite removes exactly the tenant_isolation subqueries, and is idempotent', async () => {
    const r5 = async (tx: SqlRunner) =>
      (await distributionViolations(runOf(tx))).filter((v) => v.rule === 'R5').map(line)
    const without = await r5(db())
    const { after, again } = await rolledBack(db(), async (tx) => {
      await inlinePolicies(tx)
      return { after: await r5(tx), again: await citusPolicyStatements(runOf(tx)) }
    })
    expect(without.filter((v) => !after.includes(v)).sort()).toEqual([...TENANT_POLICIES].sort())
    expect(after).toEqual([])
    expect(again).toEqual([])
  })

  it('rewrites to the inline tenant predicate, however the catalog prints it', async () => {
    const statements = await citusPolicyStatements(runOf(db()))
    expect(statements).toContain(
      'ALTER POLICY tenant_isolation ON public.contacts USING ((organization_id = callsheet_tenant())) WITH CHECK ((organization_id = callsheet_tenant()))',
    )
    expect(statements).toContain(
      'ALTER POLICY tenant_isolation ON public.organizations USING ((id = callsheet_tenant())) WITH CHECK ((id = callsheet_tenant()))',
    )
    expect(statements).toHaveLength(TENANT_POLICIES.length)
  })

  it('leaves a policy alone when it has another subquery besides the tenant predicate', async () => {
    const statements = await rolledBack(db(), async (tx) => {
      await tx.exec(`alter policy tenant_isolation on contacts
        using (organization_id = (select callsheet_tenant()) and production_id in (select id from productions))`)
      return citusPolicyStatements(runOf(tx))
    })
    expect(statements.filter((s) => s.includes(' ON public.contacts '))).toEqual([])
    expect(statements).toHaveLength(TENANT_POLICIES.length - 1)
  })

  describeTenantIsolationAfterRewrite(db)

  // Each rule must bite: one fixture per rule and sub-case, in a rolled-back transaction, adding exactly
  // the violation named (and nothing else).
  it.each([
    ['an unclassified table (R0)', 'create table fixture_loose (id int primary key)', ['R0 fixture_loose']],
    [
      'an unclassified table in callsheet_private (R0)',
      'create table callsheet_private.fixture_cache (id int)',
      ['R0 callsheet_private.fixture_cache'],
    ],
    [
      'a nullable organization_id (R1)',
      'create table fixture_items (organization_id uuid, id uuid)',
      ['R1 fixture_items'],
    ],
    ['a text organization_id (R1)', 'create table fixture_items (organization_id text not null)', ['R1 fixture_items']],
    [
      'a primary key with organization_id only in INCLUDE (R2)',
      'create table fixture_items (organization_id uuid not null, id uuid, primary key (id) include (organization_id))',
      ['R2 fixture_items.fixture_items_pkey'],
    ],
    [
      'a partial unique index without organization_id (R2)',
      'create unique index fixture_email_key on contacts (email) where deleted_at is null',
      ['R2 contacts.fixture_email_key'],
    ],
    [
      'an expression unique index without organization_id (R2)',
      'create unique index fixture_email_lower_key on users (lower(email::text))',
      ['R2 users.fixture_email_lower_key'],
    ],
    [
      'a gist exclusion without organization_id (R2)',
      'create table fixture_bookings (organization_id uuid not null, during tstzrange, exclude using gist (during with &&))',
      ['R2 fixture_bookings.fixture_bookings_during_excl'],
    ],
    [
      'a unique index on one partition only (R2)',
      'create unique index fixture_partition_key on audit_logs_default (id)',
      ['R2 audit_logs_default.fixture_partition_key'],
    ],
    [
      'a reference → distributed foreign key (R3)',
      `alter table organizations add column fixture_owner uuid,
         add constraint fixture_owner_fk foreign key (id, fixture_owner) references users (organization_id, id)`,
      ['R3 organizations.fixture_owner_fk'],
    ],
    [
      'a distributed → distributed foreign key without organization_id (R3)',
      `create table fixture_target (id uuid primary key, organization_id uuid not null);
       alter table contacts add column fixture_user uuid constraint fixture_user_fk references fixture_target (id)`,
      ['R2 fixture_target.fixture_target_pkey', 'R3 contacts.fixture_user_fk'],
    ],
    [
      'a distributed → distributed foreign key pairing organization_id with another column (R3)',
      `alter table contacts add column fixture_user uuid,
         add constraint fixture_user_fk foreign key (fixture_user, organization_id) references users (organization_id, id)`,
      ['R3 contacts.fixture_user_fk'],
    ],
    [
      'a foreign key to an unclassified table (R3)',
      `create schema fixture_outside; create table fixture_outside.lookup (id int primary key);
       alter table contacts add column fixture_lookup int constraint fixture_lookup_fk references fixture_outside.lookup (id)`,
      ['R3 contacts.fixture_lookup_fk'],
    ],
    [
      'ON DELETE SET NULL on a foreign key with organization_id (R4)',
      `alter table contacts add column fixture_department uuid, add constraint fixture_department_fk
         foreign key (organization_id, fixture_department) references departments (organization_id, id) on delete set null`,
      ['R4 contacts.fixture_department_fk'],
    ],
    [
      'ON UPDATE CASCADE on a foreign key with organization_id (R4)',
      `alter table contacts add column fixture_department uuid, add constraint fixture_department_fk
         foreign key (organization_id, fixture_department) references departments (organization_id, id) on update cascade`,
      ['R4 contacts.fixture_department_fk'],
    ],
    [
      'an IN (SELECT …) policy (R5)',
      'create policy fixture_policy on contacts as restrictive using (production_id in (select id from productions))',
      ['R5 contacts.fixture_policy'],
    ],
    [
      'a trigger function reading TG_TABLE_NAME (R6)',
      `${fixtureFunction('fixture_touch', `raise notice '%', TG_TABLE_NAME; return new;`)};
       create trigger fixture_touch before insert on contacts for each row execute function fixture_touch()`,
      ['R6 contacts.fixture_touch'],
    ],
    [
      'a trigger function reading TG_RELID, on the reference table (R6)',
      `${fixtureFunction('fixture_touch', `if TG_RELID = 0 then return null; end if; return new;`)};
       create trigger fixture_touch before update on organizations for each row execute function fixture_touch()`,
      ['R6 organizations.fixture_touch'],
    ],
    [
      'a transition-table INSERT … SELECT trigger (R7)',
      `${fixtureFunction(
        'fixture_log',
        `insert into audit_logs (organization_id, action, entity_type, entity_id)
           select n.organization_id, 'insert', 'contacts', n.id from fixture_new n; return null;`,
      )};
       create trigger fixture_log after insert on contacts referencing new table as fixture_new
         for each statement execute function fixture_log()`,
      ['R7 contacts.fixture_log'],
    ],
  ])('reports %s', async (_label, mutation, expected) => {
    expect(await addedBy(db(), mutation)).toEqual(expected)
  })

  // And stays quiet on the distributable forms of the same things.
  it.each([
    [
      'a tenant table with a composite key, foreign keys and an = exclusion',
      `create table fixture_items (organization_id uuid not null references organizations (id) on delete cascade,
         id uuid not null, user_id uuid, primary key (organization_id, id) include (user_id),
         foreign key (organization_id, user_id) references users (organization_id, id) on delete cascade,
         exclude using hash (organization_id with =))`,
    ],
    [
      'an expression unique index led by organization_id',
      'create unique index fixture_key on users (organization_id, lower(email::text))',
    ],
    ['a unique index on the reference table', 'create unique index fixture_name_key on organizations (name)'],
    ['a reference table named in the options', 'create table fixture_lookup (code text primary key)'],
    [
      'a policy with the inline tenant predicate',
      'create policy fixture_policy on contacts as restrictive using (organization_id = callsheet_tenant())',
    ],
    [
      'a comment or a string naming TG_TABLE_NAME',
      `${fixtureFunction('fixture_touch', `-- not TG_TABLE_NAME\n raise notice 'TG_TABLE_NAME'; return new;`)};
       create trigger fixture_touch before insert on contacts for each row execute function fixture_touch()`,
    ],
    [
      'a trigger reading its transition table with SELECT … INTO only',
      `${fixtureFunction(
        'fixture_log',
        `select array_agg(n.id), array_agg(n.organization_id) into v_ids, v_orgs from fixture_new n;
         insert into audit_logs (organization_id, action, entity_type, entity_id)
           select o, 'insert', 'contacts', i from unnest(v_orgs, v_ids) as u(o, i); return null;`,
        'declare v_ids uuid[]; v_orgs uuid[];',
      )};
       create trigger fixture_log after insert on contacts referencing new table as fixture_new
         for each statement execute function fixture_log()`,
    ],
  ])('accepts %s', async (_label, mutation) => {
    expect(await addedBy(db(), mutation, { referenceTables: ['fixture_lookup'] })).toEqual([])
  })

  it('leaves deferred rules out, and refuses an unknown rule', async () => {
    const found = await distributionViolations(runOf(db()), { deferredRules: ['R5', 'R6', 'R7'] })
    expect(found.map((v) => v.rule).filter((r) => r !== 'R2')).toEqual([])
    const error = await distributionViolations(runOf(db()), { deferredRules: ['R9' as 'R0'] }).catch((e: unknown) => e)
    expect(isCallsheetDbError(error, 'INVALID_CONFIGURATION')).toBe(true)
  })
})

/** The rewritten policies still keep tenants apart (they are what a Citus deployment runs). */
function describeTenantIsolationAfterRewrite(db: () => SqlRunner): void {
  let a: SeededTenant
  let b: SeededTenant
  beforeAll(async () => {
    a = await seedTenant(db(), 'shape-a')
    b = await seedTenant(db(), 'shape-b')
  })

  const enter = async (tx: SqlRunner, organizationId: string) => {
    const settings = settingsStatement({
      role: 'callsheet_app',
      organizationId,
      actorId: '',
      apiKeyId: '',
      requestId: '',
      ip: '',
      proof: testProof(organizationId),
    })
    await tx.query(settings.text, settings.params)
  }

  it('with the inline policies, tenant A sees its rows and none of tenant B', async () => {
    const seen = await rolledBack(db(), async (tx) => {
      await inlinePolicies(tx)
      await enter(tx, a.organizationId)
      const ids = async (table: string) => (await tx.query<{ id: string }>(`select id from ${table}`)).map((r) => r.id)
      return { organizations: await ids('organizations'), contacts: await ids('contacts'), users: await ids('users') }
    })
    expect(seen).toEqual({ organizations: [a.organizationId], contacts: [a.contactId], users: [a.userId] })
  })

  it("with the inline policies, tenant A cannot write a row of tenant B's", async () => {
    await expectSqlState(
      rolledBack(db(), async (tx) => {
        await inlinePolicies(tx)
        await enter(tx, a.organizationId)
        await tx.query(`insert into departments (organization_id, name, code) values ($1, 'Grip', 'GRP')`, [
          b.organizationId,
        ])
      }),
      '42501',
    )
  })
}
