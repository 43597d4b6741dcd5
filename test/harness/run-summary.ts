// Shared between the global setup and the reporter, which both run in vitest's main process.

/** What one kind of server of the run was: what ran, or why it did not. */
export interface ServerSummary {
  description?: string
  skippedBecause?: string
}

/** The kinds of server a run may have: the PostgreSQL server, the Citus cluster, the pg_auto_failover formations. */
export type SummaryKind = 'server' | 'citus' | 'auto-failover'

const keyOf = (kind: SummaryKind): symbol => Symbol.for(`@callsheet/db/test-run-summary/${kind}`)
type Holder = Record<symbol, ServerSummary | undefined>

export function setRunSummary(kind: SummaryKind, summary: ServerSummary): void {
  ;(globalThis as unknown as Holder)[keyOf(kind)] = summary
}

export function getRunSummary(kind: SummaryKind): ServerSummary | undefined {
  return (globalThis as unknown as Holder)[keyOf(kind)]
}
