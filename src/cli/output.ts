/** Where the CLI writes; tests pass collectors, the bin passes process.stdout/stderr. */
export interface CliIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** The environment (`DATABASE_ADMIN_URL`, `CALLSHEET_RUNTIME_PASSWORD`). @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/** Rows of cells, each column padded to its widest cell; the last column is not padded. */
export function formatTable(rows: readonly (readonly string[])[], indent = ''): string {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)))
  return rows
    .map(
      (row) =>
        indent +
        row
          .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length)))
          .join('  ')
          .trimEnd(),
    )
    .join('\n')
}
