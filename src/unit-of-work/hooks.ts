import type { TenantContext } from './tenant-context'

/** The repositories whose writes hooks observe. */
export type EntityName = 'users' | 'departments' | 'productions' | 'contacts' | 'uploads' | 'apiKeys'

/** What a write does. */
export type WriteOperation = 'create' | 'update' | 'softDelete' | 'restore' | 'purge'

/** Read-only facts about the unit of work a hook runs in. */
export interface HookContext {
  /** Unique per write call: correlates a `beforeWrite` with its `afterWrite`. */
  readonly operationId: string
  readonly organizationId: string
  readonly context: Readonly<TenantContext>
  readonly entity: EntityName
  readonly operation: WriteOperation
}

/** Passed to `beforeWrite`: the validated values about to be written (for create and update). */
export interface BeforeWriteContext extends HookContext {
  /** Row ids for update / softDelete / restore / purge; empty for create. */
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
