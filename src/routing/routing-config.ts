import type { EngineConfig, ResolvedTarget } from '../engine/engine-config'

/** Replica routing: the read-your-writes wait, the lag ceiling and the health backoff. */
export interface RoutingConfig {
  /**
   * How long a read may wait on a replica for the client's last write to be replayed before it goes
   * to the primary instead, in ms.
   * @default 20
   */
  readonly readYourWritesWaitMs?: number
  /**
   * A replica whose replay is further behind the primary than this (in ms) gets no reads until it
   * catches up.
   * @default 10000
   */
  readonly maxLagMs?: number
  /**
   * How often each replica's lag is measured, in ms (on the back of reads; no timers run).
   * @default 1000
   */
  readonly lagCheckIntervalMs?: number
  /**
   * How long a replica that failed (refused, timed out, recovery conflict) is skipped, in ms; doubled
   * for each further failure in a row, up to `maxBackoffMs`. The first read after it is a retry.
   * @default 500
   */
  readonly backoffMs?: number
  /** @default 30000 */
  readonly maxBackoffMs?: number
  /**
   * Connect timeout for replica connections, in seconds (postgres.js's default is 30).
   * @default 3
   */
  readonly replicaConnectTimeoutSeconds?: number
}

/** What the router reads of the resolved configuration. */
export interface RouterConfig extends EngineConfig {
  readonly replicas: readonly ResolvedTarget[]
  readonly routing: Required<RoutingConfig>
}
