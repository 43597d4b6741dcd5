import { createTableRelationsHelpers, extractTablesRelationalConfig, type Logger } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import * as schema from '../schema/drizzle-schema'
import type { EngineConfig } from './engine-config'

/** The Drizzle schema the library queries with (tables + relations). */
export type Schema = typeof schema

export { schema }

/**
 * What a unit needs to build its Drizzle session over a transaction: the dialect and the relational
 * schema (built once per engine, not per unit), and the query logger.
 */
export interface DrizzleSetup {
  readonly dialect: PgDialect
  /** drizzle's RelationalSchemaConfig: passed through as drizzle's sessions take it (untyped there). */
  readonly relational: never
  readonly logger: Logger | undefined
}

/** The {@link DrizzleSetup} of one engine. */
export function drizzleSetup(config: EngineConfig): DrizzleSetup {
  const tables = extractTablesRelationalConfig(schema, createTableRelationsHelpers)
  const relational = { fullSchema: schema, schema: tables.tables, tableNamesMap: tables.tableNamesMap }
  return { dialect: new PgDialect(), relational: relational as never, logger: queryLogger(config) }
}

function queryLogger(config: EngineConfig): Logger | undefined {
  const debug = config.logger.debug
  if (!debug) return undefined
  return { logQuery: (query, params) => debug.call(config.logger, 'query', { sql: query, params }) }
}
