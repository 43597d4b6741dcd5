import { execFileSync } from 'node:child_process'

/** The library's backends of this database that sit idle inside a transaction. */
export const IDLE_IN_TRANSACTION = `
  select pid from pg_stat_activity
  where datname = current_database() and application_name = 'callsheet-db' and state like 'idle in transaction%'`

/**
 * The same, synchronously from another process: `onProgress` is a synchronous callback, and while it runs
 * the library's connection sits idle in transaction between two chunks (as in batch-insert.test.ts).
 */
export function terminateIdleInTransactionSync(url: string): number {
  const script = `
    import postgres from 'postgres'
    const sql = postgres(process.env.KILL_URL, { max: 1, onnotice: () => {} })
    const rows = await sql.unsafe(${JSON.stringify(`select pg_terminate_backend(pid, 5000) as killed from (${IDLE_IN_TRANSACTION}) t`)})
    await sql.end({ timeout: 5 })
    process.stdout.write(String(rows.filter((r) => r.killed).length))
  `
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: process.cwd(),
    env: { ...process.env, KILL_URL: url },
    encoding: 'utf8',
    timeout: 20_000,
  })
  return Number(out.trim())
}
