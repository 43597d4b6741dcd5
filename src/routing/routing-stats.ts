/** Why a read that could have gone to a replica went to the primary. */
export type FallbackReason =
  /** no replica could serve it: all failed recently (in backoff) or are over the lag ceiling */
  | 'noReplica'
  /** the replica had not replayed the client's last write within the wait budget */
  | 'behind'
  /** the replica failed (refused, timed out, recovery conflict, connection lost): retried on the primary */
  | 'replicaError'
  /** a write of this client committed but its WAL position could not be read: it stays on the primary */
  | 'pinned'

/** One replica as the router sees it. */
export interface ReplicaStats {
  /** `host:port` (or `replicas[i]`). */
  readonly name: string
  /** `down` while in backoff after a failure, `lagging` while over the lag ceiling. */
  readonly state: 'up' | 'down' | 'lagging'
  readonly reads: number
  readonly failures: number
  /** Failures in a row; the backoff doubles with each. */
  readonly consecutiveFailures: number
  /** When a replica in backoff gets its next try (epoch ms). */
  readonly retryAt: number | undefined
  readonly lastError: string | undefined
  /** Last replay position seen (`pg_lsn` text). */
  readonly replayLsn: string | undefined
  /** Replay lag at the last measurement: bytes of WAL and ms (0 when caught up); undefined before one. */
  readonly lagBytes: number | undefined
  readonly lagMs: number | undefined
  readonly lagMeasuredAt: number | undefined
}

/** Routing counters of a database (`db.stats().routing`). */
export interface RoutingStats {
  readonly reads: { readonly primary: number; readonly replica: number }
  /** Reads that went to the primary although replicas are configured, by reason. */
  readonly fallbacks: { readonly [reason in FallbackReason]: number }
  /**
   * Replica reads that carried a consistency token the router had not yet seen that replica replay
   * (the server-side gate may still have found it replayed at once), and were served by the replica.
   */
  readonly gatedReads: number
  readonly replicas: readonly ReplicaStats[]
}
