import { createHash, randomBytes } from 'node:crypto'
import { and, eq, isNull, sql } from 'drizzle-orm'
import { z } from 'zod'
import { parseId, uuidSchema } from '../support/ids'
import { apiKeys } from '../schema/api-keys'
import type { ApiKey } from '../schema/types'
import { apiKeyInsertSchema, apiKeyUpdateSchema } from '../schema/zod'
import type { TenantRuntime } from '../unit-of-work/tenant-runtime'
import { optionalIdFilter, textFilter, type OneOrMany } from './filters'
import { TenantRepository } from './tenant-repository'

/** The recognisable start of every key this library issues. */
const API_KEY_PREFIX = 'csk_'
/** `csk_<organization id: 32 hex, no dashes>_<secret: 64 hex>`. */
const KEY_PATTERN = /^csk_([0-9a-f]{32})_([0-9a-f]{64})$/

/** A new API key: its name, scopes and optional expiry. The secret is generated. */
export interface CreateApiKeyInput {
  readonly name: string
  readonly scopes?: readonly string[]
  readonly expiresAt?: Date | null
  readonly createdBy?: string | null
}
export type UpdateApiKeyInput = z.input<typeof apiKeyUpdateSchema>
export interface ApiKeyFilter {
  readonly name?: OneOrMany<string>
  readonly createdBy?: OneOrMany<string> | null
}
export type ApiKeySort = 'createdAt' | 'name'

/** What `apiKeys.create` returns: the stored row plus the plaintext key, shown this once only. */
export type CreatedApiKey = ApiKey & {
  /**
   * `csk_<organization id as 32 hex>_<64 hex secret>` (256 bits of randomness). The key names its
   * organization so it is looked up within it (Citus routes by organization_id); only its SHA-256 is stored.
   */
  readonly plaintext: string
}

const createInputSchema = z
  .object({
    name: z.string().min(1).max(200),
    scopes: z.array(z.string().min(1).max(100)).max(64).default([]),
    expiresAt: z.date().nullish(),
    createdBy: uuidSchema.nullish(),
  })
  .strict()

const filterSchema = z.object({ name: textFilter(200), createdBy: optionalIdFilter }).strict()

/** SHA-256 of a plaintext key, as stored in `api_keys.key_hash`. */
export const hashApiKey = (plaintext: string): string => createHash('sha256').update(plaintext).digest('hex')

/**
 * The organization a key names (`csk_<org>_…`), as a dashed UUID; null when the value is not a key of
 * this library's shape. The name is a routing hint, not a proof: verification still needs the hash.
 */
export const apiKeyOrganization = (value: unknown): string | null => {
  if (typeof value !== 'string') return null
  const hex = KEY_PATTERN.exec(value)?.[1]
  if (hex === undefined) return null
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** API keys of the tenant. Keys are revoked, not soft-deleted. */
export class ApiKeysRepository extends TenantRepository<
  ApiKey,
  CreateApiKeyInput,
  UpdateApiKeyInput,
  ApiKeyFilter,
  ApiKeySort,
  // Keys are revoked, never soft-deleted: reads take no `deleted: 'include' | 'only'`.
  'exclude'
> {
  constructor(runtime: TenantRuntime) {
    super(runtime, {
      entity: 'api_keys',
      table: apiKeys,
      createSchema: apiKeyInsertSchema,
      updateSchema: apiKeyUpdateSchema,
      filterSchema,
      filterColumns: { name: apiKeys.name, createdBy: apiKeys.createdBy },
      sortColumns: { createdAt: apiKeys.createdAt, name: apiKeys.name },
      defaultSort: 'createdAt',
    })
  }

  /**
   * Issues a key. The plaintext is returned this once; only its SHA-256 is stored.
   *
   * @example
   * ```ts
   * const { plaintext } = await tenant.apiKeys.create({ name: 'extractor', scopes: ['uploads:write'] })
   * ```
   * @throws ValidationError on bad input.
   */
  override async create(input: CreateApiKeyInput): Promise<CreatedApiKey> {
    const parsed = this.parseCreate(input, 'input') as unknown as z.output<typeof createInputSchema>
    const secret = randomBytes(32).toString('hex')
    const plaintext = `${API_KEY_PREFIX}${this.runtime.organizationId.replaceAll('-', '').toLowerCase()}_${secret}`
    const values = { ...parsed, prefix: `${API_KEY_PREFIX}${secret.slice(0, 8)}`, keyHash: hashApiKey(plaintext) }
    const [apiKey] = await this.runtime.write(this.insertWrite([values]))
    return { ...(apiKey as ApiKey), plaintext }
  }

  /**
   * Revokes a key: `db.apiKeys.verify` refuses it from then on. Revoking a revoked key changes nothing.
   * @throws NotFoundError when no key has this id for this tenant.
   */
  async revoke(id: string): Promise<ApiKey> {
    const key = parseId(id)
    const [revoked] = await this.runtime.write({
      entity: 'api_keys',
      operation: 'update',
      ids: [key],
      values: [{ revokedAt: 'now()' }],
      statement: async (db) =>
        (await db
          .update(apiKeys)
          .set({ revokedAt: sql`now()` })
          .where(and(this.tenantScope(), eq(apiKeys.id, key), isNull(apiKeys.revokedAt)))
          .returning()) as Record<string, unknown>[],
    })
    return (revoked as ApiKey | undefined) ?? this.getById(id)
  }

  protected override parseCreate(input: unknown, what: string): Record<string, unknown> {
    const parsed = super.parseCreateWith(createInputSchema, input, what)
    return parsed
  }
}
