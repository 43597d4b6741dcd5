/**
 * The engine layer's contract: "run one unit of work on one server". {@link Engine} is what routing/ and
 * the layers above see; `createEngine` (create-engine.ts) picks the driver, so that the drivers import
 * this contract without a cycle. The drivers live in postgres/ (postgres.js) and
 * pglite/ (PGlite); what both share is next to this file: the one settings statement
 * (settings-statement.ts), the replica gate (replica-gate.ts), query observation (query-observation.ts),
 * nested-unit detection (unit-scope.ts), tenant proofs and the login check. Driver workarounds are in
 * workarounds/, each saying when it can be deleted.
 */
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import type { Schema } from './drizzle-setup'
import type { UnitWork } from './prepared-read'
import type { ReplicaGate } from './replica-gate'
import type { UnitSettings } from './settings-statement'
import type { TenantProofs } from './tenant-proof'

export type { Schema } from './drizzle-setup'
export type { UnitSettings } from './settings-statement'
export type { PreparedRead, UnitStatements, UnitWork } from './prepared-read'

/** A Drizzle database or transaction over the library's schema, on either engine. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>

/** How one unit of work runs. */
export interface UnitOptions {
  readonly readOnly: boolean
  /**
   * `fn` runs the app's code (a `transaction(fn)` or `read(fn)` callback, write hooks): its async context
   * is marked, so that a unit it starts on the same database fails at once instead of waiting for a
   * second connection (forever, on PGlite). Units that run only the library's code are not marked
   * (marking costs Node CPU on every promise while a marked unit is open); they are still checked.
   */
  readonly appCode?: boolean
  /**
   * The organization's own administration (`db.organizations`): its proof is checked, but it need not
   * exist yet or be live. Primary only.
   */
  readonly organizationAdmin?: boolean
  /**
   * A write on a primary that has replicas: receives the WAL position read right after COMMIT, or
   * `undefined` when the commit succeeded but the position could not be read.
   */
  readonly onCommitted?: (lsn: string | undefined) => void
  /** A read on a replica: the read-your-writes gate and where the replica's replay stands. */
  readonly replica?: ReplicaGate
}

/** A database engine: where units of work run. */
export interface Engine {
  readonly kind: 'postgres' | 'pglite'
  /**
   * The database this engine belongs to (shared by a database's primary and replicas): a unit started
   * while a unit of the same database is running in the same async context is refused.
   */
  readonly scope: object
  /** Drizzle over the connecting (owner) role, outside any tenant context. */
  readonly db: Db
  /** The proofs of this database's tenants (PGlite: for the secret this engine installs). */
  readonly proofs: TenantProofs
  /**
   * Throws InvalidStateError when called from inside a unit of this engine's database: for statements
   * that run outside units ({@link db}), which would wait for the connection that unit holds.
   */
  refuseInsideUnit(): void
  /**
   * Runs `work` in one transaction whose first statement applies `settings`: a callback (given the unit's
   * Drizzle handle and a runner of prepared reads), or one prepared read (a read-only unit sends it with
   * its COMMIT). Driver errors are mapped to library errors; a throw rolls everything back.
   * @throws InvalidStateError, before anything is sent, when called from inside a unit of the same scope.
   */
  unit<T>(settings: UnitSettings, options: UnitOptions, work: UnitWork<T, Db>): Promise<T>
  /** One statement as the connecting role, outside any unit (health and lag probes). postgres only. */
  probe<T extends Record<string, unknown>>(text: string): Promise<T[]>
  close(): Promise<void>
  /** Pool statistics (postgres only). */
  stats(): { readonly inUse: number; readonly waiting: number }
}
