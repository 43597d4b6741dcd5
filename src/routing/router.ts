import { isCallsheetDbError, toLibraryError, type CallsheetDbError } from '../errors'
import { formatLsn, parseLsn, type WriteWatermark, type Lsn, type ReadConsistency } from './consistency'
import type { ResolvedTarget } from '../engine/engine-config'
import type { RouterConfig } from './routing-config'
import type { FallbackReason, RoutingStats } from './routing-stats'
import { createEngine } from '../engine/create-engine'
import { refuseReadYourWritesOnCitus } from './citus-refusal'
import type { Db, Engine, UnitSettings, UnitWork } from '../engine/engine'

class Replica {
  reads = 0
  failures = 0
  consecutiveFailures = 0
  retryAt: number | undefined
  lastError: string | undefined
  replayLsn: Lsn | undefined
  lagBytes: number | undefined
  lagMs: number | undefined
  lagMeasuredAt: number | undefined
  probing = false

  constructor(
    readonly name: string,
    readonly engine: Engine,
  ) {}

  sawReplay(lsn: Lsn | undefined): void {
    if (lsn !== undefined && (this.replayLsn === undefined || lsn > this.replayLsn)) this.replayLsn = lsn
  }
}

/** Gate failure raised by `callsheet_wait_for_replay` (migration 0009). */
const BEHIND = 'ZR001'

/**
 * Where each unit of work runs: writes on the primary (reading the commit's WAL position when there
 * are replicas), reads on a replica that has replayed the client's writes, else on the primary.
 */
export class Router {
  readonly replicas: readonly Replica[]
  #readsPrimary = 0
  #readsReplica = 0
  #gated = 0
  #fallbacks: Record<FallbackReason, number> = { noReplica: 0, behind: 0, replicaError: 0, pinned: 0 }
  #next = 0
  /** Recent (primary WAL position, when) samples, oldest first: from commits and lag probes. */
  #positions: { lsn: Lsn; at: number }[] = []

  constructor(
    readonly primary: Engine,
    private readonly config: RouterConfig,
  ) {
    this.replicas = config.replicas.map(
      (target, i) =>
        new Replica(
          replicaName(target, i),
          // A busy or unreachable replica should hand the read to the primary soon, not after the
          // primary's own acquire timeout.
          createEngine(withConnectTimeout(target, config), config, {
            name: replicaName(target, i),
            // One database: a read on a replica inside a transaction on the primary is a nested unit too.
            scope: primary.scope,
            // A replica that cannot be reached hands the read to the primary at once.
            waitForServer: false,
            acquireTimeoutMs: Math.min(
              config.pool.acquireTimeoutMs,
              Math.ceil(config.routing.replicaConnectTimeoutSeconds * 1000),
            ),
          }),
        ),
    )
  }

  /**
   * A write (or `transaction(fn)`): on the primary; with replicas, the commit's position raises the client's write watermark.
   * `appCode`: the unit runs the app's code (see `UnitOptions.appCode` in engine.ts).
   */
  write<T>(settings: UnitSettings, watermark: WriteWatermark, fn: UnitWork<T, Db>, appCode = false): Promise<T> {
    if (this.replicas.length === 0) return this.primary.unit(settings, { readOnly: false, appCode }, fn)
    return this.primary.unit(
      settings,
      {
        readOnly: false,
        appCode,
        onCommitted: (text) => {
          const lsn = text === undefined ? undefined : parseLsn(text)
          if (lsn === undefined) watermark.pin()
          else {
            watermark.advance(lsn)
            this.sawPrimary(lsn)
          }
        },
      },
      fn,
    )
  }

