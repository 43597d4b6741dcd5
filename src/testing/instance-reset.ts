import type { PGlite } from '@electric-sql/pglite'

/**
 * What a fresh test database's PGlite looked like before its test touched it, to put a used instance back
 * into that state (see {@link resetToPristine}) or to find that it cannot be.
 *
 * How a change to the schema is found: every row a transaction writes into a catalog gets that
 * transaction's id as its `xmin`, and dropping an object deletes catalog rows. So a used instance whose
 * catalogs (shared ones included: roles, memberships, database and role settings) hold exactly as many
 * rows as before, none written since `baseline`, has the schema, roles, grants, policies, triggers and
 * functions it had — whatever statement the test ran. The same holds for the tables that have rows in
 * the template (the migrations journal): they are checked, never emptied.
 */
export interface PristineState {
  /** The UTC month (`YYYY-MM`) the instance was made in: its audit partitions run from there. */
  readonly month: string
  /** One statement: for each catalog and each table kept as is, its row count and the rows written since $1. */
  readonly checkSql: string
  /** The counts it gave on the fresh instance, in its order. */
  readonly counts: readonly number[]
  /** The tables empty in the template (quoted names): emptied again by TRUNCATE. */
  readonly emptied: readonly string[]
  /** For each of them, the tables among them whose foreign keys reference it (TRUNCATE needs both). */
  readonly referencedBy: ReadonlyMap<string, readonly string[]>
  /** Every sequence (quoted name) and its state in the template. */
  readonly sequences: readonly SequenceState[]
  /** The roles of the fresh instance. */
  readonly roles: ReadonlySet<string>
  /** The configuration files' size and modification time (`ALTER SYSTEM` rewrites postgresql.auto.conf). */
  readonly configFiles: string
  /**
   * The session's temporary schema (`0`: none yet). A temporary object gives the session one for good:
   * `DISCARD ALL` drops the objects, but `current_schemas(true)` would still show the schema.
   */
  readonly tempSchema: string
  /** The first transaction id not yet used when the instance was fresh or last reset. */
  baseline: string
}

interface SequenceState {
  readonly name: string
  readonly lastValue: string
  readonly isCalled: boolean
}

/**
 * A table a test filled past this size is emptied by TRUNCATE, a smaller one by DELETE. TRUNCATE gives the
 * table and each of its indexes a new, empty file (GIN trigram ones included): measured 0.07–0.17 s a reset
 * with the library's schema, and 1–2 s for the first in a process under load while V8 compiles that code;
 * DELETE of a test's few rows takes milliseconds and writes no catalog row. The dead rows it leaves are
 * pruned as pages are read; past this size, TRUNCATE's fresh files are worth their cost.
 */
const LARGE_TABLE_BYTES = 1024 * 1024

// Not a DDL a test makes, a role the library makes: PGlite's `$primary` creates it on first use.
const RUNTIME_ROLE = 'callsheet_runtime'

const USER_RELATIONS = `from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname not like 'pg\\_temp\\_%'
    and n.nspname not like 'pg\\_toast\\_temp\\_%'`

const BASELINE_SQL = 'select pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text as x'
const CONFIG_FILES_SQL = `select pg_catalog.concat_ws(',', a.size, a.modification, b.size, b.modification) as f,
    pg_catalog.pg_my_temp_schema()::text as t
  from pg_catalog.pg_stat_file('postgresql.auto.conf', true) a, pg_catalog.pg_stat_file('postgresql.conf', true) b`
const ROLES_SQL = 'select rolname from pg_catalog.pg_roles'

const quoted = (schema: string, name: string): string => `"${schema.replace(/"/g, '""')}"."${name.replace(/"/g, '""')}"`

/**
 * The part of a {@link PristineState} that is the same on every instance started from one template
 * snapshot (the data directory fixes catalogs, tables, sequences, roles and the next transaction id), so
 * that it can be read once, where the snapshot is made, and stored with it. The configuration files'
 * times (written when an instance starts) and its session are read on each instance.
 */
export type StoredPristine = Omit<PristineState, 'configFiles' | 'tempSchema'>

