import { z } from 'zod'
import { uuidSchema } from '../support/ids'
import { validate } from '../support/validate'

/** Who is acting, for the audit trail. Every field is optional. */
export interface TenantContext {
  /** The acting user's id (UUID). */
  readonly actorId?: string | undefined
  /** The API key the request came in with (UUID). */
  readonly apiKeyId?: string | undefined
  /** The client's IP address (v4 or v6). */
  readonly ip?: string | undefined
  /** A request or job id to correlate audit rows with logs (≤ 200 printable characters). */
  readonly requestId?: string | undefined
}

const contextSchema = z
  .object({
    actorId: uuidSchema.optional(),
    apiKeyId: uuidSchema.optional(),
    ip: z.union([z.ipv4(), z.ipv6()]).optional(),
    requestId: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[\x20-\x7E]+$/, 'must be printable ASCII')
      .optional(),
  })
  .strict()

/**
 * Checks a tenant context before any SQL.
 * @throws ValidationError listing every bad field.
 */
export function parseTenantContext(context: unknown): TenantContext {
  // The shared validator: NUL and lone surrogates refused (set_config could not take them), messages capped.
  return validate(contextSchema, context ?? {}, 'tenant context')
}