  /**
   * Read-only work: on a replica when the write watermark allows it and one can serve it, else on the primary.
   * A replica that fails is put in backoff and the read runs once more, on the primary. `fn` may
   * therefore run twice; it must only read.
   */
  async read<T>(
    settings: UnitSettings,
    watermark: WriteWatermark,
    consistency: ReadConsistency,
    fn: UnitWork<T, Db>,
    appCode = false,
  ): Promise<T> {
    if (this.replicas.length === 0 || consistency === 'primary') return this.onPrimary(settings, fn, appCode)
    if (consistency === 'read-your-writes') await refuseReadYourWritesOnCitus(this.primary)
    if (consistency === 'read-your-writes' && watermark.pinnedToPrimary)
      return this.fallback('pinned', settings, fn, appCode)
    const now = Date.now()
    // An 'eventual' read has no gate: it needs a replica whose lag has been measured.
    const replica = this.pick(now, consistency === 'eventual')
    if (!replica) return this.fallback('noReplica', settings, fn, appCode)
    this.maybeMeasureLag(replica, now)
    const wanted = consistency === 'read-your-writes' ? watermark.lsn : undefined
    // Already known to be there: no wait. Known to be far behind: do not wait for nothing.
    const mustWait = wanted !== undefined && (replica.replayLsn === undefined || replica.replayLsn < wanted)
    if (mustWait && (replica.lagMs ?? 0) > this.config.routing.readYourWritesWaitMs * 4) {
      return this.fallback('behind', settings, fn, appCode)
    }
    try {
      const result = await replica.engine.unit(
        settings,
        {
          readOnly: true,
          appCode,
          replica: {
            waitFor: formatLsn(wanted ?? 0n),
            waitMs: wanted === undefined ? 0 : this.config.routing.readYourWritesWaitMs,
            onReplayed: (text) => replica.sawReplay(parseLsn(text)),
          },
        },
        fn,
      )
      replica.reads++
      replica.consecutiveFailures = 0
      replica.retryAt = undefined
      this.#readsReplica++
      if (mustWait) this.#gated++
      return result
    } catch (error) {
      const mapped = toLibraryError(error)
      if (!isCallsheetDbError(mapped)) throw mapped // the app's own error from tenant.read(fn)
      if (mapped.sqlState === BEHIND) return this.fallback('behind', settings, fn, appCode)
      // A statement that ran out of time is slow, not the replica's fault: once more on the primary,
      // without putting a healthy replica in backoff.
      if (mapped.code === 'TIMEOUT') return this.fallback('replicaError', settings, fn, appCode)
      if (!isReplicaFailure(mapped)) throw mapped
      this.failed(replica, mapped)
      return this.fallback('replicaError', settings, fn, appCode)
    }
  }

