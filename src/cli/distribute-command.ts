import { distribute, type DistributionReport } from '../distribution/distribute'
import { withConnection } from './connection'
import { formatTable } from './output'

/** `callsheet-db distribute`: runs {@link distribute} and prints its report; exit code 0 (a failure throws). */
export async function distributeCommand(
  url: string,
  print: (json: unknown, human: () => string) => void,
): Promise<number> {
  await withConnection(url, () => Promise.resolve(undefined)) // a bad URL fails as a connection error
  const report = await distribute(url)
  print({ ok: true, ...report }, () => formatDistribution(report))
  return 0
}

function formatDistribution(report: DistributionReport): string {
  const lines = formatTable(report.steps.map((s) => [s.status, s.step, s.detail]))
  const summary = report.changed ? 'Distributed.' : 'Nothing to do: already distributed.'
  const manual =
    report.manual.length === 0 ? '' : `\n\nStill to do by hand:\n${report.manual.map((m) => `  ${m}`).join('\n')}`
  return `${lines}\n\n${summary}${manual}`
}
