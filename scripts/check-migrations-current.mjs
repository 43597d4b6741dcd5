// Fails when src/schema and the committed migrations disagree: runs `drizzle-kit generate` against a
// throwaway copy of drizzle/ so a pending change is reported, never written.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'

// drizzle-kit prefixes `./` to --out, so the copy must live under the working directory.
mkdirSync('node_modules/.cache', { recursive: true })
const out = mkdtempSync('node_modules/.cache/callsheet-migrations-')
try {
  cpSync('drizzle', out, { recursive: true })
  const before = readdirSync(out).length
  const output = execFileSync(
    'npx',
    ['drizzle-kit', 'generate', '--dialect=postgresql', '--schema=./src/schema/tables.ts', `--out=${out}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const after = readdirSync(out).length
  if (!output.includes('No schema changes') || after !== before) {
    console.error(output)
    console.error('src/schema differs from the committed migrations: run `npm run db:generate` and commit drizzle/.')
    process.exit(1)
  }
  console.log('migrations are current: drizzle-kit generate reports no schema changes')
} finally {
  rmSync(out, { recursive: true, force: true })
}
