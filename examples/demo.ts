/**
 * `npm run demo`: the library's main scenario, narrated, on an in-memory PGlite (or on the server in
 * DATABASE_URL). No server or Docker needed.
 */
import type { Database } from '../src'

const started = performance.now()
const step = (title: string) => console.log(`\n▸ ${title}`)
const say = (line: string) => console.log(`  ${line}`)
const timings: [string, number][] = []
async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  const result = await fn()
  timings.push([label, performance.now() - t0])
  return result
}
/**
 * A start-up phase, said before it starts and timed on its own. The heartbeat shows only while the phase
 * waits: PGlite's WebAssembly runs on this thread and blocks it.
 */
async function phase<T>(label: string, fn: () => Promise<T>): Promise<T> {
  say(`${label}…`)
  const t0 = performance.now()
  const heartbeat = setInterval(
    () => say(`  …still ${label} (${((performance.now() - t0) / 1000).toFixed(0)} s)`),
    3000,
  )
  try {
    const result = await fn()
    const took = performance.now() - t0
    timings.push([label, took])
    say(`  ${label}: ${Math.round(took)} ms`)
    return result
  } finally {
    clearInterval(heartbeat)
  }
}

step('Start-up')
// Loaded after the first line is printed: loading the library (and transpiling it, under tsx) takes a moment.
const { createDatabase, createPglite, isCallsheetDbError } = await phase(
  'loading @callsheet/db',
  () => import('../src'),
)
const url = process.env.DATABASE_URL
const pglite = url
  ? undefined
  : await phase(
      'starting PGlite (PostgreSQL as WebAssembly, in this process; its initdb blocks for ~4 s idle, longer when busy)',
      () => createPglite(),
    )
// On a server, DATABASE_URL is the runtime login and DATABASE_ADMIN_URL the owner, which migrates
// (README "Deployment: two roles"); createDatabase refuses an owner or superuser DATABASE_URL.
const admin = process.env.DATABASE_ADMIN_URL || undefined
const db: Database = createDatabase({ primary: pglite ?? url!, ...(pglite || !admin ? {} : { admin }) })
await phase('applying the migrations', () => db.migrate())
say(
  `engine: ${url ? `PostgreSQL (${new URL(url).host})` : 'PGlite (PostgreSQL in memory)'}; ready ${Math.round(performance.now() - started)} ms after the demo started`,
)

step('Two organizations, each with a production, departments and crew')
const stamp = Date.now().toString(36)
const north = await db.organizations.create({ name: 'Northlight Pictures', slug: `northlight-${stamp}` })
const harbour = await db.organizations.create({ name: 'Harbour Films', slug: `harbour-${stamp}` })
const n = db.tenant(north.id, { requestId: 'demo-1' })
const h = db.tenant(harbour.id, { requestId: 'demo-2' })
const producer = await n.users.create({ email: 'pat@northlight.example', name: 'Pat Producer', role: 'owner' })
const { night, camera } = await n.transaction(async (tx) => ({
  night: await tx.productions.create({
    title: 'The Long Night',
    code: 'TLN',
    status: 'pre_production',
    createdBy: producer.id,
  }),
  camera: await tx.departments.create({ name: 'Camera', code: 'CAM', sortOrder: 1 }),
}))
await timed('create 4 contacts', () =>
  n.contacts.createMany([
    {
      productionId: night.id,
      departmentId: camera.id,
      name: 'Jon Smith',
      role: 'Focus Puller',
      email: 'jon@crew.example',
    },
    { productionId: night.id, name: 'Joanna Smythe', role: 'Gaffer' },
    { productionId: night.id, name: 'Ade Okafor', role: '1st AD' },
    { productionId: night.id, departmentId: camera.id, name: 'Mia Lund', role: 'DOP' },
  ]),
)
const salt = await h.productions.create({ title: 'Salt and Iron' })
await h.contacts.create({ productionId: salt.id, name: 'Jonas Schmidt', role: 'Director of Photography' })
say(
  `Northlight: "${night.title}" with ${await n.contacts.count()} contacts; Harbour: "${salt.title}" with ${await h.contacts.count()}`,
)

step('A call sheet arrives: the extractor output is ingested (duplicates merged, departments by code)')
const upload = await n.uploads.create({
  productionId: night.id,
  fileName: 'call-sheet-day-03.pdf',
  mimeType: 'application/pdf',
  sizeBytes: 48_213,
  checksumSha256: 'a'.repeat(64),
  storageKey: `uploads/${north.id}/call-sheet-day-03.pdf`,
})
const extraction = {
  confidence: 0.91,
  extractor: { name: 'demo-extractor', version: '1.0' },
  contacts: [
    { name: 'Rosa Delgado', email: 'rosa@crew.example', role: 'Script Supervisor', department: 'SCR' },
    { name: 'Rosa Delgado', email: 'ROSA@crew.example', phone: '+44 7700 900123' }, // the same person again
    { name: 'Tom Baxter', role: 'Grip', department: 'GRP', confidence: { role: 0.62 } },
    { name: 'Jon Smith', email: 'jon@crew.example', phone: '+44 7700 900456' }, // already on the production
  ],
}
const report = await timed('ingest extraction', () => n.uploads.ingestExtraction(upload.id, extraction))
say(
  `upload ${report.upload.status} (confidence ${report.upload.extractionConfidence}): ${report.contactsCreated} created, ` +
    `${report.contactsUpdated} completed, ${report.duplicatesMerged} duplicate merged, ${report.departmentsCreated} departments created`,
)
const again = await n.uploads.ingestExtraction(upload.id, extraction)
say(`ingested twice: ${again.contactsCreated} created the second time (idempotent)`)

