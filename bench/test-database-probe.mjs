// Plain JavaScript, run by plain node: a TypeScript loader would add its own start-up time and memory.
/**
 * One fresh process of the test-database bench (bench/test-database.ts spawns it): imports the built
 * `@callsheet/db/testing` from `dist/`, opens one test database, notes the process's RSS while it holds
 * it, then opens, uses (one tenant's rows) and closes `LATER` more, one at a time (the first of them on a
 * new instance, as the first database is still open; the others on the instance it closed, reset in
 * place, unless the reset is refused). Prints one JSON line.
 */
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'

const [distTesting, laterArg] = process.argv.slice(2)
if (distTesting === undefined) throw new Error('usage: test-database-probe.ts <dist/testing.js> [later]')
const later = Number(laterArg ?? 5)

const t0 = performance.now()
/** @type {typeof import('../src/testing')} */
const testing = await import(pathToFileURL(distTesting).href)
const importMs = performance.now() - t0
const t1 = performance.now()
const info = await testing.prepareTestTemplate()
const templateMs = performance.now() - t1
const t2 = performance.now()
const db = await testing.createTestDatabase()
const firstMs = performance.now() - t2
const org = await db.organizations.create({ name: 'Probe', slug: 'probe' })
await db.tenant(org.id).departments.create({ name: 'Camera', code: 'CAM' })
const rssOneBytes = process.memoryUsage().rss
/** @type {number[]} */
const laterMs = []
/** @type {number[]} */
const closeMs = []
/** @type {boolean[]} */
const laterReused = []
for (let i = 0; i < later; i++) {
  const t = performance.now()
  const next = await testing.createTestDatabase()
  laterMs.push(performance.now() - t)
  laterReused.push(next.reused)
  // Used as a test would: a tenant's rows (and their audit rows) for the reset to remove.
  const nextOrg = await next.organizations.create({ name: 'Later', slug: `later-${i}` })
  await next.tenant(nextOrg.id).departments.create({ name: 'Camera', code: 'CAM' })
  const c = performance.now()
  await next.close()
  closeMs.push(performance.now() - c)
}
await db.close()
console.log(
  JSON.stringify({
    source: info.source,
    importMs,
    templateMs,
    firstMs,
    rssOneBytes,
    laterMs,
    closeMs,
    laterReused,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  }),
)
