import { AUDIT_ACTIONS, AUDITED_ENTITY_TYPES } from '../schema/audit-logs'
import type { TenantContext } from './tenant-context'

/**
 * The entities whose writes hooks observe, named as their audit rows name them (`audit_logs.entity_type`,
 * the table name): one word per entity across hooks, audit rows and errors.
 */
export const ENTITY_NAMES = AUDITED_ENTITY_TYPES

/** One of the library's entities (see {@link ENTITY_NAMES}). */
export type LibraryEntityName = (typeof ENTITY_NAMES)[number]

/**
 * An entity whose writes hooks observe: one of the library's ({@link ENTITY_NAMES}) or the table name of an
 * app's `tenantTable` written through `tenant.table(t)`.
 */
export type EntityName = LibraryEntityName | (string & {})

/** What a write does, named as its audit row names it (`audit_logs.action`). */
export const WRITE_OPERATIONS = AUDIT_ACTIONS

/** What a write does (see {@link WRITE_OPERATIONS}). */
export type WriteOperation = (typeof WRITE_OPERATIONS)[number]

/** Read-only facts about the unit of work a hook runs in. */
export interface HookContext {
  /** Unique per write call: correlates a `beforeWrite` with its `afterWrite`. */
  readonly operationId: string
  readonly organizationId: string
  readonly context: Readonly<TenantContext>
  readonly entity: EntityName
  readonly operation: WriteOperation
}

/** Passed to `beforeWrite`: the validated values about to be written (for insert and update). */
export interface BeforeWriteContext extends HookContext {
  /** Row ids for update / soft_delete / restore / purge; empty for insert. */
  readonly ids: readonly string[]
  readonly values: readonly Readonly<Record<string, unknown>>[]
}
/** Passed to `afterWrite`, inside the transaction: what was written. */
export interface AfterWriteContext extends HookContext {
  readonly rows: readonly Readonly<Record<string, unknown>>[]
}

/** One committed change, as `afterCommit` receives it. */
export interface ChangeEvent {
  readonly operationId: string
  readonly entity: EntityName
  readonly operation: WriteOperation
  readonly ids: readonly string[]
}

/**
 * A write hook: a `name` and optional lifecycle methods.
 *
 * - `beforeWrite` runs inside the transaction before the statement; it may throw to reject the write
 *   (nothing is written) or return values to merge into every row (enrich; the merged rows are
 *   validated again).
 * - `afterWrite` runs inside the transaction after the statement; a throw rolls the whole unit back.
 * - `afterCommit` runs once after the transaction committed, with all of its change events; a throw is
 *   passed to `onHookError` and never undoes the commit.
 *
 * Hooks run in array order; a `beforeWrite` whose write is then refused by the database gets no
 * `afterWrite` — correlate by `operationId`, never by pairing calls.
 *
 * @example
 * ```ts
 * const stamp: DatabaseHook = { name: 'stamp', beforeWrite: () => ({ notes: 'imported' }) }
 * ```
 */
export interface DatabaseHook {
  readonly name: string
  beforeWrite?(ctx: BeforeWriteContext): void | Record<string, unknown> | Promise<void | Record<string, unknown>>
  afterWrite?(ctx: AfterWriteContext): void | Promise<void>
  afterCommit?(events: readonly ChangeEvent[], ctx: { organizationId: string }): void | Promise<void>
}
