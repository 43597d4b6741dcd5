import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core'
import type { NaturalKey } from './batch-insert'

/**
 * The natural key `createMany({ onConflict })` resolves conflicts on, read from the table's partial unique
 * index: its columns and its predicate (live rows) come from the schema, so `ON CONFLICT` repeats exactly
 * what the index says and the two cannot drift.
 * @throws TypeError when the table has no such unique index with plain columns and a predicate.
 */
export function naturalKey(table: PgTable, indexName: string, keyOf: NaturalKey['keyOf']): NaturalKey {
  const index = getTableConfig(table).indexes.find((candidate) => candidate.config.name === indexName)
  const where = index?.config.where
  if (!index?.config.unique || where === undefined) {
    throw new TypeError(`${indexName} is not a partial unique index of ${getTableConfig(table).name}`)
  }
  // The index lists its columns by name (drizzle's IndexedColumn); ON CONFLICT wants the table's columns.
  const tableColumns = getTableConfig(table).columns
  const columns = index.config.columns.map((indexed) => {
    const name = 'name' in indexed ? indexed.name : undefined
    const column = tableColumns.find((candidate) => candidate.name === name)
    if (!column) throw new TypeError(`${indexName} has an expression, not a column`)
    return column
  })
  return { columns, where, keyOf }
}
