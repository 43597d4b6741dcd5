/**
 * What a PL/pgSQL trigger function's source (`pg_proc.prosrc`) does that Citus gets wrong, read as text:
 * no parser, so these are heuristics, each erring towards a report. Comments and string literals are
 * blanked first, so `-- TG_TABLE_NAME` or `TG_OP = 'INSERT'` count for nothing.
 */

/** `source` lower-cased, with comments replaced by a space and string literals (quoted or dollar-quoted) by `''`. */
function codeOf(source: string): string {
  let out = ''
  let i = 0
  while (i < source.length) {
    const rest = source.slice(i)
    if (rest.startsWith('--')) {
      const end = source.indexOf('\n', i)
      i = end === -1 ? source.length : end
      out += ' '
    } else if (rest.startsWith('/*')) {
      // PostgreSQL block comments nest.
      let depth = 0
      do {
        const step = source.startsWith('/*', i) ? 1 : source.startsWith('*/', i) ? -1 : 0
        depth += step
        i += step === 0 ? 1 : 2
      } while (depth > 0 && i < source.length)
      out += ' '
    } else if (rest.startsWith("'") || /^[eE]'/.test(rest)) {
      const escapes = rest[0] !== "'"
      i += escapes ? 2 : 1
      while (i < source.length) {
        if (escapes && source[i] === '\\') i += 2
        else if (source.startsWith("''", i)) i += 2
        else if (source[i] === "'") break
        else i += 1
      }
      i += 1
      out += "''"
    } else if (/^\$[A-Za-z_]?[A-Za-z0-9_]*\$/.test(rest)) {
      const tag = /^\$[A-Za-z_]?[A-Za-z0-9_]*\$/.exec(rest)?.[0] ?? '$$'
      const end = source.indexOf(tag, i + tag.length)
      i = end === -1 ? source.length : end + tag.length
      out += "''"
    } else {
      out += (source[i] ?? '').toLowerCase()
      i += 1
    }
  }
  return out
}

const TABLE_NAME_VARIABLES = /\btg_(table_name|relname|relid)\b/g

/** The trigger variables naming the table (`tg_table_name`, `tg_relname`, `tg_relid`) that `source` reads. */
export function tableNameVariablesRead(source: string): string[] {
  return [...new Set(Array.from(codeOf(source).matchAll(TABLE_NAME_VARIABLES), (m) => m[0]))]
}

/**
 * The first statement of `source` that reads one of the transition tables `tables` other than as a plain
 * `SELECT … INTO` (the form CITUS.md §2 item 10 proposes: a local read into variables, then writes that
 * name no transition table), shortened; undefined when there is none.
 *
 * Heuristic: the source is cut at `;` (literals and comments blanked), and a piece that names a
 * transition table must contain `select … into` and no `insert`, `update`, `delete` or `merge`. So a
 * `FOR r IN SELECT … FROM new_rows LOOP INSERT …` is reported (conservatively: the INSERT itself names no
 * transition table), and a `SELECT … INTO` that also joins a distributed table is not (it would run
 * through Citus's planner); dynamic SQL (`EXECUTE '…'`) is not looked into.
 */
export function transitionTableMisuse(source: string, tables: readonly string[]): string | undefined {
  if (tables.length === 0) return undefined
  const names = tables.map((name) => name.toLowerCase().replace(/[^a-z0-9_$]/g, '\\$&'))
  const mentions = new RegExp(`(^|[^a-z0-9_$."])(${names.join('|')})($|[^a-z0-9_$"])`)
  for (const piece of codeOf(source).split(';')) {
    if (!mentions.test(piece)) continue
    const plainSelectInto = /\bselect\b[\s\S]*\binto\b/.test(piece) && !/\b(insert|update|delete|merge)\b/.test(piece)
    if (!plainSelectInto) {
      const start = piece.search(/\b(insert|update|delete|merge|select|return|perform|for)\b/)
      const text = piece.slice(Math.max(start, 0)).replace(/\s+/g, ' ').trim()
      return text.length > 120 ? `${text.slice(0, 117)}...` : text
    }
  }
  return undefined
}
