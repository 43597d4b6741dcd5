import type { PGlite } from '@electric-sql/pglite'
import type postgres from 'postgres'

/** postgres.js options the library passes through (it sets `max`, `prepare` and timeouts itself). */
export type PostgresOptions = Omit<postgres.Options<Record<string, postgres.PostgresType>>, 'max' | 'prepare'>

/** Receives the library's log events. */
export interface DatabaseLogger {
  debug?(message: string, fields?: Record<string, unknown>): void
  warn?(message: string, fields?: Record<string, unknown>): void
  error?(message: string, fields?: Record<string, unknown>): void
}

/** One query, as `onQuery` sees it. */
export interface QueryEvent {
  readonly sql: string
  readonly params: readonly unknown[]
  /** From the moment the query was handed to the driver to its last row (or its error), in ms. */
  readonly durationMs: number
  /** `'primary'`, or the replica's name (`host:port`). */
  readonly target: string
  /** Rows returned, when it succeeded. */
  readonly rowCount?: number
  /** The driver's error, when it failed. */
  readonly error?: unknown
}

/** A target after resolution. */
export type ResolvedTarget =
  | { readonly kind: 'pglite'; readonly pglite: PGlite }
  | { readonly kind: 'postgres'; readonly url: string | undefined; readonly options: PostgresOptions }

/** What an engine reads of the resolved configuration (filled and checked by `resolveConfig` in client/). */
export interface EngineConfig {
  readonly pool: { readonly max: number; readonly acquireTimeoutMs: number; readonly idleTimeoutSeconds: number }
  readonly statementTimeoutMs: number
  readonly prepare: boolean
  readonly logger: DatabaseLogger
  readonly onQuery: ((event: QueryEvent) => void) | undefined
  readonly dangerouslyAllowPrivilegedLogin: boolean
  /** `secret` or `CALLSHEET_SECRET`; undefined when neither is set. */
  readonly secret: string | undefined
}