/** `stored` as JSON, for a snapshot's metadata (see {@link parseStoredPristine}). */
export function serializePristine(stored: StoredPristine): string {
  return JSON.stringify({
    month: stored.month,
    checkSql: stored.checkSql,
    counts: stored.counts,
    emptied: stored.emptied,
    referencedBy: [...stored.referencedBy],
    sequences: stored.sequences,
    roles: [...stored.roles],
    baseline: stored.baseline,
  })
}

/** What {@link serializePristine} wrote; `undefined` when `json` is not that (the caller then reads it live). */
export function parseStoredPristine(json: string | undefined): StoredPristine | undefined {
  if (json === undefined) return undefined
  let v: Record<string, unknown>
  try {
    v = JSON.parse(json) as Record<string, unknown>
  } catch {
    return undefined
  }
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string')
  const { month, checkSql, counts, emptied, referencedBy, sequences, roles, baseline } = v
  if (
    typeof month !== 'string' ||
    typeof checkSql !== 'string' ||
    typeof baseline !== 'string' ||
    !/^[0-9]+$/.test(baseline) ||
    !Array.isArray(counts) ||
    !counts.every((c) => Number.isSafeInteger(c)) ||
    !strings(emptied) ||
    !strings(roles) ||
    !Array.isArray(referencedBy) ||
    !referencedBy.every((e) => Array.isArray(e) && typeof e[0] === 'string' && strings(e[1])) ||
    !Array.isArray(sequences) ||
    !sequences.every(
      (s: Partial<SequenceState> | null) =>
        typeof s === 'object' &&
        s !== null &&
        typeof s.name === 'string' &&
        typeof s.lastValue === 'string' &&
        typeof s.isCalled === 'boolean',
    )
  )
    return undefined
  return {
    month,
    checkSql,
    counts: counts as number[],
    emptied,
    referencedBy: new Map(referencedBy as [string, string[]][]),
    sequences: sequences as SequenceState[],
    roles: new Set(roles),
    baseline,
  }
}

/**
 * The {@link PristineState} of an instance just started from a snapshot whose {@link StoredPristine} is
 * `stored`: only what differs per instance is read. The caller makes sure the instance is as the snapshot
 * was (nothing run on it yet, same month); `undefined` (read it live then) when its next transaction id
 * is not the stored one, the one sign of a difference that costs nothing to see.
 */
export async function pristineFromStored(pg: PGlite, stored: StoredPristine): Promise<PristineState | undefined> {
  const baseline = (await pg.query<{ x: string }>(BASELINE_SQL)).rows[0]?.x
  if (baseline !== stored.baseline) return undefined
  // A copy: `baseline` moves on with each reset of this instance.
  return { ...stored, ...(await readFiles(pg)) }
}

