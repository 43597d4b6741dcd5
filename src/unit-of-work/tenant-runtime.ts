import { uuidv7 } from 'uuidv7'
import type {
  AfterWriteContext,
  BeforeWriteContext,
  ChangeEvent,
  DatabaseHook,
  EntityName,
  WriteOperation,
} from './hooks'
import type { WriteWatermark, ReadConsistency } from '../routing/consistency'
import type { Db, Engine, PreparedRead, UnitSettings, UnitStatements } from '../engine/engine'
import type { Router } from '../routing/router'
import type { TenantContext } from './tenant-context'
import { InvalidStateError, toLibraryError } from '../errors'
import { tableOfConstraint } from '../schema/table-names'

/** The transaction a tenant client is bound to inside `tenant.transaction(fn)`. */
export interface ActiveUnit {
  readonly db: Db
  /** Runs prepared reads on the unit's connection. */
  readonly statements: UnitStatements
  readonly events: ChangeEvent[]
  /** A `tenant.read(fn)` unit: writes are refused before anything is sent. */
  readonly readOnly?: boolean
}

/**
 * One write, as repositories describe it to the runtime: which entity, which operation, the statement.
 * {@link TenantRuntime.write} runs it between the hooks, so no write can reach the database without them.
 */
export interface WriteSpec<R extends Record<string, unknown> = Record<string, unknown>> {
  readonly entity: EntityName
  readonly operation: WriteOperation
  /** Row ids for update / soft_delete / restore / purge; empty for insert. */
  readonly ids: readonly string[]
  /** The validated values about to be written (what `beforeWrite` sees and may enrich). */
  readonly values: readonly Record<string, unknown>[]
  /** Validates a row again after a `beforeWrite` merged values into it. @default the row unchanged */
  readonly revalidate?: (values: Record<string, unknown>) => Record<string, unknown>
  /** The statement, with the values after `beforeWrite`; returns the rows written. */
  readonly statement: (db: Db, values: readonly Record<string, unknown>[]) => Promise<R[]>
  /**
   * The error to throw, inside the unit (so it rolls back and `afterCommit` never sees the change), when
   * the statement wrote no row (e.g. `NotFoundError`).
   */
  readonly noRows?: () => Error
}

/** What a unit of work reads of the resolved configuration: the role it runs as and the hooks. */
export interface UnitOfWorkConfig {
  readonly appRole: string
  readonly hooks: readonly DatabaseHook[]
  readonly onHookError: (error: unknown, hook: DatabaseHook) => void
}

/**
 * Everything a tenant client's repositories need: where units of work run, as whom, and the hooks.
 * Immutable; `bind` and `withContext` return copies.
 */
export class TenantRuntime {
  constructor(
    readonly router: Router,
    readonly config: UnitOfWorkConfig,
    readonly organizationId: string,
    readonly context: TenantContext,
    /** Shared by this client's copies and transactions: the WAL position its reads must see. */
    readonly watermark: WriteWatermark,
    /** Where this client's reads may go (see {@link ReadConsistency}). */
    readonly consistency: ReadConsistency,
    private readonly active: ActiveUnit | undefined = undefined,
  ) {}

  /** Whether this runtime is bound to a unit of work (inside `tenant.transaction(fn)` or `tenant.read(fn)`). */
  get inUnit(): boolean {
    return this.active !== undefined
  }

  /** The unit this runtime is bound to, if any (its drizzle handle and whether it is read-only). */
  get unit(): Pick<ActiveUnit, 'db' | 'readOnly'> | undefined {
    return this.active
  }

  /** The primary's engine. */
  get engine(): Engine {
    return this.router.primary
  }

  settings(): UnitSettings {
    const actorId = this.context.actorId ?? ''
    const apiKeyId = this.context.apiKeyId ?? ''
    return {
      role: this.config.appRole,
      organizationId: this.organizationId,
      actorId,
      apiKeyId,
      requestId: this.context.requestId ?? '',
      ip: this.context.ip ?? '',
      proof: this.router.primary.proofs.proof(this.organizationId, actorId, apiKeyId),
    }
  }

  withContext(context: TenantContext): TenantRuntime {
    return this.copy({ context })
  }

  withConsistency(consistency: ReadConsistency): TenantRuntime {
    return this.copy({ consistency })
  }

