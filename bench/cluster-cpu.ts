/**
 * CPU time of whole PostgreSQL servers on this machine, read from /proc: each postmaster's own time, the
 * time of its children that have exited (cutime/cstime: the postmaster reaps every backend) and the time
 * of its live children. Unlike {@link BackendCpu} (server-cpu.ts), which follows one pool's backends by
 * `application_name`, this counts every process of the servers: the backends Citus opens on its workers
 * (named by Citus, not by us), connections that closed, and background processes (checkpointer, WAL
 * writer, autovacuum, the Citus maintenance daemon), which are noise common to both sides of a comparison.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import postgres from 'postgres'

const TICK_MICROS = ((): number => {
  try {
    return 1_000_000 / (Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100)
  } catch {
    return 10_000
  }
})()

/** Fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, [11] utime … [14] cstime. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** The CPU of one or more PostgreSQL servers (e.g. a Citus coordinator and its workers) running on this machine. */
export class ServersCpu {
  private constructor(private readonly postmasters: readonly number[]) {}

  /**
   * Finds the postmaster of each server (the parent of a backend it opens as superuser at each URL);
   * `undefined` when a server is not on this machine (its backend's /proc entry is not readable).
   */
  static async open(superuserUrls: readonly string[]): Promise<ServersCpu | undefined> {
    const postmasters: number[] = []
    for (const url of superuserUrls) {
      const sql = postgres(url, { max: 1, onnotice: () => {} })
      try {
        const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`
        const parent = row === undefined ? undefined : statFields(row.pid)?.[1]
        if (parent === undefined) return undefined
        postmasters.push(Number(parent))
      } finally {
        await sql.end({ timeout: 5 })
      }
    }
    return new ServersCpu(postmasters)
  }

  /** User + system CPU (µs, clock-tick resolution) the servers have used since they started. */
  micros(): number {
    const wanted = new Set(this.postmasters)
    let ticks = 0
    for (const pid of this.postmasters) {
      const fields = statFields(pid)
      if (fields === undefined) throw new Error(`postmaster ${pid} is gone`)
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
    }
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      const fields = statFields(Number(entry))
      if (fields !== undefined && wanted.has(Number(fields[1]))) ticks += Number(fields[11]) + Number(fields[12])
    }
    return ticks * TICK_MICROS
  }
}
