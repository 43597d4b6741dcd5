import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import postgres from 'postgres'
import { createDatabase, isCallsheetDbError, withRetry, type Database, type TenantClient } from '../src'
import { migrate } from '../src/migrations/migrate'
import { multiHostUrl, startAutoFailover, type AutoFailoverHandle, type FormationNode } from '../tools/auto-failover'
import { createScratchDatabase, runtimeLoginUrl, withDatabase } from '../tools/postgres-server'
import { rawRead } from './support/raw-read'
import { waitFor } from './support/promises'

// Issue 17: what production PostgreSQL does — restarts and automatic failover — under a steady workload
// of several tenants through the public API (createDatabase on the formation's multi-host URL,
// repositories, withRetry with its defaults), on a pg_auto_failover formation of this suite's own (it
// restarts and kills its servers, which no shared server may see). For each fault: no operation fails
// after retry, no waiter is stranded (ACQUIRE_TIMEOUT), every acknowledged write is on the final
// primary exactly once; afterwards no unit runs on a standby and every pooled connection works.
// Latencies are measured and reported next to the outage each fault measured (CALLSHEET_FAILOVER_REPORT
// = a JSON file), never asserted: CI is a busy 2-core machine.

const availability = inject('autoFailover')

const TENANTS = 8
/** Fewer connections than tenants: operations queue for a connection, as a busy service's do. */
const POOL_MAX = 4
/** Pause between one tenant's operations: a steady, bounded load on a 2-core machine. */
const PAUSE_MS = 20
/** A hang detector per operation, not a speed check. */
const OPERATION_BOUND_MS = 120_000
const READ_PROBE = 'select pg_is_in_recovery() as recovery'

interface Operation {
  readonly tenant: number
  readonly kind: 'write' | 'read'
  readonly id: string
  readonly start: number
  end: number
  outcome: 'ok' | 'failed'
  /** the final error's code (a library error) or message */
  error?: string
  /** the code (and SQLSTATE) of each error withRetry retried */
  readonly retried: string[]
}

interface FaultReport {
  readonly fault: string
  /** what the harness measured for the fault: server downtime, switchover or promotion time */
  readonly measured: { readonly what: 'downtime' | 'switchover' | 'promotion' | 'none'; readonly ms: number }
  readonly operations: number
  readonly writesAcknowledged: number
  readonly failedAfterRetry: number
  readonly failures: Record<string, number>
  /** first failed operation's start and last one's end, relative to the fault (null: none failed) */
  readonly failedFromMs: number | null
  readonly failedUntilMs: number | null
  readonly retriedCodes: Record<string, number>
  readonly acquireTimeouts: number
  readonly maxLatencyMs: number
  readonly maxLatencyOverMeasuredMs: number
  /** The slowest operation: when it started (ms after the fault began), how long it took, what it retried. */
  readonly slowest: { kind: string; startMs: number; latencyMs: number; retried: string[] } | null
  readonly lost: number
  readonly duplicated: number
  readonly afterwards: Afterwards
  readonly details: Record<string, unknown>
}

const codeOf = (error: unknown): string =>
  isCallsheetDbError(error)
    ? `${error.code}${error.sqlState === undefined ? '' : `/${error.sqlState}`}`
    : error instanceof Error
      ? `${error.name}: ${error.message.slice(0, 120)}`
      : String(error)

/** One tenant per loop, each writing a contact with an id chosen before the first attempt, then reading it back. */
class Workload {
  readonly operations: Operation[] = []
  readonly acknowledged: { tenant: number; id: string }[] = []
  private running = true
  private readonly loops: Promise<void>[]

  constructor(
    tenants: readonly { client: TenantClient; productionId: string }[],
    private readonly label: string,
  ) {
    this.loops = tenants.map((tenant, index) => this.loop(index, tenant.client, tenant.productionId))
  }

