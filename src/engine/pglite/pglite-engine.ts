import type { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzlePglite, PgliteDatabase, PgliteSession } from 'drizzle-orm/pglite'
import { DatabaseClosedError, InvalidStateError, toLibraryError } from '../../errors'
import { drizzleSetup, schema, type Schema } from '../drizzle-setup'
import type { Db, Engine } from '../engine'
import type { EngineConfig } from '../engine-config'
import { observedPglite } from '../query-observation'
import { refusedWhen } from '../refused-when'
import { settingsParams, settingsStatementText } from '../settings-statement'
import { installKeyStatements, pgliteSecret, TenantProofs } from '../tenant-proof'
import { closeUnit, openUnit, refuseInsideUnit, runInUnit } from '../unit-scope'

// PGlite has no statement timeout (no signals in WebAssembly): the setting is left alone (no $8).
const SETTINGS_SQL = settingsStatementText({ statementTimeout: false })
const ORGANIZATION_SETTINGS_SQL = settingsStatementText({ enter: 'organization', statementTimeout: false })

/** The engine of an in-process PGlite instance (one session; the caller owns the instance). */
export function createPgliteEngine(pg: PGlite, config: EngineConfig, scope: object): Engine {
  // PGlite is one session: a unit inside any unit on the same instance (another database over it too)
  // would wait for that unit forever.
  const owners = [scope, pg]
  // Closed by this engine's close(), or the PGlite closed by its owner: either way a typed refusal.
  let closed = false
  const refuseClosed = (): Error | undefined =>
    closed || pg.closed ? new DatabaseClosedError('a query on the PGlite database') : undefined
  const { dialect, relational, logger } = drizzleSetup(config)
  const db = drizzlePglite(refusedWhen(pg, refuseClosed), { schema, ...(logger ? { logger } : {}) }) as unknown as Db
  // PGlite's login is a superuser: the database installs its own key (a random secret when none is
  // configured), once, before its first unit. A failure (not migrated yet) is not kept: the next unit
  // tries again, and meanwhile units fail on their own.
  const secret = pgliteSecret(pg, config.secret)
  let installed: Promise<void> | undefined
  let keyReady = false
  const install = async () => {
    for (const statement of installKeyStatements(secret)) await pg.query(statement.text, statement.params)
    keyReady = true
  }
  const ensureKey = () => {
    if (!installed) {
      const attempt = install()
      installed = attempt
      attempt.catch(() => {
        if (installed === attempt) installed = undefined
      })
    }
    return installed.catch(() => undefined)
  }
  return {
    kind: 'pglite',
    scope,
    db,
    refuseInsideUnit: () => void refuseInsideUnit(owners),
    proofs: new TenantProofs(secret),
    stats: () => ({ inUse: 0, waiting: 0 }),
    probe() {
      return Promise.reject(new Error('probe() is for PostgreSQL servers'))
    },
    async unit(settings, { readOnly, appCode, organizationAdmin }, fn) {
      const refused = refuseClosed()
      if (refused) throw refused
      const mark = openUnit(owners)
      try {
        if (!keyReady) await ensureKey()
        // PGlite is one session: its transaction() serialises units. The setup statements go straight
        // to PGlite so that the query log shows only the unit's own queries, as on the server.
        return await pg.transaction(async (tx) => {
          if (readOnly) await tx.query('set transaction read only')
          await tx.query(
            organizationAdmin ? ORGANIZATION_SETTINGS_SQL : SETTINGS_SQL,
            settingsParams(settings, undefined),
          )
          let ended = false
          const own = refusedWhen(tx, () =>
            ended
              ? new InvalidStateError('a query was issued after its unit of work ended (a missing await?): not sent')
              : refuseClosed(),
          )
          const session = new PgliteSession(
            config.onQuery ? observedPglite(own, config.onQuery) : own,
            dialect,
            relational,
            logger ? { logger } : {},
          )
          const txDb = new PgliteDatabase<Schema>(dialect, session, relational) as unknown as Db
          try {
            return await (appCode ? runInUnit(mark, fn, txDb) : fn(txDb))
          } finally {
            ended = true
            closeUnit(mark)
          }
        })
      } catch (error) {
        throw toLibraryError(error)
      } finally {
        closeUnit(mark)
      }
    },
    // The caller owns the PGlite instance it passed in: it stays open, this engine refuses from now on.
    close() {
      closed = true
      return Promise.resolve()
    },
  }
}
