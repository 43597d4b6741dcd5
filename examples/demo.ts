/**
 * `npm run demo`: the database guarantees @callsheet/db stands on, narrated, on an in-memory PGlite
 * (or on the server in DATABASE_URL). No server or Docker needed.
 */
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { createPglite, migrate } from '../src'

type Query = <T extends Record<string, unknown>>(text: string, params?: unknown[]) => Promise<T[]>
type Tx = <T>(fn: (q: Query) => Promise<T>) => Promise<T>

const started = performance.now()
const step = (title: string) => console.log(`\n▸ ${title}`)
const say = (line: string) => console.log(`  ${line}`)

async function open(): Promise<{ engine: string; query: Query; tx: Tx; close(): Promise<void> }> {
  const url = process.env.DATABASE_URL
  if (url) {
    await migrate(url)
    const sql = postgres(url, { max: 2, onnotice: () => {} })
    const wrap =
      (s: postgres.Sql | postgres.TransactionSql): Query =>
      async <T>(text: string, params: unknown[] = []) =>
        (await s.unsafe(text, params as never[])) as unknown as T[]
    return {
      engine: `PostgreSQL (${new URL(url).host})`,
      query: wrap(sql),
      tx: async (fn) => (await sql.begin((t) => fn(wrap(t)))) as never,
      close: () => sql.end({ timeout: 5 }),
    }
  }
  const pg = await createPglite()
  await migrate(pg)
  return {
    engine: 'PGlite (PostgreSQL in memory)',
    query: async (text, params = []) => (await pg.query(text, params)).rows as never,
    tx: (fn) => pg.transaction((t) => fn(async (text, params = []) => (await t.query(text, params)).rows as never)),
    close: () => pg.close(),
  }
}

const db = await open()
say(`engine: ${db.engine}, migrated in ${Math.round(performance.now() - started)} ms`)

// Tenant work runs as the app role with the tenant set transaction-locally — what createTenantClient does.
const asTenant = <T>(orgId: string, fn: (q: Query) => Promise<T>) =>
  db.tx(async (q) => {
    await q(`select set_config('role', 'callsheet_app', true), set_config('app.organization_id', $1, true)`, [orgId])
    return fn(q)
  })

step('Two organizations, each with a production and crew')
const slug = `demo-${Date.now().toString(36)}`
const orgs: Record<string, string> = {}
for (const name of ['Northlight Pictures', 'Harbour Films']) {
  const [org] = await db.query<{ id: string }>(`insert into organizations (name, slug) values ($1, $2) returning id`, [
    name,
    `${slug}-${name.split(' ')[0]!.toLowerCase()}`,
  ])
  orgs[name] = org!.id
  await asTenant(org!.id, async (q) => {
    const [prod] = await q<{ id: string }>(
      `insert into productions (organization_id, title, status, start_date, end_date)
       values ($1, $2, 'pre_production', '2026-03-02', '2026-05-29') returning id`,
      [org!.id, name === 'Northlight Pictures' ? 'The Long Night' : 'Salt and Iron'],
    )
    const crew =
      name === 'Northlight Pictures'
        ? [
            ['Jon Smith', 'Focus Puller'],
            ['Joanna Smythe', 'Gaffer'],
            ['Ade Okafor', '1st AD'],
          ]
        : [
            ['Jonas Schmidt', 'Director of Photography'],
            ['Mia Lund', 'Producer'],
          ]
    for (const [person, role] of crew) {
      await q(`insert into contacts (organization_id, production_id, name, role, email) values ($1, $2, $3, $4, $5)`, [
        org!.id,
        prod!.id,
        person,
        role,
        `${person!.split(' ')[0]!.toLowerCase()}@${name.split(' ')[0]!.toLowerCase()}.example`,
      ])
    }
  })
  say(`${name}: organization ${org!.id}`)
}
const north = orgs['Northlight Pictures']!
const harbour = orgs['Harbour Films']!

step("Fuzzy search for 'jon smth' inside Northlight (pg_trgm, ranked by similarity)")
const hits = await asTenant(north, (q) =>
  q<{ name: string; role: string; score: number }>(
    `select name, role, round(similarity(name, $1)::numeric, 2)::float as score from contacts
     where deleted_at is null and name % $1 order by score desc`,
    ['jon smth'],
  ),
)
for (const h of hits) say(`${h.score.toFixed(2)}  ${h.name} (${h.role})`)
say("Harbour's 'Jonas Schmidt' is not among them: row-level security filtered it out in the database.")

step('A cross-tenant attempt, refused by the database itself')
const harbourContact = (await asTenant(harbour, (q) => q<{ id: string }>(`select id from contacts limit 1`)))[0]!.id
const seen = await asTenant(north, (q) => q(`select * from contacts where id = $1`, [harbourContact]))
say(`Northlight reading a Harbour contact by id: ${seen.length} rows`)
const changed = await asTenant(north, (q) =>
  q(`update contacts set name = 'Hijacked' where id = $1 returning id`, [harbourContact]),
)
say(`Northlight updating it: ${changed.length} rows changed`)
try {
  await asTenant(north, (q) =>
    q(`insert into departments (organization_id, name, code) values ($1, 'Grip', 'GRIP')`, [harbour]),
  )
} catch (error) {
  say(`Northlight inserting a row for Harbour: refused (${(error as Error).message})`)
}

step('Bad rows are refused by the database, not only by the library')
for (const [label, text] of [
  ['a confidence of 1.5', `update contacts set extraction_confidence = 1.5`],
  ['an end date before the start', `update productions set end_date = '2026-01-01'`],
  [
    'a malformed API key hash',
    `insert into api_keys (organization_id, name, prefix, key_hash) values ('${north}', 'k', 'csk_demo', 'nope')`,
  ],
] as const) {
  try {
    await asTenant(north, (q) => q(text))
    say(`${label}: accepted?!`)
  } catch (error) {
    say(`${label}: refused (${(error as Error).message.split('\n')[0]})`)
  }
}

step('Soft delete: the row stays, hidden from live reads, and comes back on restore')
await asTenant(north, (q) => q(`update contacts set deleted_at = now() where name = 'Ade Okafor'`))
const live = await asTenant(north, (q) =>
  q<{ n: number }>(`select count(*)::int as n from contacts where deleted_at is null`),
)
const all = await asTenant(north, (q) => q<{ n: number }>(`select count(*)::int as n from contacts`))
say(`live contacts: ${live[0]!.n}, including deleted: ${all[0]!.n}`)
await asTenant(north, (q) => q(`update contacts set deleted_at = null where name = 'Ade Okafor'`))

step('The audit log is append-only for the app role')
await asTenant(north, (q) =>
  q(`insert into audit_logs (organization_id, action, entity_type, entity_id) values ($1, 'update', 'contacts', $2)`, [
    north,
    randomUUID(),
  ]),
)
try {
  await asTenant(north, (q) => q(`delete from audit_logs`))
} catch (error) {
  say(`deleting audit rows: refused (${(error as Error).message})`)
}

await db.close()
console.log(`\nDone in ${((performance.now() - started) / 1000).toFixed(1)} s.`)
