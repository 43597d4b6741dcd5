/**
 * A small JSON HTTP service over @callsheet/db on plain `node:http`: API-key auth, one tenant client per
 * request (so every audit row carries the key, the client's IP and the request id), scope checks, and
 * the library's error codes mapped to HTTP statuses in one place.
 *
 *   GET    /contacts?q=jon&limit=20      search by name (trigram similarity), best first
 *   GET    /contacts?limit=50&cursor=…   a page of contacts, oldest first; `nextCursor` for the next page
 *   GET    /contacts/:id                 one contact; 404 also for another tenant's id
 *   POST   /contacts                     create from a JSON body (≤ 1 MB); 400 lists every validation issue
 *   DELETE /contacts/:id                 soft delete; 204
 *
 * Reads need the `contacts:read` scope, writes `contacts:write`. A malformed id (not a UUID) is a 400
 * with the library's validation issue, not a 404: the id format is public, so saying so leaks nothing.
 *
 * Run it: `npx tsx examples/http-service/server.ts` (on DATABASE_URL, else an in-memory PGlite with a
 * demo tenant whose API key is printed). PORT defaults to 3000.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import { pathToFileURL } from 'node:url'
import {
  createDatabase,
  createPglite,
  createTenantClient,
  isCallsheetDbError,
  type CallsheetDbErrorCode,
  type CreateContactInput,
  type Database,
} from '../../src'

const MAX_BODY_BYTES = 1024 * 1024

/** An error the service itself raises, with its status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** The request listener: `createServer(createApp(db)).listen(3000)`. */
export function createApp(db: Database): RequestListener {
  return (req, res) => {
    const requestId = requestIdOf(req)
    res.setHeader('x-request-id', requestId)
    handle(db, req, res, requestId).catch((error: unknown) => sendError(res, error, requestId))
  }
}