  stats(): RoutingStats {
    const now = Date.now()
    return {
      reads: { primary: this.#readsPrimary, replica: this.#readsReplica },
      fallbacks: { ...this.#fallbacks },
      gatedReads: this.#gated,
      replicas: this.replicas.map((r) => ({
        name: r.name,
        state: this.down(r, now) ? 'down' : this.lagging(r) ? 'lagging' : 'up',
        reads: r.reads,
        failures: r.failures,
        consecutiveFailures: r.consecutiveFailures,
        retryAt: r.retryAt,
        lastError: r.lastError,
        replayLsn: r.replayLsn === undefined ? undefined : formatLsn(r.replayLsn),
        lagBytes: r.lagBytes,
        lagMs: r.lagMs,
        lagMeasuredAt: r.lagMeasuredAt,
      })),
    }
  }

  /**
   * Measures every replica's lag now (what `db.stats()` shows); a replica that does not answer is
   * put in backoff.
   */
  async measureLag(): Promise<void> {
    await Promise.all(this.replicas.map((r) => this.measure(r)))
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), ...this.replicas.map((r) => r.engine.close())])
  }

  private onPrimary<T>(settings: UnitSettings, fn: UnitWork<T, Db>, appCode: boolean): Promise<T> {
    this.#readsPrimary++
    return this.primary.unit(settings, { readOnly: true, appCode }, fn)
  }

  private fallback<T>(
    reason: FallbackReason,
    settings: UnitSettings,
    fn: UnitWork<T, Db>,
    appCode: boolean,
  ): Promise<T> {
    this.#fallbacks[reason]++
    return this.onPrimary(settings, fn, appCode)
  }

  /** Round robin over the replicas that are neither in backoff nor over the lag ceiling. */
  private pick(now: number, measuredOnly: boolean): Replica | undefined {
    const n = this.replicas.length
    for (let i = 0; i < n; i++) {
      const replica = this.replicas[(this.#next + i) % n] as Replica
      if (this.down(replica, now) || this.lagging(replica)) continue
      if (measuredOnly && replica.lagMs === undefined) continue
      this.#next = (this.#next + i + 1) % n
      return replica
    }
    // Over the ceiling but measured long ago: let one through to measure it again.
    for (const replica of this.replicas) if (!this.down(replica, now)) this.maybeMeasureLag(replica, now)
    return undefined
  }

  private down(replica: Replica, now: number): boolean {
    return replica.retryAt !== undefined && now < replica.retryAt
  }

  private lagging(replica: Replica): boolean {
    return replica.lagMs !== undefined && replica.lagMs > this.config.routing.maxLagMs
  }

  private failed(replica: Replica, error: CallsheetDbError): void {
    // Reads and a lag probe already under way when it went down: one failure per backoff window.
    if (this.down(replica, Date.now())) return
    replica.failures++
    replica.consecutiveFailures++
    replica.lastError = `${error.code}: ${error.message}`
    const { backoffMs, maxBackoffMs } = this.config.routing
    const wait = Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(30, replica.consecutiveFailures - 1))
    replica.retryAt = Date.now() + wait
    try {
      this.config.logger.warn?.('replica failed; its reads go to the primary', {
        replica: replica.name,
        error: replica.lastError,
        retryInMs: wait,
      })
    } catch {
      // A logger that throws must not turn a fallback into a failed read.
    }
  }

  private maybeMeasureLag(replica: Replica, now: number): void {
    if (replica.probing) return
    if (replica.lagMeasuredAt !== undefined && now - replica.lagMeasuredAt < this.config.routing.lagCheckIntervalMs)
      return
    void this.measure(replica)
  }

  /**
   * Keeps one sample per `maxLagMs / 200` (at least 10 ms), so the samples span the lag ceiling
   * however fast the primary commits; a replica behind even the oldest sample is at least that old.
   */
  private sawPrimary(lsn: Lsn, at = Date.now()): void {
    const last = this.#positions.at(-1)
    if (last && (lsn <= last.lsn || at - last.at < Math.max(10, this.config.routing.maxLagMs / 200))) return
    this.#positions.push({ lsn, at })
    if (this.#positions.length > 256) this.#positions.splice(0, this.#positions.length - 256)
  }

  /**
   * Lag = how far the replica's replay is behind the primary, read first on the primary: in bytes, and
   * in time as how long ago the primary first had WAL the replica still lacks (from the positions seen
   * at commits and probes). An idle primary gives 0 once the replica has everything it had — the age
   * of the last replayed transaction would call a caught-up replica of an idle primary far behind.
   */
  private async measure(replica: Replica): Promise<void> {
    if (replica.probing) return
    replica.probing = true
    try {
      const sampledAt = Date.now()
      const [head] = await this.primary.probe<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')
      const primaryLsn = head ? parseLsn(head.lsn) : undefined
      if (primaryLsn !== undefined) this.sawPrimary(primaryLsn, sampledAt)
      let row: { replayed: string | null } | undefined
      try {
        ;[row] = await replica.engine.probe<{ replayed: string | null }>(
          'select pg_last_wal_replay_lsn()::text as replayed',
        )
      } catch (error) {
        const mapped = toLibraryError(error)
        if (isCallsheetDbError(mapped)) this.failed(replica, mapped)
        return
      }
      const replayed = row?.replayed ? parseLsn(row.replayed) : undefined
      replica.sawReplay(replayed)
      if (primaryLsn === undefined || replayed === undefined) {
        // Not a streaming standby (promoted, or not replaying yet): never route reads to it blindly.
        replica.lagBytes = undefined
        replica.lagMs = Number.POSITIVE_INFINITY
      } else {
        const behind = primaryLsn > replayed ? primaryLsn - replayed : 0n
        replica.lagBytes = Number(behind)
        const firstMissing = this.#positions.find((p) => p.lsn > replayed)
        replica.lagMs = behind === 0n || !firstMissing ? 0 : Math.max(0, Date.now() - firstMissing.at)
      }
      replica.lagMeasuredAt = Date.now()
    } catch {
      // The primary did not answer the probe: its own reads and writes will say so.
    } finally {
      replica.probing = false
    }
  }
}

/** Errors that are the replica's fault (or its connection's): the read is retried on the primary. */
function isReplicaFailure(error: CallsheetDbError): boolean {
  const state = error.sqlState
  if (
    isCallsheetDbError(error, 'CONNECTION_ERROR') ||
    isCallsheetDbError(error, 'ACQUIRE_TIMEOUT') ||
    // A recovery conflict cancels the query with 40001 (or 40P01).
    isCallsheetDbError(error, 'SERIALIZATION_FAILURE')
  )
    return true
  if (state === undefined) return false
  // 53 insufficient resources (too many connections), 57 operator intervention, 58 system error,
  // XX internal error, 42883: the gate function is missing (a replica not yet at migration 0009).
  return /^(53|57|58|XX)/.test(state) || state === '42883'
}

function replicaName(target: ResolvedTarget, index: number): string {
  if (target.kind !== 'postgres') return `replicas[${index}]`
  if (target.url !== undefined) {
    try {
      const url = new URL(target.url)
      return `${url.hostname}:${url.port || '5432'}`
    } catch {
      return `replicas[${index}]`
    }
  }
  const host = target.options.host
  const port = target.options.port
  return typeof host === 'string' ? `${host}:${port ?? 5432}` : `replicas[${index}]`
}

function withConnectTimeout(target: ResolvedTarget, config: RouterConfig): ResolvedTarget {
  if (target.kind !== 'postgres' || target.options.connect_timeout !== undefined) return target
  return { ...target, options: { ...target.options, connect_timeout: config.routing.replicaConnectTimeoutSeconds } }
}
