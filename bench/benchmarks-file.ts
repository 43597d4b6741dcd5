/** BENCHMARKS.md: one marked section per suite, replaced when that suite reruns, the others kept. */
import { readFile, writeFile } from 'node:fs/promises'

const PREAMBLE = `# Benchmarks

Measured by \`npm run bench\` (\`bench/run.ts\`; select suites with \`npm run bench -- <suite> …\`, smoke-test with
\`npm run bench -- --quick\`). Each suite's section below is rewritten when that suite runs again; the others are kept,
so sections can come from different runs — each one records its own date, command, machine and server.

Cases run in interleaved rounds (each round runs every case once, in a rotated order, after warm-up); figures are
medians with their spread. The machines these run on are shared and noisy: trust the ratios within one section more
than absolute times, and compare absolute times only between runs on the same machine.
`

const begin = (suite: string): string => `<!-- bench:${suite}:begin -->`
const end = (suite: string): string => `<!-- bench:${suite}:end -->`

/**
 * Writes `section` (markdown, without markers) as the section of `suite` in the file at `path`,
 * creating the file with its preamble if needed.
 *
 * @throws Error when the file has a begin marker for `suite` without its end marker.
 */
export async function updateBenchmarksFile(path: string, suite: string, section: string): Promise<void> {
  let current: string
  try {
    current = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    current = PREAMBLE
  }
  const block = `${begin(suite)}\n${section.trim()}\n${end(suite)}`
  const from = current.indexOf(begin(suite))
  let next: string
  if (from === -1) {
    next = `${current.trimEnd()}\n\n${block}\n`
  } else {
    const to = current.indexOf(end(suite), from)
    if (to === -1) throw new Error(`${path}: "${begin(suite)}" has no matching "${end(suite)}"; fix the file by hand`)
    next = `${current.slice(0, from)}${block}${current.slice(to + end(suite).length)}`
  }
  await writeFile(path, next)
}
