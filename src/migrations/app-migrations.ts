/** The app's own drizzle-kit migrations (`MigrateOptions.appMigrationsFolder`), read and checked up front. */
import { existsSync } from 'node:fs'
import { join as joinPath, resolve as resolvePath } from 'node:path'
import { InvalidConfigurationError, MigrationError } from '../errors'
import { readJournal, type JournalMigration } from './journal'
import { readMigrationFolder, type FolderMigration } from './apply-migrations'
import { MIGRATIONS_SCHEMA } from './migrations-table'

const SQL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

export interface AppMigrations {
  readonly config: { migrationsFolder: string; migrationsSchema: string; migrationsTable: string }
  readonly journal: JournalMigration[]
  /** The folder's migrations as they will be applied (no-transaction ones checked). */
  readonly migrations: FolderMigration[]
  readonly relation: string
}

/** The app's migrations of `options`, read and checked before anything connects. */
export function appMigrations(options: {
  appMigrationsFolder?: string | undefined
  appMigrationsTable?: { readonly schema?: string; readonly table?: string } | undefined
}): AppMigrations | undefined {
  const folder = options.appMigrationsFolder
  if (folder === undefined) return undefined
  if (typeof folder !== 'string' || folder === '')
    throw new InvalidConfigurationError('appMigrationsFolder must be a folder path')
  const schema = options.appMigrationsTable?.schema ?? 'drizzle'
  const table = options.appMigrationsTable?.table ?? '__drizzle_migrations'
  if (!SQL_NAME.test(schema) || !SQL_NAME.test(table))
    throw new InvalidConfigurationError('appMigrationsTable.schema and .table must be plain SQL names')
  if (schema === MIGRATIONS_SCHEMA)
    throw new InvalidConfigurationError(`appMigrationsTable: ${MIGRATIONS_SCHEMA} is the library's; use your own`)
  const migrationsFolder = resolvePath(folder)
  if (!existsSync(joinPath(migrationsFolder, 'meta', '_journal.json')))
    throw new InvalidConfigurationError(
      `appMigrationsFolder ${migrationsFolder} has no meta/_journal.json: point it at drizzle-kit's "out" folder`,
    )
  let journal: JournalMigration[]
  try {
    journal = readJournal(migrationsFolder)
  } catch (error) {
    throw new InvalidConfigurationError(`appMigrationsFolder ${migrationsFolder}: cannot read its journal`, {
      cause: error,
    })
  }
  return {
    config: { migrationsFolder, migrationsSchema: schema, migrationsTable: table },
    journal,
    migrations: readMigrationFolder(migrationsFolder),
    relation: `"${schema}"."${table}"`,
  }
}

export async function runAppMigrations(app: AppMigrations, run: () => Promise<void>): Promise<void> {
  try {
    await run()
  } catch (error) {
    const detail =
      error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)
    throw new MigrationError(`the app's migration failed (${app.config.migrationsFolder}): ${detail}`, {
      cause: error,
    })
  }
}
