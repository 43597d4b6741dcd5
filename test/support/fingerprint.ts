import type { SqlRunner } from '../harness/sql-runner'

/** Every table of the library, as the owner sees it (RLS does not apply): a refused call must change none. */
const TABLES = [
  'organizations',
  'users',
  'departments',
  'productions',
  'contacts',
  'uploads',
  'api_keys',
  'audit_logs',
] as const
export type TableName = (typeof TABLES)[number]
export type Fingerprint = Record<TableName, string>

const FINGERPRINT_SQL = TABLES.map(
  (t) =>
    `select '${t}' as t, count(*)::int || ':' || md5(coalesce(string_agg(md5(x::text), '' order by x.id), '')) as h from public.${t} x`,
).join(' union all ')

/** Row count and a hash of every row of every table, as the owner (RLS does not apply). */
export async function fingerprint(admin: SqlRunner): Promise<Fingerprint> {
  const rows = await admin.query<{ t: TableName; h: string }>(FINGERPRINT_SQL)
  return Object.fromEntries(rows.map((r) => [r.t, r.h])) as Fingerprint
}

/** Tables whose fingerprint differs. */
export function changedTables(a: Fingerprint, b: Fingerprint, ignore: readonly TableName[] = []): TableName[] {
  return TABLES.filter((t) => !ignore.includes(t) && a[t] !== b[t])
}