  private async run<T>(
    tenant: number,
    kind: Operation['kind'],
    id: string,
    fn: () => Promise<T>,
  ): Promise<T | undefined> {
    const op: Operation = { tenant, kind, id, start: Date.now(), end: 0, outcome: 'ok', retried: [] }
    this.operations.push(op)
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        withRetry(fn, { onRetry: (error) => op.retried.push(codeOf(error)) }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`hung for ${OPERATION_BOUND_MS} ms`)), OPERATION_BOUND_MS)
        }),
      ])
    } catch (error) {
      op.outcome = 'failed'
      op.error = codeOf(error)
      return undefined
    } finally {
      clearTimeout(timer)
      op.end = Date.now()
    }
  }

  private async loop(index: number, client: TenantClient, productionId: string): Promise<void> {
    let seq = 0
    let lastAcknowledged: string | undefined
    while (this.running) {
      const id = randomUUID()
      seq += 1
      const created = await this.run(index, 'write', id, () =>
        client.contacts.create({ id, productionId, name: `${this.label} ${index}-${seq}` }),
      )
      if (created !== undefined) {
        this.acknowledged.push({ tenant: index, id })
        lastAcknowledged = id
      }
      if (lastAcknowledged !== undefined) {
        const wanted = lastAcknowledged
        const op = this.operations.length
        // One read unit: the contact, and whether the server that served it is a standby.
        const seen = await this.run(index, 'read', wanted, () =>
          client.read(async (r) => ({
            found: await r.contacts.findById(wanted),
            recovery: (await rawRead<{ recovery: boolean }>(r as unknown as TenantClient, READ_PROBE)).recovery,
          })),
        )
        const read = this.operations[op]
        if (read !== undefined && read.outcome === 'ok' && seen !== undefined) {
          // With no replicas configured, every unit belongs on the primary.
          if (seen.recovery) {
            read.outcome = 'failed'
            read.error = 'read unit ran on a standby'
          } else if (seen.found === null) {
            read.outcome = 'failed'
            read.error = 'acknowledged contact not found'
          }
        }
      }
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS))
    }
  }

  /** Whether every tenant has finished `n` operations started at or after `t`. */
  everyTenantFinished(t: number, n: number): boolean {
    const counts = new Map<number, number>()
    for (const op of this.operations) {
      if (op.start >= t && op.end > 0) counts.set(op.tenant, (counts.get(op.tenant) ?? 0) + 1)
    }
    return this.loops.every((_, tenant) => (counts.get(tenant) ?? 0) >= n)
  }

  async stop(): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
  }
}

function tally(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1
  return counts
}

/** After a fault: units that must run on the primary, each reporting its server, and the pool's state. */
interface Afterwards {
  readonly units: number
  readonly failures: Record<string, number>
  /** units whose server was in recovery or read-only */
  readonly onStandby: number
  /** distinct backends that served them (the pool has `POOL_MAX`) */
  readonly connections: number
  readonly pool: { readonly inUse: number; readonly waiting: number; readonly max: number }
}

