import type { Engine } from './engine'
import type { EngineConfig, ResolvedTarget } from './engine-config'
import { createPgliteEngine } from './pglite/pglite-engine'
import { createPostgresEngine } from './postgres/postgres-engine'

/** Opens the engine for a resolved target. */
export function createEngine(
  target: ResolvedTarget,
  config: EngineConfig,
  overrides: {
    readonly acquireTimeoutMs?: number
    readonly name?: string
    readonly scope?: object
    /** Refuse a privileged login before the first unit (see `dangerouslyAllowPrivilegedLogin`). @default true */
    readonly checkLogin?: boolean
    readonly max?: number
    /** Units wait (within the acquire timeout) for a server that is down or restarting. @default true */
    readonly waitForServer?: boolean
  } = {},
): Engine {
  const scope = overrides.scope ?? {}
  return target.kind === 'pglite'
    ? createPgliteEngine(target.pglite, config, scope)
    : createPostgresEngine(target, config, {
        acquireTimeoutMs: overrides.acquireTimeoutMs ?? config.pool.acquireTimeoutMs,
        targetName: overrides.name ?? 'primary',
        scope,
        checkLogin: (overrides.checkLogin ?? true) && !config.dangerouslyAllowPrivilegedLogin,
        max: overrides.max ?? config.pool.max,
        waitForServer: overrides.waitForServer ?? true,
      })
}
