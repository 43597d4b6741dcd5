import { LIBRARY_TABLE_NAMES } from './table-names'

/**
 * Apps' own tenant tables, registered by `SELECT callsheet_register_tenant_table('x')` in the app's
 * migration (drizzle/0018_app_tenant_tables.sql): the registry, and how the operator tools find them.
 */

/** The registry of app tables (owner only, like the migrations table beside it). */
export const APP_TABLE_REGISTRY = 'callsheet_migrations.tenant_tables'

/** Runs one statement without parameters (a CLI connection or a drizzle database, adapted). */
export type CatalogQuery = <T>(text: string) => Promise<T[]>

// Whether this role may read the registry: checked first, because a statement that names a table its
// role may not read fails as a whole (42501), and one that names a missing table fails to plan.
export const REGISTRY_READABLE_SQL = `
  select coalesce((
    select has_schema_privilege(n.oid, 'USAGE') and has_table_privilege(c.oid, 'SELECT')
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'callsheet_migrations' and c.relname = 'tenant_tables'), false) as readable`

const REGISTERED_SQL = `
  select t.table_name as name from ${APP_TABLE_REGISTRY} t
  where t.table_schema = 'public' and to_regclass(format('public.%I', t.table_name)) is not null
  order by 1`

// The library's names are identifiers of its own schema (lower-case letters and underscores).
const LIBRARY_ARRAY = `array[${LIBRARY_TABLE_NAMES.map((n) => `'${n}'`).join(', ')}]::text[]`

// Without the registry (a runtime login, which is not the owner): the tables in public, other than the
// library's, that carry a policy named tenant_isolation. Catalogs every role may read.
const FALLBACK_SQL = `
  select c.relname::text as name
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
    and c.relname <> all (${LIBRARY_ARRAY})
    and exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid and p.polname = 'tenant_isolation')
  order by 1`

/**
 * The names (in `public`) of the registered app tables that exist. A role that may not read the
 * registry gets the tables other than the library's that carry the `tenant_isolation` policy instead:
 * the same set while every registered table is healthy (`callsheet-db doctor` says whether it is).
 */
export async function appTableNames(query: CatalogQuery): Promise<string[]> {
  const [state] = await query<{ readable: boolean }>(REGISTRY_READABLE_SQL)
  const rows = await query<{ name: string }>(state?.readable === true ? REGISTERED_SQL : FALLBACK_SQL)
  return rows.map((r) => r.name)
}