step("Fuzzy search for 'jon smth' as Northlight (pg_trgm, ranked by similarity)")
const hits = await timed('search', () => n.contacts.search('jon smth', { limit: 5, threshold: 0.2 }))
for (const hit of hits) say(`${hit.score.toFixed(2)}  ${hit.name} (${hit.role})`)
say("Harbour's 'Jonas Schmidt' never appears: the query filters on the tenant, and RLS would anyway.")

step("A cross-tenant attempt: Northlight aims at Harbour's rows")
const harbourContact = (await h.contacts.findMany({ limit: 1 })).rows[0]!
say(`findById(Harbour's contact): ${String(await n.contacts.findById(harbourContact.id))}`)
for (const [label, attempt] of [
  ['update it', () => n.contacts.update(harbourContact.id, { name: 'Hijacked' })],
  ['soft-delete it', () => n.contacts.softDelete(harbourContact.id)],
  ["file a contact under Harbour's production", () => n.contacts.create({ productionId: salt.id, name: 'Spy' })],
] as const) {
  const error = await attempt().catch((e: unknown) => e)
  say(
    `${label}: refused (${isCallsheetDbError(error) ? `${error.code}: ${error.message.split('\n')[0]}` : String(error)})`,
  )
}
say(`Harbour's contact is still "${(await h.contacts.getById(harbourContact.id)).name}".`)

step('Bad input is refused before any SQL, with every problem listed')
const invalid = await n.contacts
  .createMany([
    { productionId: night.id, name: 'Fine' },
    { productionId: night.id, name: '', extractionConfidence: 1.5 },
    { productionId: 'not-a-uuid', name: 'Also bad', email: 'nobody' },
  ])
  .catch((e: unknown) => e)
if (isCallsheetDbError(invalid, 'VALIDATION_FAILED')) {
  for (const issue of invalid.issues) say(`row ${issue.path.join('.')}: ${issue.message}`)
}
say(`contacts after the refused batch: ${await n.contacts.count()} (nothing written)`)

step('Soft delete a production: its crew goes with it, and comes back with it')
await n.contacts.softDelete((await n.contacts.findMany({ where: { role: '1st AD' } })).rows[0]!.id)
await n.productions.softDelete(night.id)
say(`live contacts: ${await n.contacts.count()}, soft-deleted: ${await n.contacts.count({ deleted: 'only' })}`)
await n.productions.restore(night.id)
say(`after restore: ${await n.contacts.count()} live — the 1st AD deleted on their own stays deleted`)
say(
  `findWithContacts (one query): ${(await n.productions.findWithContacts(night.id))?.contacts.map((c) => c.name).join(', ')}`,
)

step('The audit trail: every change, who made it, what changed (written by database triggers)')
const jon = (await n.contacts.search('Jon Smith', { limit: 1 }))[0]!
await n.withContext({ actorId: producer.id, requestId: 'demo-edit' }).contacts.update(jon.id, { role: '1st AC' })
const history = await n.auditLogs.history('contacts', jon.id)
for (const entry of history.rows) {
  const changed =
    entry.action === 'update' ? ` ${JSON.stringify(entry.oldValues)} → ${JSON.stringify(entry.newValues)}` : ''
  say(`${entry.action}${changed} by ${entry.userId ? 'Pat Producer' : 'the app'} (request ${entry.requestId ?? '—'})`)
}

step('API keys: shown once, stored as a SHA-256, verified before any tenant is known')
const key = await n.apiKeys.create({ name: 'extractor', scopes: ['uploads:write'] })
say(`issued ${key.prefix}… (${key.plaintext.length} characters)`)
const verified = await db.apiKeys.verify(key.plaintext)
say(
  `verify → organization ${verified?.organizationId === north.id ? 'Northlight' : '?'} with scopes ${verified?.scopes.join(', ')}`,
)
await n.apiKeys.revoke(key.id)
say(`after revoke, verify → ${String(await db.apiKeys.verify(key.plaintext))}`)

const VOLUME = Number(process.env.DEMO_CONTACTS ?? 50_000)
step(`Contacts at volume: ${VOLUME.toLocaleString('en-US')} in one createMany (validated, one transaction, audited)`)
const bulk = Array.from({ length: VOLUME }, (_, i) => ({
  productionId: night.id,
  name: `Background Artist ${i + 1}`,
  email: `extra${i + 1}@crowd.example`,
}))
const bar = (done: number, total: number) => {
  const width = 30
  const filled = Math.round((done / total) * width)
  const line = `  [${'█'.repeat(filled)}${'·'.repeat(width - filled)}] ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}`
  if (process.stdout.isTTY) process.stdout.write(`\r${line}`)
  else if (done === total || done % (total / 5) < 5000) console.log(line)
}
await timed(`createMany ${VOLUME.toLocaleString('en-US')}`, () =>
  n.contacts.createMany(bulk, {
    returning: 'count',
    chunkSize: 5000,
    onProgress: ({ done, total }) => bar(done, total),
  }),
)
if (process.stdout.isTTY) process.stdout.write('\n')
say(`Northlight now has ${(await n.contacts.count()).toLocaleString('en-US')} live contacts`)
const found = await timed('search in 50k', () => n.contacts.search('Backgrond Artist 4242', { limit: 3 }))
say(`search 'Backgrond Artist 4242' → ${found.map((f) => f.name).join(', ')}`)

await db.close()
await pglite?.close()
console.log('\nTimings:')
for (const [label, t] of timings) console.log(`  ${label.padEnd(48).slice(0, 48)} ${t.toFixed(1)} ms`)
console.log(`\nDone in ${((performance.now() - started) / 1000).toFixed(1)} s.`)
