import { InvalidConfigurationError } from '../errors'
import { catalogRows, type CatalogQuery } from './catalog-query'
import { DISTRIBUTION_RULES, type DistributionRule, type DistributionViolation } from './distribution-rules'
import { tableNameVariablesRead, transitionTableMisuse } from './trigger-source'

/** The distribution column of every distributed table. */
export const DISTRIBUTION_COLUMN = 'organization_id'

/**
 * The schemas whose tables Citus must hold: the library's tables, and its private one (the tenant-proof
 * keys, which policies read on every node).
 */
export const DISTRIBUTED_SCHEMAS: readonly string[] = ['public', 'callsheet_private']

/** The reference tables (a full copy on every node) of the library's schema. */
export const REFERENCE_TABLES: readonly string[] = ['organizations', 'callsheet_private.tenant_keys']

/** Options of {@link distributionViolations}. */
export interface DistributionShapeOptions {
  /**
   * More reference tables: `name` in public, `schema.name` elsewhere.
   * @default [] (organizations and callsheet_private.tenant_keys always are)
   */
  readonly referenceTables?: readonly string[]
  /**
   * Rules a deployment has chosen to fix later: their violations are left out (CITUS.md §4 `deferred_rules`).
   * @default []
   */
  readonly deferredRules?: readonly DistributionRule[]
}

type TableClass = 'reference' | 'distributed' | 'unclassified'

interface TableRow {
  oid: string
  name: string
  root: string | null
  column_type: string | null
  not_null: boolean | null
  attnum: number | null
}

// `schema.name`, or just `name` in public.
const qualified = (ns: string, rel: string) =>
  `case when ${ns}.nspname = 'public' then ${rel}.relname::text else ${ns}.nspname || '.' || ${rel}.relname end`

const TABLES_SQL = `
  select c.oid::text as oid, ${qualified('n', 'c')} as name,
         case when c.relispartition then pg_partition_root(c.oid)::oid::text end as root,
         format_type(a.atttypid, a.atttypmod) as column_type, a.attnotnull as not_null, a.attnum::int as attnum
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  left join pg_attribute a on a.attrelid = c.oid and a.attname = $2 and a.attnum > 0 and not a.attisdropped
  where n.nspname = any($1::text[]) and c.relkind in ('r', 'p')`

// Key and INCLUDE columns by position (0 = an expression); for EXCLUDE, whether each key's operator is
// a btree equality (Citus's OperatorImplementsEquality). An index attached to a partitioned table's index
// is judged by that one.
const INDEXES_SQL = `
  select ic.relname as name, i.indrelid::text as table_oid, i.indisexclusion as exclusion,
         array(select k::int from unnest(i.indkey::int2[]) with ordinality u(k, p) where p <= i.indnkeyatts order by p) as keys,
         exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid) as attached,
         (select array(select exists (select 1 from pg_amop am join pg_am m on m.oid = am.amopmethod
                                      where am.amopopr = e.op and m.amname = 'btree' and am.amopstrategy = 3)
                       from unnest(x.conexclop) with ordinality e(op, p) order by e.p)
          from pg_constraint x where x.conindid = i.indexrelid and x.contype = 'x') as equality
  from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_class c on c.oid = i.indrelid
  join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = any($1::text[]) and (i.indisunique or i.indisexclusion)`

const FOREIGN_KEYS_SQL = `
  select k.conname as name, k.conrelid::text as table_oid, k.confrelid::text as ref_oid, ${qualified('rn', 'rc')} as ref_name,
         k.conkey::int[] as keys, k.confkey::int[] as ref_keys, k.confupdtype::text as on_update, k.confdeltype::text as on_delete
  from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
  join pg_class rc on rc.oid = k.confrelid join pg_namespace rn on rn.oid = rc.relnamespace
  where k.contype = 'f' and k.conparentid = 0 and n.nspname = any($1::text[])`

// A subquery is a SubLink node in the stored expression, however it is printed.
const POLICIES_SQL = `
  select p.polname as name, p.polrelid::text as table_oid,
         coalesce(p.polqual::text like '%{SUBLINK %', false) as in_using,
         coalesce(p.polwithcheck::text like '%{SUBLINK %', false) as in_check
  from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = any($1::text[])`

