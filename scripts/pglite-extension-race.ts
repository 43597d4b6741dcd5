/**
 * `npm run check:pglite-race [-- <starts>] [--unpatched]`: starts PGlite <starts> times (default 100), each
 * time migrating, writing two tenants' contacts and running one fuzzy search, and counts the starts
 * whose search finds nothing. With `--unpatched` PGlite is started without `createPglite`'s
 * `noWasmDecoding` (PGlite 0.5's concurrent preload of the extension libraries): measured here, one
 * start in 10–60 broke, and the next statement on such an instance spins forever, so the script stops
 * at the first broken start instead of querying it again.
 */
import { PGlite } from '@electric-sql/pglite'
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin'
import { citext } from '@electric-sql/pglite/contrib/citext'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { createDatabase, createPglite } from '../src'

const unpatched = process.argv.includes('--unpatched')
const starts = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 100)
const started = performance.now()
for (let i = 1; i <= starts; i++) {
  const pglite = unpatched ? await PGlite.create({ extensions: { btree_gin, citext, pg_trgm } }) : await createPglite()
  const db = createDatabase({ primary: pglite })
  await db.migrate()
  const stamp = `${Date.now().toString(36)}-${i}`
  const [north, harbour] = await Promise.all([
    db.organizations.create({ name: 'Northlight', slug: `north-${stamp}` }),
    db.organizations.create({ name: 'Harbour', slug: `harbour-${stamp}` }),
  ])
  const n = db.tenant(north.id)
  const h = db.tenant(harbour.id)
  const night = await n.productions.create({ title: 'The Long Night' })
  await n.contacts.createMany(
    ['Jon Smith', 'Joanna Smythe', 'Ade Okafor', 'Mia Lund'].map((name) => ({ productionId: night.id, name })),
  )
  const salt = await h.productions.create({ title: 'Salt and Iron' })
  await h.contacts.create({ productionId: salt.id, name: 'Jonas Schmidt' })
  const hits = await n.contacts.search('jon smth', { limit: 5, threshold: 0.2 })
  if (hits.length !== 2) {
    console.log(
      `start ${i} of ${starts}: BROKEN — the search found ${hits.length} of 2 contacts (${unpatched ? 'unpatched' : 'createPglite'})`,
    )
    process.exit(1) // querying this instance again would spin forever
  }
  await pglite.close()
  if (i % 10 === 0) console.log(`${i} starts, all searches right`)
}
console.log(
  `${starts} of ${starts} starts right (${unpatched ? 'unpatched' : 'createPglite'}) in ${((performance.now() - started) / 1000).toFixed(0)} s`,
)
