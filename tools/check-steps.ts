/** The timed steps of a `tools/*.check.ts` script: `lap` after each step, `check` for what it asserts, `report` at the end. */
export function checkSteps(): {
  lap(label: string): void
  check(condition: boolean, message: string): asserts condition
  /** Prints each step's time and the total, then OK or FAIL, and sets the exit code. */
  report(failed: boolean): void
} {
  const t0 = performance.now()
  const timings: [string, number][] = []
  let mark = t0
  return {
    lap(label) {
      const now = performance.now()
      timings.push([label, now - mark])
      mark = now
    },
    check(condition, message) {
      if (!condition) throw new Error(message)
    },
    report(failed) {
      const width = Math.max(34, ...timings.map(([label]) => label.length + 2))
      for (const [label, ms] of timings) console.log(`  ${label.padEnd(width)} ${ms.toFixed(0).padStart(6)} ms`)
      console.log(`  ${'total'.padEnd(width)} ${(performance.now() - t0).toFixed(0).padStart(6)} ms`)
      console.log(failed ? 'FAIL' : 'OK')
      process.exitCode = failed ? 1 : 0
    },
  }
}
