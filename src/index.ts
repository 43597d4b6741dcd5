/**
 * `@callsheet/db`: the typed, multi-tenant data layer of the Call Sheet Connector.
 *
 * @example
 * ```ts
 * import { migrate } from '@callsheet/db'
 * await migrate(process.env.DATABASE_URL)
 * ```
 */
export { createPglite } from './database/create-pglite'
export { migrate, type MigrateOptions, type MigrationTarget } from './database/migrate'
export {
  CallsheetDbError,
  InvalidConfigurationError,
  MigrationError,
  isCallsheetDbError,
  type CallsheetDbErrorCode,
} from './errors'
