// Lints every migration of a drizzle folder's journal with squawk (issue 21): blocking DDL (a plain
// CREATE INDEX on a live table, a constraint that scans while holding its lock…) fails `npm test` unless
// the migration says why it is safe (`-- squawk-ignore <rule>` beside a reason). Rules and their
// exceptions: .squawk.toml. A migration marked `-- callsheet:no-transaction` runs outside the
// transaction, so it must tell squawk so (`-- squawk-disable-assume-in-transaction`), or the linter
// would judge it as if it ran inside one.
// Usage: node scripts/migration-lint.mjs [folder]   (folder defaults to drizzle)
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const folder = resolve(process.argv[2] ?? join(root, 'drizzle'))
const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8'))
const files = journal.entries.map((e) => join(folder, `${e.tag}.sql`))

const problems = []
for (const file of files) {
  const text = readFileSync(file, 'utf8')
  if (/^-- callsheet:no-transaction\b/m.test(text) && !/^-- squawk-disable-assume-in-transaction\b/m.test(text))
    problems.push(
      `${file}: marked -- callsheet:no-transaction but not -- squawk-disable-assume-in-transaction (squawk would lint it as if in a transaction)`,
    )
}

const squawk = join(root, 'node_modules', '.bin', 'squawk')
let failed = false
try {
  execFileSync(squawk, ['--config', join(root, '.squawk.toml'), '--reporter', 'gcc', ...files], { stdio: 'inherit' })
} catch (error) {
  if (typeof error.status !== 'number') throw error
  failed = true
}
for (const problem of problems) console.error(problem)
if (failed || problems.length > 0) {
  console.error(
    'migration lint failed: make the migration non-blocking, or annotate the exception in it ' +
      '(a reason, then `-- squawk-ignore <rule>`); see .squawk.toml and README "Migrations"',
  )
  process.exit(1)
}
console.log(`migrations lint clean: ${files.length} file(s) checked by squawk`)
