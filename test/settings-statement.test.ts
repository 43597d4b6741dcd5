import { describe, expect, it } from 'vitest'
import { settingsStatementText, type SettingsVariant } from '../src/engine/settings-statement'

// The one statement that enters a tenant, pinned byte for byte per variant: a refactor that changes it
// shows up here (and in the isolation suites), not first in production. An intended change updates the
// snapshot and says why in CHANGELOG.
const VARIANTS: Record<string, SettingsVariant> = {
  'tenant (server)': {},
  'tenant (PGlite: no statement timeout)': { statementTimeout: false },
  'organization administration': { enter: 'organization' },
  'tenant read on a replica (gate)': { replicaGate: true },
}

describe('the settings statement', () => {
  it.each(Object.entries(VARIANTS))('%s', (_name, variant) => {
    expect(settingsStatementText(variant)).toMatchSnapshot()
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
