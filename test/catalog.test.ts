import { expect, it } from 'vitest'
import { describeEachEngine } from './harness/engines'
import type { SqlRunner } from './harness/sql-runner'
import { catalogViolations } from './support/catalog'

/** Applies `mutation`, reads the catalog, and rolls everything back. */
async function violationsAfter(db: SqlRunner, mutation: string): Promise<string[]> {
  const rollback = new Error('rollback')
  let found: string[] = []
  await db
    .transaction(async (tx) => {
      await tx.exec(mutation)
      found = await catalogViolations(tx)
      throw rollback
    })
    .catch((error: unknown) => {
      if (error !== rollback) throw error
    })
  return found
}

describeEachEngine('catalog', (engine) => {
  it('keeps every schema promise: UUID keys, timestamps, tenant column, FK indexes, forced RLS, app role', async () => {
    expect(await catalogViolations(engine().admin)).toEqual([])
  })

  it('has monthly audit partitions for this month and three ahead, plus DEFAULT', async () => {
    const rows = await engine().admin.query<{ name: string }>(
      `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
       where i.inhparent = 'public.audit_logs'::regclass order by 1`,
    )
    const now = new Date()
    const expected = [0, 1, 2, 3].map((k) => {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + k, 1))
      return `audit_logs_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`
    })
    for (const name of expected) expect(rows.map((r) => r.name)).toContain(name)
    expect(rows.map((r) => r.name)).toContain('audit_logs_default')
  })

  // The catalog test is only worth something if it fails when a promise is broken.
  it.each([
    [
      'a dropped policy',
      'drop policy tenant_isolation on contacts',
      'contacts: no permissive policy covers all commands',
    ],
    ['FORCE removed', 'alter table uploads no force row level security', 'uploads: row-level security is not forced'],
    ['RLS disabled', 'alter table users disable row level security', 'users: row-level security is not enabled'],
    [
      'a foreign-key index dropped',
      'drop index contacts_department_idx',
      'contacts: foreign key contacts_department_fk',
    ],
    [
      'a policy without the tenant predicate',
      `drop policy tenant_isolation on departments; create policy tenant_isolation on departments using (true) with check (true)`,
      'departments: no permissive policy covers all commands',
    ],
    [
      'a policy without nullif',
      `drop policy tenant_isolation on productions; create policy tenant_isolation on productions
         using (organization_id = current_setting('app.organization_id', true)::uuid)
         with check (organization_id = current_setting('app.organization_id', true)::uuid)`,
      'productions: no permissive policy covers all commands',
    ],
    [
      'a second permissive policy that can write',
      `create policy sneaky on contacts for update using (true)`,
      'contacts: permissive policy sneaky applies to writes',
    ],
    [
      'an audit trigger dropped',
      'drop trigger contacts_audit_update on contacts',
      'contacts: no statement-level audit trigger on update',
    ],
    [
      'INSERT granted on audit_logs',
      'grant insert on audit_logs to callsheet_app',
      'audit_logs: callsheet_app has INSERT',
    ],
    ['BYPASSRLS granted to the app role', 'alter role callsheet_app bypassrls', 'callsheet_app: has BYPASSRLS'],
    ['the app role owning a table', 'alter table api_keys owner to callsheet_app', 'callsheet_app: owns api_keys'],
    [
      'a unique index that counts deleted rows',
      'drop index users_email_live_key; create unique index users_email_live_key on users (organization_id, email)',
      'users: unique index users_email_live_key is not partial',
    ],
    [
      'a primary key without the distribution column',
      'alter table departments drop constraint departments_pkey cascade; alter table departments add primary key (id)',
      'departments: primary key is not (organization_id, …, id)',
    ],
    [
      'a unique index without the distribution column (the old api_keys_key_hash_key)',
      'create unique index api_keys_key_hash_key on api_keys (key_hash)',
      'api_keys: unique index api_keys_key_hash_key does not include organization_id',
    ],
    [
      'the updated_at trigger dropped',
      'drop trigger contacts_set_updated_at on contacts',
      'contacts: no trigger keeps updated_at current',
    ],
    ['a table comment removed', `comment on table uploads is null`, 'uploads: no table comment'],
    [
      'the DEFAULT audit partition detached',
      'alter table audit_logs detach partition audit_logs_default',
      'audit_logs: no DEFAULT partition',
    ],
    [
      'the audit function with pg_temp searched first (issue 14)',
      'alter function callsheet_audit() set search_path = pg_catalog, public',
      'callsheet_audit: SECURITY DEFINER without a search_path that ends with pg_temp',
    ],
    [
      'a SECURITY DEFINER function without a pinned path',
      `create function callsheet_sneaky() returns int language sql security definer as 'select 1'`,
      'callsheet_sneaky: SECURITY DEFINER without a search_path that ends with pg_temp',
    ],
    [
      'a SECURITY DEFINER function with pg_temp before its schemas',
      `create function public.sneaky_definer() returns int language sql security definer set search_path = pg_temp, pg_catalog as 'select 1'`,
      'sneaky_definer: SECURITY DEFINER without a search_path that ends with pg_temp',
    ],
    [
      'TEMPORARY granted back to PUBLIC',
      "do $$ begin execute format('grant temporary on database %I to public', current_database()); end $$",
      'database: PUBLIC may create temporary tables',
    ],
    [
      'a policy that compares with the unproven setting',
      `alter policy tenant_isolation on contacts using (organization_id = (select nullif(current_setting('app.organization_id', true), '')::uuid))
         with check (organization_id = (select nullif(current_setting('app.organization_id', true), '')::uuid))`,
      'contacts: no permissive policy covers all commands',
    ],
  ])('fails on %s', async (_label, mutation, expected) => {
    const found = await violationsAfter(engine().admin, mutation)
    expect(found.join('\n')).toContain(expected)
  })
})