describe.runIf(availability.ok)('restarts and automatic failover under load [auto-failover]', () => {
  let formation: AutoFailoverHandle
  let databaseName: string
  let runtimeUrl: string
  let startupMs: number
  const organizations: { orgId: string; productionId: string }[] = []
  const reports: FaultReport[] = []

  /** Runs `fn` as the owner on the formation's current primary. */
  const onPrimary = async <T>(fn: (sql: postgres.Sql, primary: FormationNode) => Promise<T>): Promise<T> => {
    const primary = await formation.currentPrimary()
    const sql = postgres(withDatabase(primary.url, databaseName), { max: 1, onnotice: () => {}, connect_timeout: 5 })
    try {
      return await fn(sql, primary)
    } finally {
      await sql.end({ timeout: 5 })
    }
  }

  /** A new Database on the formation (the library's defaults but a pool smaller than the tenant count). */
  const open = (): { db: Database; tenants: { client: TenantClient; productionId: string }[] } => {
    const db = createDatabase({ primary: runtimeUrl, pool: { max: POOL_MAX } })
    const tenants = organizations.map(({ orgId, productionId }, i) => ({
      client: db.tenant(orgId, { requestId: `failover-${i}` }),
      productionId,
    }))
    return { db, tenants }
  }

  beforeAll(async () => {
    const t0 = Date.now()
    formation = await startAutoFailover({ log: (line) => console.log(`[auto-failover] ${line}`) })
    startupMs = Date.now() - t0
    const primary = await formation.currentPrimary()
    // The scratch database, the schema and the runtime login are made on the primary; replication
    // copies all three (the login is a cluster-wide role) to the secondary.
    const scratch = await createScratchDatabase(primary.url, 'cs_failover')
    databaseName = scratch.name
    await migrate(scratch.url)
    const runtime = new URL(await runtimeLoginUrl(scratch.url))
    // As `pg_autoctl show uri --formation default` gives it, as the runtime login.
    runtimeUrl = multiHostUrl(
      formation.nodes.map((node) => node.url),
      {
        user: decodeURIComponent(runtime.username),
        password: decodeURIComponent(runtime.password),
        database: databaseName,
        params: { target_session_attrs: 'read-write' },
      },
    )
    const { db } = open()
    try {
      for (let i = 0; i < TENANTS; i++) {
        const org = await db.organizations.create({
          name: `failover ${i}`,
          slug: `failover-${i}-${Date.now().toString(36)}`,
        })
        const production = await db.tenant(org.id).productions.create({ title: `Failover picture ${i}` })
        organizations.push({ orgId: org.id, productionId: production.id })
      }
    } finally {
      await db.close()
    }
    console.log(`[auto-failover] formation up in ${startupMs} ms; ${formation.description}`)
  })

  afterAll(async () => {
    printReport(reports, startupMs)
    const path = process.env.CALLSHEET_FAILOVER_REPORT
    if (path !== undefined && path !== '') {
      const json = {
        formation: formation?.description,
        startupMs,
        tenants: TENANTS,
        poolMax: POOL_MAX,
        retry: 'withRetry defaults',
        faults: reports,
      }
      await writeFile(path, `${JSON.stringify(json, null, 2)}\n`)
    }
    await formation?.stop()
  })

  /** Units on every connection of the pool (two rounds of twice the pool at once), each reporting its server. */
  const checkAfterwards = async (
    db: Database,
    tenants: readonly { client: TenantClient; productionId: string }[],
  ): Promise<Afterwards> => {
    const seen: { recovery: boolean; ro: string; pid: number }[] = []
    const failures: string[] = []
    for (let round = 0; round < 2; round++) {
      await Promise.all(
        Array.from({ length: POOL_MAX * 2 }, async (_, i) => {
          const tenant = tenants[i % tenants.length]!
          try {
            seen.push(
              await tenant.client.transaction(async (tx) => {
                await tx.contacts.create({ productionId: tenant.productionId, name: `afterwards ${round}-${i}` })
                return rawRead<{ recovery: boolean; ro: string; pid: number }>(
                  tx as unknown as TenantClient,
                  "select pg_is_in_recovery() as recovery, current_setting('transaction_read_only') as ro, " +
                    'pg_backend_pid() as pid from pg_sleep(0.05)',
                )
              }),
            )
          } catch (error) {
            failures.push(codeOf(error))
          }
        }),
      )
    }
    return {
      units: POOL_MAX * 4,
      failures: tally(failures),
      onStandby: seen.filter((row) => row.recovery || row.ro !== 'off').length,
      connections: new Set(seen.map((row) => row.pid)).size,
      pool: db.stats().pool,
    }
  }

  /**
   * On a new Database: runs the workload, lets it settle, applies `fault`, keeps the workload on until
   * every tenant has finished operations started after the fault, then counts the acknowledged writes
   * on the final primary and runs units on every pooled connection (no retry) to see where they land.
   */
  const underLoad = async (
    fault: string,
    apply: () => Promise<{ what: FaultReport['measured']['what']; ms: number; details: Record<string, unknown> }>,
  ): Promise<FaultReport> => {
    const { db, tenants } = open()
    try {
      const workload = new Workload(tenants, `f${reports.length}`)
      let measured: Awaited<ReturnType<typeof apply>>
      let faultAt: number
      try {
        const warm = Date.now()
        await waitFor('the workload running', () => workload.everyTenantFinished(warm, 2))
        faultAt = Date.now()
        measured = await apply()
        const after = Date.now()
        await waitFor('the workload after the fault', () => workload.everyTenantFinished(after, 4), {
          timeoutMs: OPERATION_BOUND_MS * 2,
        })
      } finally {
        await workload.stop()
      }

      const ids = workload.acknowledged.map((write) => write.id)
      const counted = await onPrimary(
        (sql) => sql<{ id: string; n: number }[]>`
          select id::text as id, count(*)::int as n from contacts where id = any(${ids}::uuid[]) group by id`,
      )
      const onFinal = new Map(counted.map((row) => [row.id, row.n]))
      const failed = workload.operations.filter((op) => op.outcome === 'failed')
      const retried = workload.operations.flatMap((op) => op.retried)
      const maxLatencyMs = Math.max(0, ...workload.operations.map((op) => op.end - op.start))
      const report: FaultReport = {
        fault,
        measured: { what: measured.what, ms: measured.ms },
        operations: workload.operations.length,
        writesAcknowledged: ids.length,
        failedAfterRetry: failed.length,
        failures: tally(failed.map((op) => `${op.kind}: ${op.error ?? '?'}`)),
        failedFromMs: failed.length === 0 ? null : Math.min(...failed.map((op) => op.start)) - faultAt,
        failedUntilMs: failed.length === 0 ? null : Math.max(...failed.map((op) => op.end)) - faultAt,
        retriedCodes: tally(retried),
        acquireTimeouts: [...retried, ...failed.map((op) => op.error ?? '')].filter((code) =>
          code.startsWith('ACQUIRE_TIMEOUT'),
        ).length,
        maxLatencyMs,
        maxLatencyOverMeasuredMs: maxLatencyMs - measured.ms,
        slowest: slowestOf(workload.operations, faultAt),
        lost: ids.filter((id) => onFinal.get(id) === undefined).length,
        duplicated: ids.filter((id) => (onFinal.get(id) ?? 0) > 1).length,
        afterwards: await checkAfterwards(db, tenants),
        details: measured.details,
      }
      reports.push(report)
      console.log(`[auto-failover] ${fault}: ${JSON.stringify(report)}`)
      return report
    } finally {
      await db.close()
    }
  }

  const slowestOf = (operations: readonly Operation[], faultAt: number): FaultReport['slowest'] => {
    const op = [...operations].sort((a, b) => b.end - b.start - (a.end - a.start))[0]
    return op === undefined
      ? null
      : { kind: op.kind, startMs: op.start - faultAt, latencyMs: op.end - op.start, retried: op.retried }
  }

  /** What every fault must leave: nothing failed, no stranded waiter, every acknowledged write once, a healthy pool. */
  const expectSurvived = (report: FaultReport): void => {
    const { fault, afterwards } = report
    expect.soft(report.failures, `${fault}: operations failed after withRetry`).toEqual({})
    expect.soft(report.acquireTimeouts, `${fault}: ACQUIRE_TIMEOUT seen (a stranded waiter)`).toBe(0)
    expect.soft(report.lost, `${fault}: acknowledged writes missing on the final primary`).toBe(0)
    expect.soft(report.duplicated, `${fault}: acknowledged writes present more than once`).toBe(0)
    expect.soft(afterwards.failures, `${fault}, afterwards: units failed (no retry)`).toEqual({})
    expect.soft(afterwards.onStandby, `${fault}, afterwards: units ran on a standby`).toBe(0)
    expect.soft(afterwards.connections, `${fault}, afterwards: pooled connections that served units`).toBe(POOL_MAX)
    expect.soft(afterwards.pool, `${fault}, afterwards: pool state`).toEqual({ inUse: 0, waiting: 0, max: POOL_MAX })
    expect(report.writesAcknowledged).toBeGreaterThan(0)
  }

  it('pg_ctl restart -m fast of the primary', async () => {
    const report = await underLoad('restart -m fast', async () => {
      const restart = await formation.restartPrimary('fast')
      return { what: 'downtime', ms: restart.writeDowntimeMs, details: { ...restart } }
    })
    expectSurvived(report)
  })

  it('pg_ctl restart -m immediate of the primary', async () => {
    const report = await underLoad('restart -m immediate', async () => {
      const restart = await formation.restartPrimary('immediate')
      return { what: 'downtime', ms: restart.writeDowntimeMs, details: { ...restart } }
    })
    expectSurvived(report)
  })

  it('every app backend terminated', async () => {
    const report = await underLoad('all app backends terminated', async () => {
      const terminated = await formation.terminateAppBackends(databaseName)
      return { what: 'none', ms: 0, details: { terminated } }
    })
    const terminated = Object.values(report.details.terminated as Record<string, number>)
    expect(terminated.reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0)
    expectSurvived(report)
  })

  it('pg_autoctl perform failover', async () => {
    const report = await underLoad('perform failover', async () => {
      const switchover = await formation.performFailover()
      return { what: 'switchover', ms: switchover.switchoverMs, details: { ...switchover } }
    })
    expectSurvived(report)
  })

  it('primary node killed (SIGKILL of keeper and postgres), the monitor promotes the secondary', async () => {
    const report = await underLoad('primary node killed', async () => {
      const promotion = await formation.killPrimaryNode()
      return { what: 'promotion', ms: promotion.promotionMs, details: { ...promotion } }
    })
    expectSurvived(report)
  })
})

