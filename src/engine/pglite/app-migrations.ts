import type { PGlite } from '@electric-sql/pglite'
import { drizzle } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { MigrationError } from '../../errors'

/**
 * Applies an app's own drizzle-kit migrations (`out` folder of its drizzle.config) to a PGlite that has
 * the library's migrations, recording them in drizzle's default table (`drizzle.__drizzle_migrations`),
 * apart from the library's own record. Used for the test template.
 *
 * @throws MigrationError when the folder cannot be read or a migration fails.
 */
export async function applyAppMigrations(pg: PGlite, migrationsFolder: string): Promise<void> {
  try {
    await migratePglite(drizzle(pg), { migrationsFolder })
  } catch (error) {
    const detail =
      error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)
    throw new MigrationError(`the app's migrations in ${migrationsFolder} failed: ${detail}`, { cause: error })
  }
}
