import { describe, expect, it } from 'vitest'
import {
  settingsParams,
  settingsStatementText,
  type SettingsVariant,
  type UnitSettings,
} from '../src/engine/settings-statement'

// The one statement that enters a tenant, pinned byte for byte per variant: a refactor that changes it
// shows up here (and in the isolation suites), not first in production. An intended change updates the
// snapshot and says why in CHANGELOG.
const VARIANTS: Record<string, SettingsVariant> = {
  'tenant (server)': {},
  'tenant (PGlite: no statement timeout)': { statementTimeout: false },
  'organization administration': { enter: 'organization' },
  'tenant read on a replica (gate)': { replicaGate: true },
}
// API key verification's re-entry into the key's tenant (no role, path or timeout): pinned too.
const TENANT_ONLY: SettingsVariant = { tenantOnly: true }

const SETTINGS: UnitSettings = {
  role: 'r',
  organizationId: 'o',
  actorId: 'a',
  apiKeyId: 'k',
  requestId: 'q',
  ip: 'i',
  proof: 'p',
}

describe('the settings statement', () => {
  it.each(Object.entries(VARIANTS))('%s', (_name, variant) => {
    expect(settingsStatementText(variant)).toMatchSnapshot()
  })

  it('API key re-entry (tenantOnly)', () => {
    expect(settingsStatementText(TENANT_ONLY)).toMatchSnapshot()
  })

  // Migration 0016: on Citus only SET LOCAL reaches the shards, and the enter function is what runs it. The
  // role and the search path are the coordinator's business and stay set_config().
  it('no variant sets the tenant, its proof, the audit context or the timeout with set_config', () => {
    for (const variant of [...Object.values(VARIANTS), TENANT_ONLY]) {
      const text = settingsStatementText(variant)
      expect(text).not.toMatch(/set_config\('(app\.|statement_timeout)/)
      expect([...text.matchAll(/set_config\('([^']+)'/g)].map((m) => m[1])).toEqual(
        variant.tenantOnly ? [] : ['role', 'search_path'],
      )
    }
  })

  it('sends exactly the parameters each variant numbers', () => {
    const gate = { waitFor: '0/0', waitMs: 10 }
    for (const variant of Object.values(VARIANTS)) {
      const text = settingsStatementText(variant)
      const highest = Math.max(...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))
      const params = settingsParams(
        SETTINGS,
        variant.statementTimeout === false ? undefined : 5000,
        variant.replicaGate ? gate : undefined,
      )
      expect(params).toHaveLength(highest)
      expect(params.slice(0, 7)).toEqual(['r', 'o', 'p', 'a', 'k', 'q', 'i'])
    }
    expect(() => settingsParams(SETTINGS, undefined, gate)).toThrow(/statement timeout/)
  })

  it('every variant pins the search path, enters through the proof-checking function and sets the role', () => {
    for (const variant of Object.values(VARIANTS)) {
      const text = settingsStatementText(variant)
      expect(text).toMatch(/search_path/)
      expect(text).toMatch(/callsheet_enter_(tenant|organization)\(/)
      expect(text).toMatch(/'role'/)
    }
  })
})
