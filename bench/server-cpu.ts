/**
 * CPU time of PostgreSQL backends, read from /proc: usable when the server runs on this machine (the
 * local-binaries server of `bench/run.ts`). Suites tag each pool with its own `application_name` and
 * read the CPU its backends used before and after a run.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type postgres from 'postgres'

/** Microseconds per clock tick of /proc/…/stat (USER_HZ, nearly always 100). */
const TICK_MICROS = ((): number => {
  try {
    return 1_000_000 / (Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100)
  } catch {
    return 10_000
  }
})()

/** CPU time of the server backends of one pool (the server runs on this machine). */
export class BackendCpu {
  /** @param sql a connection to the database the pool connects to */
  constructor(private readonly sql: postgres.Sql) {}

  /**
   * Summed user + system CPU (µs, clock-tick resolution) of the backends whose application_name is
   * `applicationName`; `undefined` when one of them cannot be read.
   */
  async ticks(applicationName: string): Promise<number | undefined> {
    const rows = await this.sql<{ pid: number }[]>`
      select pid from pg_stat_activity where application_name = ${applicationName} and datname = current_database()`
    let total = 0
    for (const { pid } of rows) {
      let stat: string
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      } catch {
        return undefined
      }
      // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      total += Number(fields[11]) + Number(fields[12])
    }
    return total * TICK_MICROS
  }
}
