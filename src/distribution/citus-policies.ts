import { catalogRows, type CatalogQuery } from './catalog-query'
import { DISTRIBUTED_SCHEMAS } from './citus-shape'

// The tenant predicate's scalar subquery as pg_get_expr prints it (PostgreSQL 15 and PGlite alike):
// `( SELECT callsheet_tenant() AS callsheet_tenant)`, schema-qualified when public is not on the path.
const TENANT_SUBQUERY = /\(\s*SELECT\s+((?:public\.)?callsheet_tenant\(\))\s+AS\s+callsheet_tenant\s*\)/gi
const ANY_SUBQUERY = /\(\s*SELECT\b/i

const POLICIES_SQL = `
  select format('ALTER POLICY %I ON %I.%I', p.polname, n.nspname, c.relname) as target,
         pg_get_expr(p.polqual, p.polrelid) as using, pg_get_expr(p.polwithcheck, p.polrelid) as check
  from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = any($1::text[])
  order by n.nspname, c.relname, p.polname`

/**
 * The `ALTER POLICY` statements that make the policies distributable: every policy whose only subqueries
 * are the tenant predicate's `(SELECT callsheet_tenant())` gets the inline `callsheet_tenant()` instead
 * (same result: the subquery is uncorrelated and returns one row). Citus refuses a subquery in a policy
 * (rule R5); on a single node the subquery form is kept, because it calls the proof-verifying function once
 * per statement where the inline form calls it per row on filter plans. A policy with any other subquery
 * is left as it is (R5 reports it). Idempotent: no statement for a policy already inline.
 *
 * @example
 * ```ts
 * for (const statement of await citusPolicyStatements(run)) await run(statement)
 * ```
 */
export async function citusPolicyStatements(run: CatalogQuery): Promise<string[]> {
  const policies = await catalogRows<{ target: string; using: string | null; check: string | null }>(
    run,
    POLICIES_SQL,
    [[...DISTRIBUTED_SCHEMAS]],
  )
  const statements: string[] = []
  for (const policy of policies) {
    const using = policy.using?.replace(TENANT_SUBQUERY, '$1') ?? null
    const check = policy.check?.replace(TENANT_SUBQUERY, '$1') ?? null
    if (using === policy.using && check === policy.check) continue
    if ([using, check].some((expr) => expr !== null && ANY_SUBQUERY.test(expr))) continue
    const clauses = [using === null ? '' : ` USING (${using})`, check === null ? '' : ` WITH CHECK (${check})`]
    statements.push(`${policy.target}${clauses.join('')}`)
  }
  return statements
}
