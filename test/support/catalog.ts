import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core'
import { apiKeys, auditLogs, contacts, departments, organizations, productions, uploads, users } from '../../src/schema'
import { searchPathPinned } from '../../src/cli/doctor'
import { TENANT_TABLE_NAMES } from '../../src/schema/table-names'
import type { SqlRunner } from '../harness/sql-runner'

/** Tables that carry tenant rows and must be isolated by RLS (derived from the schema: a new table is checked too). */
const TENANT_TABLES = TENANT_TABLE_NAMES
/** Tables whose rows are soft-deleted. */
const SOFT_DELETE_TABLES = ['users', 'departments', 'productions', 'contacts', 'uploads']
/** Every table of the Drizzle schema, by SQL name. */
const SCHEMA_TABLES: Record<string, PgTable> = {
  organizations,
  users,
  departments,
  productions,
  contacts,
  uploads,
  api_keys: apiKeys,
  audit_logs: auditLogs,
}
const APP_ROLE = 'callsheet_app'
// The whole predicate, as pg_get_expr prints it: the tenant proven by callsheet_tenant() (migration 0012),
// nothing OR-ed to it. Compared case- and space-insensitively.
const TENANT_PREDICATE = '(organization_id = ( select callsheet_tenant() as callsheet_tenant))'
const hasTenantPredicate = (expr: string | null): boolean =>
  expr !== null && expr.replace(/\s+/g, ' ').trim().toLowerCase() === TENANT_PREDICATE

/**
 * Reads pg_catalog and returns every way the database breaks the schema's promises (an empty list
 * when it keeps them all). Used by the catalog tests and by the mutation checks that prove they bite.
 */
