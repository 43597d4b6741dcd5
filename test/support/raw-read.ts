import { sql } from 'drizzle-orm'
import type { TenantClient } from '../../src'
import type { TenantRuntime } from '../../src/unit-of-work/tenant-runtime'

/**
 * Runs raw SQL through a tenant client's own read path — routed like its repository reads, as the app
 * role with the tenant settings applied — and returns the first row. For asserting where a read ran.
 */
export async function rawRead<T extends Record<string, unknown>>(tenant: TenantClient, text: string): Promise<T> {
  const runtime = (tenant as unknown as { runtime: TenantRuntime }).runtime
  const result = await runtime.read((db) => db.execute(sql.raw(text)))
  const rows = Array.isArray(result) ? result : (result as { rows: unknown[] }).rows
  return rows[0] as T
}
