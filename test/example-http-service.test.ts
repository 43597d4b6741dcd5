import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../examples/http-service/server'
import type { Contact } from '../src'
import { createTestDatabase, seedTenant, type SeededTenant, type TestDatabase } from '../src/testing'

// The example service (examples/http-service/server.ts) over a real server socket and PGlite.

interface Json {
  status: number
  headers: Headers
  body: { data?: unknown; nextCursor?: string | null; error?: { code: string; issues?: unknown[] } }
}

// Named '[pglite]' for the engines reporter (test/harness/engines-reporter.ts).
describe('examples/http-service [pglite]', () => {
  let db: TestDatabase
  let server: Server
  let base: string
  let a: SeededTenant
  let b: SeededTenant
  let keyA: string // contacts:read + contacts:write
  let keyAReadOnly: string
  let keyB: string
  let keyAId: string

  const call = async (
    key: string | undefined,
    method: string,
    path: string,
    options: { body?: unknown; raw?: string | ReadableStream<Uint8Array>; headers?: Record<string, string> } = {},
  ): Promise<Json> => {
    const headers: Record<string, string> = { ...options.headers }
    if (key !== undefined) headers.authorization = `Bearer ${key}`
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
      ...(options.raw instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit)
    const text = await res.text()
    return { status: res.status, headers: res.headers, body: text === '' ? {} : JSON.parse(text) }
  }
  const create = async (key: string, input: Record<string, unknown>, headers?: Record<string, string>) => {
    const res = await call(key, 'POST', '/contacts', { body: input, ...(headers ? { headers } : {}) })
    expect(res.status, JSON.stringify(res.body)).toBe(201)
    return res.body.data as Contact
  }
  const ids = (res: Json) => (res.body.data as { id: string }[]).map((c) => c.id)

  beforeAll(async () => {
    db = await createTestDatabase()
    a = await seedTenant(db, { productions: 1, contactsPerProduction: 3, label: 'alpha' })
    b = await seedTenant(db, { seed: 2, productions: 1, contactsPerProduction: 3, label: 'bravo' })
    const rw = ['contacts:read', 'contacts:write']
    const created = await a.tenant.apiKeys.create({ name: 'a-rw', scopes: rw })
    keyA = created.plaintext
    keyAId = created.id
    keyAReadOnly = (await a.tenant.apiKeys.create({ name: 'a-ro', scopes: ['contacts:read'] })).plaintext
    keyB = (await b.tenant.apiKeys.create({ name: 'b-rw', scopes: rw })).plaintext
    server = createServer(createApp(db))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve))
    await db?.close()
  })

  it('401 without a key, with a malformed key, an unknown key and a revoked key', async () => {
    expect((await call(undefined, 'GET', '/contacts')).status).toBe(401)
    expect((await call('nope', 'GET', '/contacts')).status).toBe(401)
    expect((await call(`csk_${'0'.repeat(32)}_${'0'.repeat(64)}`, 'GET', '/contacts')).status).toBe(401)
    const revoked = await a.tenant.apiKeys.create({ name: 'revoked', scopes: ['contacts:read'] })
    expect((await call(revoked.plaintext, 'GET', '/contacts')).status).toBe(200)
    await a.tenant.apiKeys.revoke(revoked.id)
    const res = await call(revoked.plaintext, 'GET', '/contacts')
    expect(res.status).toBe(401)
    expect(res.body.error?.code).toBe('UNAUTHORIZED')
  })

  it('creates, gets, searches and pages contacts', async () => {
    const productionId = a.productions[0]!.id
    const res = await call(keyA, 'POST', '/contacts', {
      body: { productionId, name: 'Zebedee Quintrell', role: 'Gaffer', email: 'zq@crew.example' },
    })
    expect(res.status).toBe(201)
    const contact = res.body.data as Contact
    expect(contact).toMatchObject({ name: 'Zebedee Quintrell', organizationId: a.organization.id })
    expect(res.headers.get('location')).toBe(`/contacts/${contact.id}`)

    const got = await call(keyA, 'GET', `/contacts/${contact.id}`)
    expect(got.status).toBe(200)
    expect(got.body.data).toMatchObject({ id: contact.id, email: 'zq@crew.example' })

    const hits = await call(keyA, 'GET', `/contacts?q=${encodeURIComponent('zebedee quintrel')}`)
    expect(hits.status).toBe(200)
    expect(ids(hits)[0]).toBe(contact.id)

    // Keyset pages of 2 cover every contact exactly once.
    const seen: string[] = []
    let cursor: string | null | undefined
    do {
      const page = await call(keyA, 'GET', `/contacts?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
      expect(page.status).toBe(200)
      seen.push(...ids(page))
      cursor = page.body.nextCursor
    } while (cursor)
    expect(seen).toHaveLength(new Set(seen).size)
    expect(seen).toEqual(expect.arrayContaining([...a.contacts.map((c) => c.id), contact.id]))
  })

  it("never shows or touches another tenant's contacts", async () => {
    const mine = await create(keyA, { productionId: a.productions[0]!.id, name: 'Philomena Vantwest' })
    expect((await call(keyB, 'GET', `/contacts/${mine.id}`)).status).toBe(404)
    expect((await call(keyB, 'DELETE', `/contacts/${mine.id}`)).status).toBe(404)
    expect((await call(keyA, 'GET', `/contacts/${mine.id}`)).status).toBe(200) // untouched

    const list = await call(keyB, 'GET', '/contacts?limit=1000')
    expect(ids(list).sort()).toEqual(b.contacts.map((c) => c.id).sort())
    const search = await call(keyB, 'GET', `/contacts?q=${encodeURIComponent('Philomena Vantwest')}`)
    expect(search.body.data).toEqual([])
    for (const c of a.contacts.slice(0, 2)) {
      const hits = await call(keyB, 'GET', `/contacts?q=${encodeURIComponent(c.name)}`)
      expect(ids(hits)).not.toContain(c.id)
      expect((await call(keyB, 'GET', `/contacts/${c.id}`)).status).toBe(404)
    }
    // Referencing another tenant's production is refused by the database (composite foreign key).
    const foreignRef = await call(keyB, 'POST', '/contacts', {
      body: { productionId: a.productions[0]!.id, name: 'Sneaky' },
    })
    expect(foreignRef.status).toBe(422)
    expect(foreignRef.body.error?.code).toBe('FOREIGN_KEY_VIOLATION')
  })

  it('400 with every validation issue for bad input; a malformed id is a 400 too', async () => {
    const bad = await call(keyA, 'POST', '/contacts', { body: { productionId: 'nope', name: '', colour: 'red' } })
    expect(bad.status).toBe(400)
    expect(bad.body.error?.code).toBe('VALIDATION_FAILED')
    const paths = (bad.body.error?.issues as { path: unknown[] }[]).map((i) => i.path.join('.'))
    expect(paths).toEqual(expect.arrayContaining(['productionId', 'name']))
    expect(paths.length).toBeGreaterThanOrEqual(3) // the unknown key too (strict schema)

    const notObject = await call(keyA, 'POST', '/contacts', { body: [1, 2] })
    expect(notObject.status).toBe(400)

    // Decision: an id that is not a UUID is a client error (400, with the library's issue), not a 404.
    const malformed = await call(keyA, 'GET', '/contacts/not-a-uuid')
    expect(malformed.status).toBe(400)
    expect(malformed.body.error?.issues).toEqual([{ path: ['id'], message: 'must be a UUID' }])
    expect((await call(keyA, 'GET', '/contacts?limit=abc')).status).toBe(400)
    expect((await call(keyA, 'GET', '/contacts?cursor=tampered')).status).toBe(400)
    expect((await call(keyA, 'GET', '/contacts?q=%20%20')).status).toBe(400)
  })

  it('400 on malformed JSON, 413 over 1 MB (with or without content-length)', async () => {
    const malformed = await call(keyA, 'POST', '/contacts', {
      raw: '{"name": ',
      headers: { 'content-type': 'application/json' },
    })
    expect(malformed.status).toBe(400)
    expect(malformed.body.error?.code).toBe('MALFORMED_JSON')

    const big = JSON.stringify({ productionId: a.productions[0]!.id, name: 'Big', notes: 'x'.repeat(1024 * 1024) })
    expect((await call(keyA, 'POST', '/contacts', { raw: big })).status).toBe(413)
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new Uint8Array(100 * 1024).fill(0x20))
        controller.close()
      },
    })
    expect((await call(keyA, 'POST', '/contacts', { raw: chunked })).status).toBe(413)
    // The server still answers afterwards.
    expect((await call(keyA, 'GET', '/contacts?limit=1')).status).toBe(200)
  })

  it('403 for a key without the scope; nothing is written', async () => {
    const before = await a.tenant.contacts.count()
    const denied = await call(keyAReadOnly, 'POST', '/contacts', {
      body: { productionId: a.productions[0]!.id, name: 'Nobody' },
    })
    expect(denied.status).toBe(403)
    expect(denied.body.error?.code).toBe('FORBIDDEN')
    expect((await call(keyAReadOnly, 'DELETE', `/contacts/${a.contacts[0]!.id}`)).status).toBe(403)
    expect(await a.tenant.contacts.count()).toBe(before)
    expect((await call(keyAReadOnly, 'GET', `/contacts/${a.contacts[0]!.id}`)).status).toBe(200)
  })

  it('soft deletes, and the audit log carries the request id, the API key and the IP', async () => {
    const contact = await create(
      keyA,
      { productionId: a.productions[0]!.id, name: 'Audit Me' },
      { 'x-request-id': 'req-create-1' },
    )
    const del = await call(keyA, 'DELETE', `/contacts/${contact.id}`, { headers: { 'x-request-id': 'req-delete-1' } })
    expect(del.status).toBe(204)
    expect(del.headers.get('x-request-id')).toBe('req-delete-1')
    expect((await call(keyA, 'GET', `/contacts/${contact.id}`)).status).toBe(404)
    expect((await call(keyA, 'DELETE', `/contacts/${contact.id}`)).status).toBe(404)
    expect(await a.tenant.contacts.findById(contact.id, { deleted: 'only' })).toMatchObject({ id: contact.id })

    const { rows } = await a.tenant.auditLogs.history('contacts', contact.id) // newest first
    expect(rows.map((r) => [r.action, r.requestId, r.apiKeyId])).toEqual([
      ['soft_delete', 'req-delete-1', keyAId],
      ['insert', 'req-create-1', keyAId],
    ])
    expect(rows[0]!.ipAddress).toMatch(/127\.0\.0\.1/)

    // Without (or with an unusable) header, the service makes one up and returns it.
    const res = await call(keyA, 'GET', '/contacts?limit=1', { headers: { 'x-request-id': 'é'.repeat(3) } })
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('404 for unknown routes, 405 for unsupported methods', async () => {
    expect((await call(keyA, 'GET', '/productions')).status).toBe(404)
    expect((await call(keyA, 'GET', '/contacts/x/y')).status).toBe(404)
    const res = await call(keyA, 'PUT', '/contacts')
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('GET, POST')
  })
})
