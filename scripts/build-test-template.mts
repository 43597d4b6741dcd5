/**
 * Part of `npm run build`: the migrated test template `createTestDatabase()` starts from, shipped in
 * `dist/` (gzipped, ~5 MB), so that an app's first test run on a machine does not migrate a PGlite from
 * scratch. Labelled with the key of what it was made from (the shipped migrations, the PGlite version,
 * the extensions): a mismatch at load time (another PGlite version installed) is ignored and rebuilt.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { SHIPPED_TEMPLATE_FILE, shippableTemplate, shippedTemplateFile } from '../src/testing/template-snapshot'

const started = performance.now()
const file = shippedTemplateFile()
console.log(`[build] ${SHIPPED_TEMPLATE_FILE}: migrating a PGlite for the test template…`)
const bytes = await shippableTemplate()
mkdirSync(dirname(file), { recursive: true })
writeFileSync(file, bytes)
console.log(
  `[build] wrote ${file} (${(bytes.length / 1e6).toFixed(1)} MB) in ${Math.round(performance.now() - started)} ms`,
)
