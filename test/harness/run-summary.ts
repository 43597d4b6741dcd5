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