/** Reads what a fresh instance looks like. Runs only reads (no transaction id is taken). */
export async function capturePristine(pg: PGlite, month: string): Promise<PristineState> {
  const catalogs = await pg.query<{ relname: string }>(
    `select c.relname from pg_catalog.pg_class c where c.relnamespace = 'pg_catalog'::regnamespace
       and c.relkind = 'r' order by 1`,
  )
  const tables = await pg.query<{ nspname: string; relname: string; has_rows: boolean }>(
    `select n.nspname, c.relname, false as has_rows ${USER_RELATIONS} and c.relkind = 'r' order by 1, 2`,
  )
  const withRows = tables.rows.length
    ? await pg.query<Record<string, boolean>>(
        `select ${tables.rows.map((t, i) => `exists (select from ${quoted(t.nspname, t.relname)}) as t${i}`).join(', ')}`,
      )
    : undefined
  const kept: string[] = []
  const emptied: string[] = []
  tables.rows.forEach((t, i) => (withRows?.rows[0]?.[`t${i}`] ? kept : emptied).push(quoted(t.nspname, t.relname)))
  const checked = [...catalogs.rows.map((c) => `pg_catalog.${c.relname}`), ...kept]
  // One scan per relation (count, and rows written since $1 with the threshold computed once).
  const checkSql = `with since as materialized (select pg_catalog.age($1::text::xid) as a) select ${checked
    .map(
      (r) =>
        `(select array[count(*), count(*) filter (where pg_catalog.age(xmin) <= (select a from since))]::int[] from ${r})`,
    )
    .join(' || ')} as counts`
  const foreignKeys = await pg.query<{ referenced: string; referencing: string }>(
    `select format('%I.%I', rn.nspname, r.relname) as referenced, format('%I.%I', fn.nspname, f.relname) as referencing
       from pg_catalog.pg_constraint k
       join pg_catalog.pg_class r on r.oid = k.confrelid join pg_catalog.pg_namespace rn on rn.oid = r.relnamespace
       join pg_catalog.pg_class f on f.oid = k.conrelid join pg_catalog.pg_namespace fn on fn.oid = f.relnamespace
      where k.contype = 'f'`,
  )
  const referencedBy = new Map<string, string[]>()
  for (const fk of foreignKeys.rows) {
    // format('%I') quotes only when needed; the names here are always quoted.
    const [referenced, referencing] = [fk.referenced, fk.referencing].map(requote)
    if (referenced === undefined || referencing === undefined) continue
    referencedBy.set(referenced, [...(referencedBy.get(referenced) ?? []), referencing])
  }
  const sequenceNames = await pg.query<{ nspname: string; relname: string }>(
    `select n.nspname, c.relname ${USER_RELATIONS} and c.relkind = 'S' order by 1, 2`,
  )
  const sequences = await readSequences(
    pg,
    sequenceNames.rows.map((s) => quoted(s.nspname, s.relname)),
  )
  const baseline = (await pg.query<{ x: string }>(BASELINE_SQL)).rows[0]?.x ?? '0'
  const counts = await pg.query<{ counts: number[] }>(checkSql, [baseline])
  return {
    month,
    checkSql,
    counts: pairs(counts.rows[0]?.counts ?? []).map(([count]) => count),
    emptied,
    referencedBy,
    sequences,
    roles: new Set((await pg.query<{ rolname: string }>(ROLES_SQL)).rows.map((r) => r.rolname)),
    ...(await readFiles(pg)),
    baseline,
  }
}

async function readFiles(pg: PGlite): Promise<{ configFiles: string; tempSchema: string }> {
  const row = (await pg.query<{ f: string; t: string }>(CONFIG_FILES_SQL)).rows[0]
  return { configFiles: row?.f ?? '', tempSchema: row?.t ?? '' }
}

function requote(formatted: string): string | undefined {
  // `%I.%I` output: split on the dot outside quotes, then quote both parts.
  const match = /^("(?:[^"]|"")*"|[^".]+)\.("(?:[^"]|"")*"|[^".]+)$/.exec(formatted)
  if (!match?.[1] || !match[2]) return undefined
  const unquote = (part: string) => (part.startsWith('"') ? part.slice(1, -1).replace(/""/g, '"') : part)
  return quoted(unquote(match[1]), unquote(match[2]))
}

const pairs = (xs: readonly number[]): [number, number][] =>
  Array.from({ length: Math.floor(xs.length / 2) }, (_, i) => [xs[2 * i] ?? -1, xs[2 * i + 1] ?? -1])

async function readSequences(pg: Pick<PGlite, 'query'>, names: readonly string[]): Promise<SequenceState[]> {
  if (names.length === 0) return []
  const result = await pg.query<{ s: { last_value: string | number; is_called: boolean }[] }>(
    `select array[${names.map((n) => `(select row_to_json(s) from (select last_value::text, is_called from ${n}) s)`).join(', ')}]::json[] as s`,
  )
  const states = result.rows[0]?.s ?? []
  return names.map((name, i) => ({
    name,
    lastValue: String(states[i]?.last_value),
    isCalled: states[i]?.is_called === true,
  }))
}

/** Why an instance was not reset (it is then closed, and the next database starts a new one). */
export type NotResettable = string

/**
 * Puts a used instance back into its {@link PristineState}: session state discarded (`DISCARD ALL`: settings,
 * role, temporary tables, prepared statements, cursors, listeners, advisory locks, sequence caches),
 * PGlite's `$primary` role dropped, the template's empty tables emptied, every sequence where it was.
 * Refuses (returns why, changes nothing it cannot undo) when the test left something it cannot put back:
 * a transaction open, a catalog row added, changed or removed (DDL, a role, a grant, a setting of a role
 * or the database, temporary objects, statistics), a row of the migrations journal written, a
 * configuration file rewritten, or the month turned.
 */
