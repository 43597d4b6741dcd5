import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MigrationError } from '../errors'

/**
 * The `drizzle/` folder shipped with the package. Found by walking up from this module, because it sits
 * one level above `dist/` when installed and two above `src/migrations/` in the repository.
 */
export function migrationsFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'drizzle')
    if (existsSync(join(candidate, 'meta', '_journal.json'))) return candidate
    dir = dirname(dir)
  }
  throw new MigrationError(`cannot find the drizzle/ migrations folder above ${fileURLToPath(import.meta.url)}`)
}
