import { z } from 'zod'
import { ValidationError } from '../errors/errors'
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

export const uuidSchema = z.uuid({ version: undefined })

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

/**
 * Checks an id is a UUID before it reaches SQL.
 * @throws ValidationError
 */
export function parseId(id: unknown, what = 'id'): string {
  if (typeof id !== 'string' || !uuidSchema.safeParse(id).success) {
    const shown = typeof id === 'string' ? JSON.stringify(id.length > 60 ? `${id.slice(0, 60)}…` : id) : typeof id
    throw new ValidationError(`${what} must be a UUID, got ${shown}`, [{ path: [what], message: 'must be a UUID' }])
  }
  return id.toLowerCase()
}
