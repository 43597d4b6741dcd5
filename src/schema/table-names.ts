import { is } from 'drizzle-orm'
import { PgTable, getTableConfig } from 'drizzle-orm/pg-core'
import * as schema from './drizzle-schema'

// Derived from the tables the schema exports, so a new table joins every list (RLS checks in doctor,
// the privileged-login check, monitoring, stats) by being added to the schema.
const tables = (Object.values(schema) as unknown[])
  .filter((value): value is PgTable => is(value, PgTable))
  .map((table) => getTableConfig(table))

const carriesTenantRows = (table: (typeof tables)[number]): boolean =>
  table.columns.some((column) => column.name === 'organization_id')

/**
 * SQL names of the tables that carry tenant rows (an `organization_id` column), by name: RLS is
 * enabled and forced on each, with the tenant policy.
 */
export const TENANT_TABLE_NAMES: readonly string[] = tables
  .filter(carriesTenantRows)
  .map((table) => table.name)
  .sort()

/** SQL names of every table of the library: the others (`organizations`) by name, then the tenant tables. */
export const LIBRARY_TABLE_NAMES: readonly string[] = [
  ...tables
    .filter((table) => !carriesTenantRows(table))
    .map((table) => table.name)
    .sort(),
  ...TENANT_TABLE_NAMES,
]

// Every named constraint and index of the schema, by name: the table it belongs to.
const TABLE_OF_CONSTRAINT = new Map<string, string>(
  tables.flatMap(
    (table) =>
      [
        ...table.indexes.flatMap((index) => (index.config.name === undefined ? [] : [[index.config.name, table.name]])),
        ...table.uniqueConstraints.map((unique) => [unique.getName(), table.name]),
        ...table.foreignKeys.map((fk) => [fk.getName(), table.name]),
        ...table.checks.map((check) => [check.name, table.name]),
        ...table.primaryKeys.map((pk) => [pk.getName(), table.name]),
      ] as [string, string][],
  ),
)

/**
 * The table a constraint or index of the schema belongs to. For errors a Citus coordinator relays from a
 * worker, which name the constraint but not the table (a unique violation's message names none).
 */
export function tableOfConstraint(name: string): string | undefined {
  return TABLE_OF_CONSTRAINT.get(name)
}