async function handle(db: Database, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  // 1. Who is calling: the key decides the tenant; nothing from the request body or URL does.
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
  const key = token === undefined ? null : await db.apiKeys.verify(token)
  if (!key) throw new HttpError(401, 'UNAUTHORIZED', 'missing, unknown, revoked or expired API key')
  const ip = req.socket.remoteAddress?.replace(/%.*$/, '') // drop an IPv6 zone id ("fe80::1%eth0")
  const tenant = createTenantClient(key.organizationId, { apiKeyId: key.apiKeyId, ip, requestId }, { database: db })

  // 2. Routing.
  const url = new URL(req.url ?? '/', 'http://localhost')
  const [, collection, id, ...extra] = url.pathname.split('/')
  if (collection !== 'contacts' || extra.length > 0 || id === '') throw new HttpError(404, 'NOT_FOUND', 'no such route')
  const allowed = id === undefined ? ['GET', 'POST'] : ['GET', 'DELETE']
  if (!allowed.includes(req.method ?? '')) {
    res.setHeader('allow', allowed.join(', '))
    throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`)
  }
  const scope = req.method === 'GET' ? 'contacts:read' : 'contacts:write'
  if (!key.scopes.includes(scope)) throw new HttpError(403, 'FORBIDDEN', `this API key lacks the ${scope} scope`)

  // 3. The work. Every call below is one transaction under row-level security for this tenant.
  if (id === undefined && req.method === 'GET') {
    const q = url.searchParams.get('q')
    const limit = optionalNumber(url.searchParams.get('limit'))
    if (q !== null) return send(res, 200, { data: await tenant.contacts.search(q, { limit }) })
    const cursor = url.searchParams.get('cursor') ?? undefined
    const page = await tenant.contacts.findMany({ limit, cursor })
    return send(res, 200, { data: page.rows, nextCursor: page.nextCursor })
  }
  if (id === undefined) {
    // The body is untrusted: create() validates it (zod, strict) before any SQL, so the cast is safe.
    const contact = await tenant.contacts.create((await readJson(req)) as CreateContactInput)
    res.setHeader('location', `/contacts/${contact.id}`)
    return send(res, 201, { data: contact })
  }
  if (req.method === 'GET') {
    const contact = await tenant.contacts.findById(id) // undefined for another tenant's id too
    if (!contact) throw new HttpError(404, 'NOT_FOUND', `contact ${id} not found`)
    return send(res, 200, { data: contact })
  }
  await tenant.contacts.softDelete(id) // NotFoundError → 404
  res.writeHead(204).end()
}

const STATUS_BY_CODE: Partial<Record<CallsheetDbErrorCode, number>> = {
  NOT_FOUND: 404,
  UNIQUE_VIOLATION: 409,
  CONFLICT: 409,
  INVALID_STATE: 409,
  FOREIGN_KEY_VIOLATION: 422, // e.g. a productionId that is not this tenant's
  CHECK_VIOLATION: 422,
  NOT_NULL_VIOLATION: 422,
}

/** The one place library errors become HTTP statuses. Unknown errors are logged and hidden. */
function sendError(res: ServerResponse, error: unknown, requestId: string): void {
  if (error instanceof HttpError) {
    if (error.status === 413) res.setHeader('connection', 'close') // rather than reading the rest of the body
    return send(res, error.status, { error: { code: error.code, message: error.message } })
  }
  if (isCallsheetDbError(error, 'VALIDATION_FAILED')) {
    return send(res, 400, { error: { code: error.code, message: error.message, issues: error.issues } })
  }
  if (isCallsheetDbError(error)) {
    const status = STATUS_BY_CODE[error.code]
    if (status !== undefined) return send(res, status, { error: { code: error.code, message: error.message } })
    if (error.retryable) {
      // Serialization failure, lost connection, pool exhausted, timeout: the client may try again.
      res.setHeader('retry-after', '1')
      return send(res, 503, { error: { code: error.code, message: 'temporarily unavailable, retry' } })
    }
  }
  console.error(`[${requestId}]`, error)
  send(res, 500, { error: { code: 'INTERNAL', message: 'internal error', requestId } })
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.destroy()
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body))
}

/** The caller's `x-request-id` when the audit log can take it (≤ 200 printable ASCII), else a new one. */
function requestIdOf(req: IncomingMessage): string {
  const header = req.headers['x-request-id']
  return typeof header === 'string' && /^[\x20-\x7E]{1,200}$/.test(header) ? header : randomUUID()
}

function optionalNumber(value: string | null): number | undefined {
  return value === null ? undefined : Number(value) // NaN is refused by the library's validation → 400
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const tooLarge = () => new HttpError(413, 'PAYLOAD_TOO_LARGE', `the body must be at most ${MAX_BODY_BYTES} bytes`)
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw tooLarge() // chunked bodies have no content-length
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new HttpError(400, 'MALFORMED_JSON', 'the body is not valid JSON')
  }
}

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL
  const pglite = url ? undefined : await createPglite()
  // On a server, DATABASE_URL is the runtime login and DATABASE_ADMIN_URL the owner, which migrates
  // (README "Deployment: two roles"); createDatabase refuses an owner or superuser DATABASE_URL.
  const admin = process.env.DATABASE_ADMIN_URL || undefined
  const db = createDatabase({ primary: pglite ?? url!, ...(pglite || !admin ? {} : { admin }) })
  await db.migrate()
  if (pglite) {
    const org = await db.organizations.create({ name: 'Demo Pictures', slug: `demo-${Date.now().toString(36)}` })
    const tenant = db.tenant(org.id)
    const production = await tenant.productions.create({ title: 'The Long Night' })
    const { plaintext } = await tenant.apiKeys.create({ name: 'demo', scopes: ['contacts:read', 'contacts:write'] })
    console.log(`PGlite demo tenant; try:\n  export KEY=${plaintext}`)
    console.log(`  curl -H "authorization: Bearer $KEY" -H 'content-type: application/json' \\`)
    console.log(
      `    -d '{"productionId":"${production.id}","name":"Jon Smith"}' localhost:${process.env.PORT ?? 3000}/contacts`,
    )
  }
  const server = createServer(createApp(db)).listen(Number(process.env.PORT ?? 3000), () => {
    console.log(`listening on ${JSON.stringify(server.address())}`)
  })
  process.once('SIGINT', () => {
    server.close()
    void db.close().then(() => pglite?.close())
  })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
