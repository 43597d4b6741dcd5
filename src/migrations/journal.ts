import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { migrationsFolder } from './migrations-folder'

/** One migration the package ships, as drizzle's migrator reads it. */
export interface JournalMigration {
  readonly tag: string
  /** The journal's `when` (ms), which drizzle records as `created_at`. */
  readonly when: number
  /** What drizzle records as `hash`: sha256 of the whole .sql file. */
  readonly hash: string
}

interface JournalFile {
  entries: { tag: string; when: number }[]
}

/** The shipped journal's entries in order, with the hash drizzle computes for each. */
export function readJournal(folder = migrationsFolder()): JournalMigration[] {
  const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as JournalFile
  return journal.entries.map((entry) => {
    const text = readFileSync(join(folder, `${entry.tag}.sql`)).toString()
    return { tag: entry.tag, when: entry.when, hash: createHash('sha256').update(text).digest('hex') }
  })
}
