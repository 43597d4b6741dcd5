/**
 * A vitest setup file: the deployment secret of the test run. Every `migrate()` and `createDatabase()`
 * in the tests reads it from `CALLSHEET_SECRET` (their default), as production processes would, so the
 * key migrate installs and the proofs units send agree. A run may bring its own.
 */
import { tenantProof } from '../../src/engine/tenant-proof'

/** The secret of this run (CALLSHEET_SECRET when set, else a fixed test value). */
export const TEST_SECRET = process.env.CALLSHEET_SECRET || 'callsheet-test-secret-0123456789abcdef'
process.env.CALLSHEET_SECRET = TEST_SECRET

/** A proof for `organizationId` valid for ten minutes (raw SQL as the app role, the way units set it). */
export function testProof(organizationId: string, secret: string = TEST_SECRET): string {
  return tenantProof(secret, organizationId, Math.floor(Date.now() / 1000) + 600)
}