if (!availability.ok) console.warn(`\n!! failover suite SKIPPED: ${availability.reason}\n`)

function printReport(reports: readonly FaultReport[], startupMs: number): void {
  const rows = reports.map((r) => ({
    fault: r.fault,
    measured: r.measured.what === 'none' ? '—' : `${r.measured.what} ${r.measured.ms} ms`,
    'max op latency': `${r.maxLatencyMs} ms`,
    'latency − measured': `${r.maxLatencyOverMeasuredMs} ms`,
    ops: r.operations,
    'writes acked': r.writesAcknowledged,
    'failed after retry': r.failedAfterRetry,
    'failed window': r.failedFromMs === null ? '—' : `${r.failedFromMs}…${r.failedUntilMs} ms`,
    ACQUIRE_TIMEOUT: r.acquireTimeouts,
    'lost/dup': `${r.lost}/${r.duplicated}`,
    'after: on standby': `${r.afterwards.onStandby}/${r.afterwards.units}`,
  }))
  console.log(
    `\n[auto-failover] formation startup ${startupMs} ms; ${TENANTS} tenants, pool.max ${POOL_MAX}, withRetry defaults`,
  )
  console.table(rows)
  for (const r of reports) {
    if (Object.keys(r.failures).length > 0) console.log(`  ${r.fault} failures: ${JSON.stringify(r.failures)}`)
    if (Object.keys(r.retriedCodes).length > 0) console.log(`  ${r.fault} retried: ${JSON.stringify(r.retriedCodes)}`)
    console.log(`  ${r.fault} afterwards: ${JSON.stringify(r.afterwards)}`)
    console.log(`  ${r.fault} fault: ${JSON.stringify(r.details)}`)
  }
}
