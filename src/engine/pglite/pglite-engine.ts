import { types, type PGlite, type Transaction } from '@electric-sql/pglite'
import { drizzle as drizzlePglite, PgliteDatabase, PgliteSession } from 'drizzle-orm/pglite'
import { DatabaseClosedError, InvalidStateError, toLibraryError } from '../../errors'
import { drizzleSetup, schema, type Schema } from '../drizzle-setup'
import type { Db, Engine } from '../engine'
import type { EngineConfig } from '../engine-config'
import type { PreparedRead, UnitStatements } from '../prepared-read'
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
    async unit(settings, { readOnly, appCode, organizationAdmin }, work) {
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
          const queries = config.onQuery ? observedPglite(own, config.onQuery) : own
          const statements: UnitStatements = { read: (read) => readPrepared(queries, read, logger) }
          try {
            if (typeof work !== 'function') return await statements.read(work)
            const session = new PgliteSession(queries, dialect, relational, logger ? { logger } : {})
            const txDb = new PgliteDatabase<Schema>(dialect, session, relational) as unknown as Db
            return await (appCode ? runInUnit(mark, (d: Db) => work(d, statements), txDb) : work(txDb, statements))
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

/**
 * The parsers drizzle-orm 0.45's PGlite session uses in array mode (pglite/session.js): dates, timestamps
 * and intervals stay text for the columns' own decoders, so a prepared read maps rows exactly as Drizzle.
 */
const DRIZZLE_PARSERS: Record<number, (value: string) => unknown> = {
  [types.TIMESTAMP]: (value) => value,
  [types.TIMESTAMPTZ]: (value) => value,
  [types.INTERVAL]: (value) => value,
  [types.DATE]: (value) => value,
  1231: (value) => value, // numeric[]
  1115: (value) => value, // timestamp[]
  1185: (value) => value, // timestamptz[]
  1187: (value) => value, // interval[]
  1182: (value) => value, // date[]
}

async function readPrepared<T>(
  tx: Pick<Transaction, 'query'>,
  read: PreparedRead<T>,
  logger: { logQuery(query: string, params: unknown[]): void } | undefined,
): Promise<T> {
  logger?.logQuery(read.text, read.params as unknown[])
  const result = await tx.query<unknown[]>(read.text, read.params as unknown[], {
    rowMode: 'array',
    parsers: DRIZZLE_PARSERS,
  })
  return read.map(result.rows)
}