const TRIGGERS_SQL = `
  select t.tgname as name, t.tgrelid::text as table_oid, p.proname as function, l.lanname as language,
         p.prosrc as source, array_remove(array[t.tgoldtable::text, t.tgnewtable::text], null) as transition_tables
  from pg_trigger t join pg_proc p on p.oid = t.tgfoid join pg_language l on l.oid = p.prolang
  join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
  where not t.tgisinternal and t.tgparentid = 0 and n.nspname = any($1::text[])`

const ACTIONS: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' }

/**
 * Reads the catalog and returns every reason Citus would refuse to distribute it by `organization_id`
 * (rules R0–R7 of {@link DISTRIBUTION_RULES}), sorted by rule, table and object; `[]` when it is
 * distributable. Reads only `pg_catalog`, one statement per call; runs on a single node (PGlite or
 * PostgreSQL) and on a Citus coordinator before distribution (checked: the same violations as PostgreSQL).
 *
 * @throws InvalidConfigurationError when `options` names an unknown rule or a reference table badly.
 *
 * @example
 * ```ts
 * const violations = await distributionViolations(catalogQuery(sql))
 * for (const v of violations) console.log(describeViolation(v))
 * ```
 */
export async function distributionViolations(
  run: CatalogQuery,
  options: DistributionShapeOptions = {},
): Promise<DistributionViolation[]> {
  const deferred = new Set(options.deferredRules ?? [])
  for (const rule of deferred) {
    if (!Object.hasOwn(DISTRIBUTION_RULES, rule))
      throw new InvalidConfigurationError(`unknown distribution rule ${rule}`)
  }
  const references = new Set([...REFERENCE_TABLES, ...(options.referenceTables ?? [])])
  for (const name of references) {
    if (typeof name !== 'string' || !/^([a-z_][a-z0-9_$]*\.)?[a-z_][a-z0-9_$]*$/i.test(name))
      throw new InvalidConfigurationError(`reference table ${String(name)} is not a table name`)
  }
  const schemas = [...DISTRIBUTED_SCHEMAS]

  const tables = await catalogRows<TableRow>(run, TABLES_SQL, [schemas, DISTRIBUTION_COLUMN])
  const byOid = new Map(tables.map((t) => [t.oid, t]))
  const ownClass = (t: TableRow): TableClass =>
    references.has(t.name) ? 'reference' : t.attnum !== null ? 'distributed' : 'unclassified'
  const classOf = (oid: string): TableClass => {
    const table = byOid.get(oid)
    if (table === undefined) return 'unclassified'
    const root = table.root === null ? table : byOid.get(table.root)
    return root === undefined ? 'unclassified' : ownClass(root)
  }
  const nameOf = (oid: string) => byOid.get(oid)?.name ?? oid

  const found: DistributionViolation[] = []
  const report = (rule: DistributionRule, table: string, object: string, detail: string) => {
    if (!deferred.has(rule)) found.push({ rule, table, object, detail })
  }

  for (const t of tables) {
    if (t.root !== null) continue
    const kind = ownClass(t)
    if (kind === 'unclassified')
      report('R0', t.name, t.name, `neither a reference table nor distributed: no ${DISTRIBUTION_COLUMN} column`)
    if (kind === 'distributed' && (t.column_type !== 'uuid' || t.not_null !== true))
      report(
        'R1',
        t.name,
        t.name,
        `${DISTRIBUTION_COLUMN} is ${t.column_type ?? '?'}${t.not_null === true ? ' NOT NULL' : ' (nullable)'}, not uuid NOT NULL`,
      )
  }

  const indexes = await catalogRows<{
    name: string
    table_oid: string
    exclusion: boolean
    keys: number[]
    attached: boolean
    equality: boolean[] | null
  }>(run, INDEXES_SQL, [schemas])
  for (const index of indexes) {
    if (index.attached || classOf(index.table_oid) !== 'distributed') continue
    const position = index.keys.indexOf(byOid.get(index.table_oid)?.attnum ?? -1)
    const table = nameOf(index.table_oid)
    if (position === -1) {
      report(
        'R2',
        table,
        index.name,
        `${index.exclusion ? 'exclusion' : 'unique'} index without ${DISTRIBUTION_COLUMN} among its key columns`,
      )
    } else if (index.exclusion && index.equality?.[position] !== true) {
      report('R2', table, index.name, `exclusion index compares ${DISTRIBUTION_COLUMN} with an operator other than =`)
    }
  }

  const foreignKeys = await catalogRows<{
    name: string
    table_oid: string
    ref_oid: string
    ref_name: string
    keys: number[]
    ref_keys: number[]
    on_update: string
    on_delete: string
  }>(run, FOREIGN_KEYS_SQL, [schemas])
  for (const fk of foreignKeys) {
    const from = classOf(fk.table_oid)
    const to = classOf(fk.ref_oid)
    const table = nameOf(fk.table_oid)
    if (from === 'unclassified') continue
    if (to === 'unclassified') {
      report('R3', table, fk.name, `references ${fk.ref_name}, which is neither a reference table nor distributed`)
    } else if (from === 'reference' && to === 'distributed') {
      report('R3', table, fk.name, `a reference table references the distributed table ${fk.ref_name}`)
    } else if (from === 'distributed' && to === 'distributed') {
      const position = fk.keys.indexOf(byOid.get(fk.table_oid)?.attnum ?? -1)
      if (position === -1 || fk.ref_keys[position] !== byOid.get(fk.ref_oid)?.attnum)
        report(
          'R3',
          table,
          fk.name,
          `references the distributed table ${fk.ref_name} without pairing ${DISTRIBUTION_COLUMN} with its ${DISTRIBUTION_COLUMN}`,
        )
    }
    if (from === 'distributed' && fk.keys.includes(byOid.get(fk.table_oid)?.attnum ?? -1)) {
      if (fk.on_delete === 'n' || fk.on_delete === 'd')
        report(
          'R4',
          table,
          fk.name,
          `ON DELETE ${ACTIONS[fk.on_delete]} on a foreign key that includes ${DISTRIBUTION_COLUMN}`,
        )
      if (fk.on_update === 'n' || fk.on_update === 'd' || fk.on_update === 'c')
        report(
          'R4',
          table,
          fk.name,
          `ON UPDATE ${ACTIONS[fk.on_update]} on a foreign key that includes ${DISTRIBUTION_COLUMN}`,
        )
    }
  }

  const policies = await catalogRows<{ name: string; table_oid: string; in_using: boolean; in_check: boolean }>(
    run,
    POLICIES_SQL,
    [schemas],
  )
  for (const policy of policies) {
    if (classOf(policy.table_oid) === 'unclassified' || !(policy.in_using || policy.in_check)) continue
    const where = [policy.in_using ? 'USING' : '', policy.in_check ? 'WITH CHECK' : ''].filter(Boolean).join(' and ')
    report('R5', nameOf(policy.table_oid), policy.name, `subquery in ${where}`)
  }

  const triggers = await catalogRows<{
    name: string
    table_oid: string
    function: string
    language: string
    source: string
    transition_tables: string[]
  }>(run, TRIGGERS_SQL, [schemas])
  for (const trigger of triggers) {
    // Only PL/pgSQL sources are read; a C function's prosrc is a symbol name.
    if (classOf(trigger.table_oid) === 'unclassified' || trigger.language !== 'plpgsql') continue
    const table = nameOf(trigger.table_oid)
    const read = tableNameVariablesRead(trigger.source)
    if (read.length > 0)
      report('R6', table, trigger.name, `${trigger.function}() reads ${read.join(', ').toUpperCase()}`)
    const misuse = transitionTableMisuse(trigger.source, trigger.transition_tables)
    if (misuse !== undefined)
      report(
        'R7',
        table,
        trigger.name,
        `${trigger.function}() reads transition table ${trigger.transition_tables.join('/')} outside a plain SELECT … INTO: ${misuse}`,
      )
  }

  const order = (v: DistributionViolation) => `${v.rule}\u0000${v.table}\u0000${v.object}\u0000${v.detail}`
  return found.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0))
}
