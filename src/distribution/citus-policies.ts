/**
 * PLACEHOLDER until the policies helper's `citusPolicyStatements` lands (issue 16): same name and
 * signature; the integrator keeps theirs. Citus refuses subqueries in policies ("Subqueries are not
 * supported in policies on distributed tables"), so `x = (select f())` becomes `x = f()`.
 */

/** Runs one catalog query and returns its rows. */
export type CatalogQuery = <T extends Record<string, unknown>>(text: string) => Promise<T[]>

// A whole predicate of the form pg_get_expr prints for `col = (select expr)`.
const SUBQUERY_PREDICATE = /^\((\w+) = \( SELECT (.+) AS (?:"[^"]+"|\w+)\)\)$/s

/** The inline form of one deparsed predicate, or `undefined` when it has no scalar subquery to remove. */
function inlinePredicate(expr: string | null): string | undefined {
  if (expr === null) return undefined
  const match = SUBQUERY_PREDICATE.exec(expr.trim())
  return match === null ? undefined : `(${match[1]} = ${match[2]})`
}

/**
 * The `ALTER POLICY` statements that put every policy of the public schema into the form Citus
 * accepts; none when they all have it already (so running them is idempotent).
 */
export async function citusPolicyStatements(run: CatalogQuery): Promise<string[]> {
  const policies = await run<{ table: string; name: string; qual: string | null; check: string | null }>(
    `select tablename as "table", policyname as name, qual, with_check as "check"
       from pg_catalog.pg_policies where schemaname = 'public' order by tablename, policyname`,
  )
  const statements: string[] = []
  for (const policy of policies) {
    const using = inlinePredicate(policy.qual)
    const check = inlinePredicate(policy.check)
    if (using === undefined && check === undefined) continue
    const parts = [using === undefined ? '' : ` USING ${using}`, check === undefined ? '' : ` WITH CHECK ${check}`]
    statements.push(`ALTER POLICY ${quoteIdent(policy.name)} ON public.${quoteIdent(policy.table)}${parts.join('')}`)
  }
  return statements
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
