import { LIBRARY_TABLE_NAMES } from '../schema/table-names'

/**
 * What makes a login privileged for the library: anything through which SQL running as it (after a
 * `RESET ROLE`, or a `SET ROLE` to a role it belongs to) escapes row-level security or can grant
 * itself that power. Computed for the role named by `$1` (`session_user` when null).
 *
 * - superuser or BYPASSRLS, itself or through a role it belongs to (NOINHERIT does not stop `SET ROLE`);
 * - CREATEROLE, itself or through a role: on PostgreSQL 15 it may grant itself any non-superuser role,
 *   the tables' owner included;
 * - a member of the role that owns one of the library's tables or functions (the owner may switch RLS
 *   off, drop policies, and `FORCE` does not bind it against `ALTER TABLE`).
 */
export const LOGIN_PRIVILEGES_SQL = `select r.rolname::text as login,
  array(select m.rolname::text from pg_roles m
        where pg_has_role(r.oid, m.oid, 'MEMBER') and m.rolsuper order by 1) as superuser,
  array(select m.rolname::text from pg_roles m
        where pg_has_role(r.oid, m.oid, 'MEMBER') and m.rolbypassrls order by 1) as bypassrls,
  array(select m.rolname::text from pg_roles m
        where pg_has_role(r.oid, m.oid, 'MEMBER') and m.rolcreaterole order by 1) as createrole,
  array(select distinct o.rolname::text from pg_roles o
        where pg_has_role(r.oid, o.oid, 'MEMBER') and (
          o.oid in (select c.relowner from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = 'public' and c.relname = any($2::text[]))
          or o.oid in (select p.proowner from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                       where n.nspname = 'public' and p.proname like 'callsheet\\_%'))
        order by 1) as owner
from pg_catalog.pg_roles r where r.rolname = coalesce($1::text, session_user::text)`

/** The parameters of {@link LOGIN_PRIVILEGES_SQL} for `login` (`session_user` when omitted). */
export const loginPrivilegesParams = (login?: string): [string | null, string[]] => [
  login ?? null,
  [...LIBRARY_TABLE_NAMES],
]

/** One row of {@link LOGIN_PRIVILEGES_SQL}: for each privilege, the roles of the login that carry it. */
export interface LoginPrivileges {
  readonly login: string
  readonly superuser: readonly string[]
  readonly bypassrls: readonly string[]
  readonly createrole: readonly string[]
  readonly owner: readonly string[]
}

const through = (login: string, roles: readonly string[]): string => {
  // A superuser is a member of every role: name the roles only when the login itself lacks the privilege.
  return roles.includes(login) ? '' : ` (through ${roles.join(', ')})`
}

/** Why `row`'s login must not serve requests; empty when it may. */
export function loginPrivilegeProblems(row: LoginPrivileges): string[] {
  const problems: string[] = []
  const { login } = row
  if (row.superuser.length > 0) problems.push(`${login} is a superuser${through(login, row.superuser)}`)
  if (row.bypassrls.length > 0) problems.push(`${login} has BYPASSRLS${through(login, row.bypassrls)}`)
  if (row.createrole.length > 0) problems.push(`${login} has CREATEROLE${through(login, row.createrole)}`)
  if (row.owner.length > 0)
    problems.push(
      row.owner.includes(login)
        ? `${login} owns the library's tables`
        : `${login} is a member of ${row.owner.join(', ')}, which owns the library's tables`,
    )
  return problems
}