export async function resetToPristine(pg: PGlite, pristine: PristineState): Promise<NotResettable | undefined> {
  if (pg.closed) return 'closed'
  if (pg.isInTransaction()) return 'a transaction is open'
  if (pristine.month !== new Date().toISOString().slice(0, 7)) return 'the month turned (audit partitions)'
  await pg.exec('DISCARD ALL')
  if (pg.isInTransaction()) return 'a transaction is open'
  const { configFiles, tempSchema } = await readFiles(pg)
  if (configFiles !== pristine.configFiles) return 'a configuration file was written (ALTER SYSTEM)'
  if (tempSchema !== pristine.tempSchema) return 'the session has a temporary schema now'
  let refused: NotResettable | undefined
  await pg
    .transaction(async (tx) => {
      if (!pristine.roles.has(RUNTIME_ROLE)) await tx.exec(`DROP ROLE IF EXISTS ${RUNTIME_ROLE}`)
      const counts = pairs(
        (await tx.query<{ counts: number[] }>(pristine.checkSql, [pristine.baseline])).rows[0]?.counts ?? [],
      )
      if (counts.length !== pristine.counts.length) refused = 'the catalog check changed shape'
      else if (counts.some(([count, written], i) => count !== pristine.counts[i] || written !== 0))
        refused = 'a catalog or the migrations journal changed (DDL, roles, grants, settings, temporary objects)'
      if (refused) {
        await tx.rollback()
        return
      }
      if (pristine.emptied.length > 0) {
        const used = await tx.query<Record<string, boolean>>(
          `select ${pristine.emptied
            .map(
              (t, i) =>
                `exists (select from ${t}) as t${i}, pg_catalog.pg_relation_size('${t.replace(/'/g, "''")}') >= ${LARGE_TABLE_BYTES} as l${i}`,
            )
            .join(', ')}`,
        )
        const closure = (tables: Iterable<string>): Set<string> => {
          const out = new Set<string>()
          const add = (table: string): void => {
            if (out.has(table)) return
            out.add(table)
            for (const referencing of pristine.referencedBy.get(table) ?? []) add(referencing)
          }
          for (const table of tables) add(table)
          return out
        }
        const row = used.rows[0]
        const emptied = closure(pristine.emptied.filter((_, i) => row?.[`t${i}`]))
        // TRUNCATE (with every table referencing them: it checks foreign keys) only the tables a test filled
        // past LARGE_TABLE_BYTES; DELETE the rest (see LARGE_TABLE_BYTES). Without CASCADE: a referencing
        // table that is not to be emptied makes it fail, and the instance is not reused.
        const truncated = closure(pristine.emptied.filter((_, i) => row?.[`t${i}`] && row[`l${i}`]))
        const deleted = [...emptied].filter((t) => !truncated.has(t))
        if (emptied.size > 0) {
          // `replica` skips the triggers (audit rows, foreign-key checks) for this transaction only; the
          // superuser owner bypasses RLS.
          await tx.exec(
            [
              'SET LOCAL session_replication_role = replica;',
              truncated.size > 0 ? `TRUNCATE ${[...truncated].join(', ')};` : '',
              ...deleted.map((t) => `DELETE FROM ${t};`),
            ].join(' '),
          )
        }
      }
      const now = await readSequences(
        tx,
        pristine.sequences.map((s) => s.name),
      )
      const moved = pristine.sequences.filter(
        (s, i) => now[i]?.lastValue !== s.lastValue || now[i]?.isCalled !== s.isCalled,
      )
      if (moved.length > 0) {
        await tx.query(
          `select ${moved.map((_, i) => `pg_catalog.setval($${3 * i + 1}::regclass, $${3 * i + 2}::bigint, $${3 * i + 3}::boolean)`).join(', ')}`,
          moved.flatMap((s) => [s.name, s.lastValue, s.isCalled]),
        )
      }
    })
    .catch((error: unknown) => {
      refused = `the reset failed: ${error instanceof Error ? error.message : String(error)}`
    })
  if (refused) return refused
  if (pg.isInTransaction()) return 'a transaction is open'
  pristine.baseline = (await pg.query<{ x: string }>(BASELINE_SQL)).rows[0]?.x ?? pristine.baseline
  return undefined
}