export async function catalogViolations(db: SqlRunner): Promise<string[]> {
  const problems: string[] = []
  const columns = await db.query<{ table: string; column: string; type: string; not_null: boolean }>(`
    select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped`)
  const col = (table: string, column: string) => columns.find((c) => c.table === table && c.column === column)

  const tables = await db.query<{
    table: string
    kind: string
    rls: boolean
    force: boolean
    owner: string
    comment: string | null
    is_partition: boolean
  }>(`
    select c.relname as table, c.relkind as kind, c.relrowsecurity as rls, c.relforcerowsecurity as force,
           pg_get_userbyid(c.relowner) as owner, obj_description(c.oid, 'pg_class') as comment, c.relispartition as is_partition
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p')`)
  const policies = await db.query<{
    table: string
    name: string
    cmd: string
    roles: string[]
    qual: string | null
    check: string | null
    permissive: boolean
  }>(`
    select c.relname as table, p.polname as name, p.polcmd::text as cmd, p.polpermissive as permissive,
           array(select case when r = 0 then 'public' else pg_get_userbyid(r) end from unnest(p.polroles) r) as roles,
           pg_get_expr(p.polqual, p.polrelid) as qual, pg_get_expr(p.polwithcheck, p.polrelid) as check
    from pg_policy p join pg_class c on c.oid = p.polrelid`)
  const fks = await db.query<{ table: string; name: string; cols: string[] }>(`
    select c.relname as table, k.conname as name,
           array(select a.attname from unnest(k.conkey) with ordinality u(n, i) join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i) as cols
    from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
    where k.contype = 'f' and n.nspname = 'public' and not c.relispartition`)
  const indexes = await db.query<{
    table: string
    name: string
    cols: string[]
    unique: boolean
    pred: string | null
    valid: boolean
    primary: boolean
  }>(`
    select c.relname as table, ic.relname as name, i.indisunique as unique, i.indisvalid as valid, i.indisprimary as primary,
           pg_get_expr(i.indpred, i.indrelid) as pred,
           array(select a.attname from unnest(i.indkey::int2[]) with ordinality u(n, k) join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.n order by u.k) as cols
    from pg_index i join pg_class c on c.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid
    join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and not c.relispartition`)
  const triggers = await db.query<{ table: string; name: string }>(`
    select c.relname as table, t.tgname as name from pg_trigger t join pg_class c on c.oid = t.tgrelid
    where not t.tgisinternal and t.tgfoid = 'callsheet_set_updated_at'::regproc`)

  for (const [table, definition] of Object.entries(SCHEMA_TABLES)) {
    const info = tables.find((t) => t.table === table)
    if (!info) {
      problems.push(`${table}: table missing`)
      continue
    }
    if (!info.comment) problems.push(`${table}: no table comment`)
    // The Drizzle definition and the database agree column by column.
    const config = getTableConfig(definition)
    for (const c of config.columns) {
      const actual = col(table, c.name)
      if (!actual) problems.push(`${table}.${c.name}: in the Drizzle schema but not in the database`)
      else if (actual.not_null !== c.notNull)
        problems.push(`${table}.${c.name}: NOT NULL is ${actual.not_null} in the database, ${c.notNull} in the schema`)
    }
    for (const c of columns.filter((x) => x.table === table)) {
      if (!config.columns.some((d) => d.name === c.column))
        problems.push(`${table}.${c.column}: in the database but not in the Drizzle schema`)
    }
  }

  for (const table of TENANT_TABLES) {
    const info = tables.find((t) => t.table === table)
    if (!info) continue
    const id = col(table, 'id')
    if (id?.type !== 'uuid') problems.push(`${table}: id is not a uuid`)
    const pk = indexes.find((i) => i.table === table && i.primary)
    // Citus distributes by organization_id and refuses a primary key without it (migration 0015).
    if (!pk || pk.cols[0] !== 'organization_id' || !pk.cols.includes('id'))
      problems.push(`${table}: primary key is not (organization_id, …, id)`)
    for (const unique of indexes.filter((i) => i.table === table && i.unique && !i.cols.includes('organization_id')))
      problems.push(`${table}: unique index ${unique.name} does not include organization_id`)
    const org = col(table, 'organization_id')
    if (org?.type !== 'uuid' || !org.not_null) problems.push(`${table}: organization_id is not uuid NOT NULL`)
    const created = col(table, 'created_at')
    if (created?.type !== 'timestamp with time zone' || !created.not_null)
      problems.push(`${table}: created_at is not timestamptz NOT NULL`)
    // audit_logs is append-only: rows are never updated, so it has no updated_at.
    if (table !== 'audit_logs') {
      const updated = col(table, 'updated_at')
      if (updated?.type !== 'timestamp with time zone' || !updated.not_null)
        problems.push(`${table}: updated_at is not timestamptz NOT NULL`)
      if (!triggers.some((t) => t.table === table)) problems.push(`${table}: no trigger keeps updated_at current`)
    }
    if (!info.rls) problems.push(`${table}: row-level security is not enabled`)
    if (!info.force) problems.push(`${table}: row-level security is not forced`)
    const own = policies.filter((p) => p.table === table)
    const covering = own.find(
      (p) =>
        p.cmd === '*' &&
        p.permissive &&
        p.roles.some((r) => r === 'public' || r === APP_ROLE) &&
        hasTenantPredicate(p.qual) &&
        hasTenantPredicate(p.check),
    )
    if (!covering)
      problems.push(
        `${table}: no permissive policy covers all commands with the tenant predicate in USING and WITH CHECK`,
      )
    for (const p of own) {
      if (`${p.qual ?? ''} ${p.check ?? ''}`.includes('deleted_at'))
        problems.push(`${table}: policy ${p.name} mentions deleted_at`)
      // Permissive policies OR together: any other policy that can write would widen the tenant policy.
      if (p !== covering && p.permissive && p.cmd !== 'r')
        problems.push(`${table}: permissive policy ${p.name} applies to writes`)
    }
  }

  for (const table of SOFT_DELETE_TABLES) {
    const deleted = col(table, 'deleted_at')
    if (deleted?.type !== 'timestamp with time zone' || deleted.not_null)
      problems.push(`${table}: deleted_at is not a nullable timestamptz`)
    for (const idx of indexes.filter((i) => i.table === table && i.unique && !i.primary)) {
      const isParentKey = idx.cols.length === 2 && idx.cols[0] === 'organization_id' && idx.cols[1] === 'id'
      if (!isParentKey && !idx.pred?.includes('deleted_at IS NULL'))
        problems.push(`${table}: unique index ${idx.name} is not partial on live rows`)
    }
  }

  for (const fk of fks) {
    const covered = indexes.some(
      (i) =>
        i.table === fk.table &&
        i.cols.length >= fk.cols.length &&
        fk.cols.every((c) => i.cols.slice(0, fk.cols.length).includes(c)),
    )
    if (!covered) problems.push(`${fk.table}: foreign key ${fk.name} (${fk.cols.join(', ')}) has no index`)
  }
  for (const idx of indexes.filter((i) => !i.valid)) problems.push(`${idx.table}: index ${idx.name} is invalid`)

  // Audit rows come from the database: one statement-level trigger per event on every audited table.
  const auditTriggers = await db.query<{ table: string; events: number }>(`
    select c.relname as table, t.tgtype::int as events from pg_trigger t join pg_class c on c.oid = t.tgrelid
    where not t.tgisinternal and t.tgfoid = 'callsheet_audit'::regproc`)
  for (const table of TENANT_TABLES.filter((t) => t !== 'audit_logs')) {
    // tgtype bits: 1 = row-level, 4 = insert, 8 = delete, 16 = update.
    for (const [event, bit] of [
      ['insert', 4],
      ['update', 16],
      ['delete', 8],
    ] as const) {
      const found = auditTriggers.some((t) => t.table === table && (t.events & bit) !== 0 && (t.events & 1) === 0)
      if (!found) problems.push(`${table}: no statement-level audit trigger on ${event}`)
    }
  }
  for (const privilege of ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) {
    const [granted] = await db.query<{ yes: boolean }>(
      `select has_table_privilege($1, 'public.audit_logs', $2) as yes`,
      [APP_ROLE, privilege],
    )
    if (granted?.yes) problems.push(`audit_logs: ${APP_ROLE} has ${privilege}`)
  }

  const audit = tables.find((t) => t.table === 'audit_logs')
  if (audit && audit.kind !== 'p') problems.push('audit_logs: not partitioned')
  const partitions = await db.query<{ name: string; bound: string }>(`
    select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound from pg_inherits i
    join pg_class c on c.oid = i.inhrelid where i.inhparent = 'public.audit_logs'::regclass`)
  if (!partitions.some((p) => p.bound === 'DEFAULT')) problems.push('audit_logs: no DEFAULT partition')

  const [role] = await db.query<{ super: boolean; bypass: boolean; login: boolean }>(
    `select rolsuper as super, rolbypassrls as bypass, rolcanlogin as login from pg_roles where rolname = $1`,
    [APP_ROLE],
  )
  if (!role) problems.push(`${APP_ROLE}: role missing`)
  else {
    if (role.super) problems.push(`${APP_ROLE}: is a superuser`)
    if (role.bypass) problems.push(`${APP_ROLE}: has BYPASSRLS`)
  }
  for (const t of tables.filter((x) => x.owner === APP_ROLE)) problems.push(`${APP_ROLE}: owns ${t.table}`)
  const [membership] = await db.query<{ n: number }>(
    `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('r', 'p') and pg_has_role($1, c.relowner, 'USAGE')`,
    [APP_ROLE],
  )
  if (membership && membership.n > 0) problems.push(`${APP_ROLE}: is a member of the role that owns the tables`)

  // No relation lookup of a function that runs with its owner's rights (or is the owner's maintenance)
  // may go through pg_temp: the path is pinned and ends with pg_temp (PostgreSQL searches pg_temp first
  // for relations unless the path names it).
  const functions = await db.query<{ name: string; definer: boolean; config: string[] | null }>(`
    select p.proname as name, p.prosecdef as definer, p.proconfig as config
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('public', 'callsheet_private') and (p.prosecdef or p.proname like 'callsheet%')`)
  for (const f of functions) {
    const path = (f.config ?? []).find((c) => c.startsWith('search_path='))
    const pinned = searchPathPinned(f.config)
    if (f.definer && !pinned) problems.push(`${f.name}: SECURITY DEFINER without a search_path that ends with pg_temp`)
    else if (!f.definer && path !== undefined && !pinned)
      problems.push(`${f.name}: search_path does not end with pg_temp`)
  }

  // SQL run as the app role must not be able to create the temp tables that would shadow the library's.
  const [temp] = await db.query<{ app: boolean; everyone: boolean }>(
    `select has_database_privilege($1, current_database(), 'TEMPORARY') as app,
            exists (select 1 from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                    where d.datname = current_database() and a.grantee = 0 and a.privilege_type = 'TEMPORARY') as everyone`,
    [APP_ROLE],
  )
  if (temp?.everyone) problems.push('database: PUBLIC may create temporary tables')
  if (temp?.app) problems.push(`database: ${APP_ROLE} may create temporary tables`)
  return problems
}
