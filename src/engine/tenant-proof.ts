import { createHash, createHmac, randomBytes } from 'node:crypto'
import type { PGlite } from '@electric-sql/pglite'

// The proofs are signed with a key derived from the deployment secret, not with the secret itself:
// what the database stores (this key's padded forms) then cannot sign anything else the secret signs.
const DERIVATION_LABEL = 'callsheet-db tenant proof key v1'
/** How long a proof is good for; the database refuses proofs expiring more than 15 minutes ahead. */
const PROOF_TTL_SECONDS = 600
/** A cached proof is replaced once it has less than this left, so a unit never starts with a stale one. */
const PROOF_REFRESH_SECONDS = 300
const CACHE_LIMIT = 10_000

/** The database side of a deployment secret: what `callsheet_private.tenant_keys` stores. */
export interface TenantKey {
  /** 16 hex digits naming the key (a hash of it: says nothing about the secret). */
  readonly id: string
  /** HMAC-SHA256's inner padded key (key XOR 0x36…), 64 bytes, hex. */
  readonly innerPad: string
  /** HMAC-SHA256's outer padded key (key XOR 0x5c…), 64 bytes, hex. */
  readonly outerPad: string
}

function derive(secret: string): Buffer {
  return createHmac('sha256', secret).update(DERIVATION_LABEL).digest()
}

/** The key material `migrate({ secret })` installs for `secret`. */
export function tenantKeyOf(secret: string): TenantKey {
  const key = derive(secret)
  const block = Buffer.alloc(64)
  key.copy(block)
  const inner = Buffer.from(block.map((b) => b ^ 0x36))
  const outer = Buffer.from(block.map((b) => b ^ 0x5c))
  return {
    id: createHash('sha256').update(key).digest('hex').slice(0, 16),
    innerPad: inner.toString('hex'),
    outerPad: outer.toString('hex'),
  }
}

/**
 * What a proof signs: the tenant and the audit actor of the unit (`app.actor_id`, `app.api_key_id`), so
 * that SQL injected into a unit can change neither without the unit losing its tenant. The database
 * builds the same text from the unit's settings (`callsheet_tenant()`, migration 0012).
 */
function proofMessage(organizationId: string, actorId: string, apiKeyId: string, expires: number): string {
  return `${organizationId}.${actorId}.${apiKeyId}.${expires}`
}

/**
 * `<key id>.<expires, epoch seconds>.<hex HMAC-SHA256(derived key, org.actor.apiKey.expires)>`: what
 * `app.tenant_proof` carries so that `callsheet_tenant()` accepts `organizationId` with that actor and key
 * (`''` for none).
 */
export function tenantProof(
  secret: string,
  organizationId: string,
  expiresEpochSeconds: number,
  actorId = '',
  apiKeyId = '',
): string {
  const key = derive(secret)
  const keyId = createHash('sha256').update(key).digest('hex').slice(0, 16)
  const mac = createHmac('sha256', key)
    .update(proofMessage(organizationId, actorId, apiKeyId, expiresEpochSeconds))
    .digest('hex')
  return `${keyId}.${expiresEpochSeconds}.${mac}`
}

/**
 * Proofs for one deployment secret, cached per organization and actor until close to expiry: a unit pays
 * a map lookup, not an HMAC (issue 20: Node CPU per unit).
 */
export class TenantProofs {
  readonly #secret: string | undefined
  readonly #key: Buffer | undefined
  readonly #keyId: string | undefined
  readonly #cache = new Map<string, { proof: string; refreshAt: number }>()

  constructor(secret: string | undefined) {
    this.#secret = secret
    if (secret !== undefined) {
      this.#key = derive(secret)
      this.#keyId = createHash('sha256').update(this.#key).digest('hex').slice(0, 16)
    }
  }

  /** Whether a secret is configured. */
  get configured(): boolean {
    return this.#secret !== undefined
  }

  /**
   * The proof for `organizationId`; '' for the unit without a tenant, and when no secret is configured
   * (the engine then refuses the unit: `TenantProofError.noSecret()`).
   */
  proof(organizationId: string, actorId = '', apiKeyId = ''): string {
    if (organizationId === '' || this.#key === undefined || this.#keyId === undefined) return ''
    const now = Date.now()
    const cacheKey = actorId === '' && apiKeyId === '' ? organizationId : `${organizationId}.${actorId}.${apiKeyId}`
    const cached = this.#cache.get(cacheKey)
    if (cached !== undefined && cached.refreshAt > now) return cached.proof
    const expires = Math.floor(now / 1000) + PROOF_TTL_SECONDS
    const mac = createHmac('sha256', this.#key)
      .update(proofMessage(organizationId, actorId, apiKeyId, expires))
      .digest('hex')
    const proof = `${this.#keyId}.${expires}.${mac}`
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear()
    this.#cache.set(cacheKey, { proof, refreshAt: (expires - PROOF_REFRESH_SECONDS) * 1000 })
    return proof
  }
}

// Upserts the key (touching it makes it the newest) and keeps it and the one installed before it:
// the previous secret stays valid while a rotation rolls out.
const INSTALL_KEY_SQL =
  'insert into callsheet_private.tenant_keys (id, inner_pad, outer_pad, installed_at) ' +
  "values ($1, decode($2, 'hex'), decode($3, 'hex'), clock_timestamp()) " +
  'on conflict (id) do update set installed_at = clock_timestamp()'
const PRUNE_KEYS_SQL =
  'delete from callsheet_private.tenant_keys where id not in ' +
  '(select id from callsheet_private.tenant_keys order by installed_at desc limit 2)'

/** The statements that install `secret`'s key, with their parameters (run as the owner). */
export function installKeyStatements(secret: string): readonly { text: string; params: string[] }[] {
  const key = tenantKeyOf(secret)
  return [
    { text: INSTALL_KEY_SQL, params: [key.id, key.innerPad, key.outerPad] },
    { text: PRUNE_KEYS_SQL, params: [] },
  ]
}

// One secret per PGlite instance when none is configured, shared by every Database opened on it.
const pgliteSecrets = new WeakMap<PGlite, string>()

/** The configured secret, or (PGlite only) a random one for this PGlite instance. */
export function pgliteSecret(pglite: PGlite, configured: string | undefined): string {
  if (configured !== undefined) return configured
  let secret = pgliteSecrets.get(pglite)
  if (secret === undefined) {
    secret = randomBytes(32).toString('base64url')
    pgliteSecrets.set(pglite, secret)
  }
  return secret
}
