// Shared between the global setup and the reporter, which both run in vitest's main process.
export interface ServerSummary {
  description?: string
  skippedBecause?: string
}

const KEY = Symbol.for('@callsheet/db/test-run-summary')
type Holder = { [KEY]?: ServerSummary }

export function setServerSummary(summary: ServerSummary): void {
  ;(globalThis as Holder)[KEY] = summary
}

export function getServerSummary(): ServerSummary | undefined {
  return (globalThis as Holder)[KEY]
}

/** The Citus cluster of the run: what ran, or why it did not. */
export interface CitusSummary {
  description?: string
  skippedBecause?: string
}

const CITUS_KEY = Symbol.for('@callsheet/db/test-run-citus-summary')
type CitusHolder = { [CITUS_KEY]?: CitusSummary }

export function setCitusSummary(summary: CitusSummary): void {
  ;(globalThis as CitusHolder)[CITUS_KEY] = summary
}

export function getCitusSummary(): CitusSummary | undefined {
  return (globalThis as CitusHolder)[CITUS_KEY]
}

/** The pg_auto_failover formations of the run: whether the failover suites could start them, or why not. */
export interface AutoFailoverSummary {
  description?: string
  skippedBecause?: string
}

const AUTO_FAILOVER_KEY = Symbol.for('@callsheet/db/test-run-auto-failover-summary')
type AutoFailoverHolder = { [AUTO_FAILOVER_KEY]?: AutoFailoverSummary }

export function setAutoFailoverSummary(summary: AutoFailoverSummary): void {
  ;(globalThis as AutoFailoverHolder)[AUTO_FAILOVER_KEY] = summary
}

export function getAutoFailoverSummary(): AutoFailoverSummary | undefined {
  return (globalThis as AutoFailoverHolder)[AUTO_FAILOVER_KEY]
}