  /**
   * Runs read-only work: inside the current unit, or in its own READ ONLY unit — on a replica that
   * has replayed this client's writes when there is one, else on the primary.
   */
  read<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    if (this.active) return guard(fn(this.active.db))
    return this.router.read(this.settings(), this.watermark, this.consistency, fn)
  }

  /**
   * One prepared read (a statement built once, see engine/prepared-read.ts): inside the current unit, or as
   * its own READ ONLY unit routed as {@link read}, which sends it with its COMMIT.
   */
  readPrepared<T>(read: PreparedRead<T>): Promise<T> {
    if (this.active) return guard(this.active.statements.read(read))
    return this.router.read(this.settings(), this.watermark, this.consistency, read)
  }

  /** Runs `fn` with a runtime bound to one READ ONLY unit, routed as {@link read}. */
  readUnit<T>(fn: (runtime: TenantRuntime) => Promise<T>): Promise<T> {
    if (this.active) return fn(this)
    return this.router.read(
      this.settings(),
      this.watermark,
      this.consistency,
      (db, statements) => fn(this.bind({ db, statements, events: [], readOnly: true })),
      true,
    )
  }

  /**
   * Runs one write between the hooks: `beforeWrite` (may reject, or return values merged into every
   * row), the statement, `afterWrite`, and the change event for `afterCommit` — inside the current
   * unit, or in its own unit followed by the afterCommit hooks. The only way a repository writes.
   */
  write<R extends Record<string, unknown>>(spec: WriteSpec<R>): Promise<R[]> {
    return this.writeUnit((bound) => bound.hooked(spec))
  }

  /**
   * Runs `fn` with a runtime bound to one write unit (the current one, or a new one followed by the
   * afterCommit hooks), for writes of several statements: `fn` writes through `bound.write` and reads
   * through `bound.read`.
   */
  async writeUnit<T>(fn: (bound: TenantRuntime) => Promise<T>): Promise<T> {
    if (this.active) {
      if (this.active.readOnly) return Promise.reject(readOnlyUnit())
      return guard(fn(this))
    }
    const events: ChangeEvent[] = []
    const result = await this.router.write(
      this.settings(),
      this.watermark,
      (db, statements) => fn(this.bind({ db, statements, events })),
      hasWriteHooks(this.config),
    )
    await this.afterCommit(events)
    return result
  }

  /** Runs `fn` with a runtime bound to one transaction; afterCommit hooks see all of its events. */
  async transaction<T>(fn: (runtime: TenantRuntime) => Promise<T>): Promise<T> {
    if (this.active) {
      if (this.active.readOnly) throw readOnlyUnit()
      return fn(this)
    }
    const events: ChangeEvent[] = []
    const result = await this.router.write(
      this.settings(),
      this.watermark,
      (db, statements) => fn(this.bind({ db, statements, events })),
      true,
    )
    await this.afterCommit(events)
    return result
  }

  private bind(unit: ActiveUnit): TenantRuntime {
    return this.copy({ active: unit })
  }

  /** This runtime with some fields changed; the write watermark (behind the client's consistency token) is shared. */
  private copy(
    changes: Partial<Pick<TenantRuntime, 'context' | 'consistency'>> & { readonly active?: ActiveUnit },
  ): TenantRuntime {
    return new TenantRuntime(
      this.router,
      this.config,
      this.organizationId,
      changes.context ?? this.context,
      this.watermark,
      changes.consistency ?? this.consistency,
      changes.active ?? this.active,
    )
  }

  /** {@link write} inside the bound unit. */
  private async hooked<R extends Record<string, unknown>>(spec: WriteSpec<R>): Promise<R[]> {
    const unit = this.active as ActiveUnit
    const hooks = this.config.hooks
    const operationId = uuidv7()
    const base = {
      operationId,
      organizationId: this.organizationId,
      context: this.context,
      entity: spec.entity,
      operation: spec.operation,
    }
    const revalidate = spec.revalidate ?? ((v: Record<string, unknown>) => v)
    let values = spec.values
    for (const hook of hooks) {
      if (!hook.beforeWrite) continue
      const ctx: BeforeWriteContext = { ...base, ids: spec.ids, values }
      const extra = await hook.beforeWrite(ctx)
      if (extra && typeof extra === 'object' && values.length > 0)
        values = values.map((v) => revalidate({ ...v, ...extra }))
    }
    const rows = await spec.statement(unit.db, values)
    for (const hook of hooks) {
      if (!hook.afterWrite) continue
      const ctx: AfterWriteContext = { ...base, rows }
      await hook.afterWrite(ctx)
    }
    const ids = rows.map((r) => String(r.id))
    unit.events.push({
      operationId,
      entity: spec.entity,
      operation: spec.operation,
      ids: ids.length > 0 ? ids : spec.ids,
    })
    if (rows.length === 0 && spec.noRows) throw spec.noRows()
    return rows
  }

  private async afterCommit(events: readonly ChangeEvent[]): Promise<void> {
    if (events.length === 0) return
    for (const hook of this.config.hooks) {
      if (!hook.afterCommit) continue
      try {
        await hook.afterCommit(events, { organizationId: this.organizationId })
      } catch (error) {
        try {
          this.config.onHookError(error, hook)
        } catch {
          // An error handler that throws must not turn a committed write into a failure either.
        }
      }
    }
  }
}

/** Whether a write unit runs the app's code: its beforeWrite/afterWrite hooks (see `UnitOptions.appCode`). */
const hasWriteHooks = (config: UnitOfWorkConfig): boolean =>
  config.hooks.some((hook) => hook.beforeWrite !== undefined || hook.afterWrite !== undefined)

const readOnlyUnit = () =>
  new InvalidStateError('tenant.read(fn) is read-only: write outside it, or use tenant.transaction(fn)')

async function guard<T>(work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (error) {
    throw toLibraryError(error, { tableOfConstraint })
  }
}

/** Creates an id for rows the app inserts (UUIDv7: time-ordered, index-friendly). */
export const newId = (): string => uuidv7()
