// Shipped migrations are immutable (issue 21). Checks every journal entry of a drizzle folder against
// its checksums.json ({ tag: sha256 of the .sql file, as drizzle's migrator hashes it }; not in meta/,
// where drizzle-kit check reads every file as a snapshot) and fails on a changed file or an entry
// without a checksum. `--record` (npm run db:checksums) only ADDS the missing
// entries; it never rewrites an existing one.
// Usage: node scripts/migration-checksums.mjs [--record] [folder]   (folder defaults to drizzle)
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const args = process.argv.slice(2)
const record = args.includes('--record')
const folder = args.find((a) => !a.startsWith('--')) ?? 'drizzle'
const checksumsPath = join(folder, 'checksums.json')
const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8'))
const checksums = existsSync(checksumsPath) ? JSON.parse(readFileSync(checksumsPath, 'utf8')) : {}
const hashOf = (tag) =>
  createHash('sha256')
    .update(readFileSync(join(folder, `${tag}.sql`)).toString())
    .digest('hex')

const problems = []
const added = []
for (const { tag } of journal.entries) {
  const hash = hashOf(tag)
  if (checksums[tag] === undefined) {
    if (record) {
      checksums[tag] = hash
      added.push(tag)
    } else problems.push(`${tag} has no checksum in ${checksumsPath}: run \`npm run db:checksums\` and commit it`)
  } else if (checksums[tag] !== hash) {
    problems.push(
      `${tag}.sql changed after it was committed; shipped migrations are immutable — revert it and add a new migration`,
    )
  }
}
if (added.length > 0) writeFileSync(checksumsPath, `${JSON.stringify(checksums, null, 2)}\n`)
if (problems.length > 0) {
  for (const problem of problems) console.error(problem)
  process.exit(1)
}
console.log(
  record
    ? `recorded ${added.length} new checksum(s)${added.length > 0 ? `: ${added.join(', ')}` : ''}`
    : `migrations are unchanged: ${journal.entries.length} checksums match`,
)
