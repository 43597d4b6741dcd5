/**
 * Read-your-writes across the primary and its replicas, as the engine sees it (migration 0009): a write
 * learns the WAL position of its commit; a replica read waits, inside its settings statement, until the
 * replica has replayed the position it must show. Where to read and which position to wait for is decided
 * by routing/.
 */

/** A read on a replica: the read-your-writes gate and where the replica's replay stands. */
export interface ReplicaGate {
  /** `pg_lsn` text the replica must have replayed (`0/0` for none). */
  readonly waitFor: string
  /** How long the replica may wait for it before the unit fails with SQLSTATE ZR001. */
  readonly waitMs: number
  readonly onReplayed: (lsn: string) => void
}

// Part of the settings statement on a replica (see settings-statement.ts): it returns the replay position
// once it has reached $9, or fails with ZR001 after $10 ms. The unit's queries are pipelined behind it
// and run after it, so they see every write up to $9.
export const REPLICA_GATE_CALL = 'public.callsheet_wait_for_replay($9::pg_lsn, $10::int)::text as replayed'

/** The replay position the gated settings statement returned. */
export function replayedOf(rows: unknown): string {
  return String((rows as { replayed: string }[])[0]?.replayed)
}

/**
 * Sent right behind a write's COMMIT (same packet, no extra round trip): the position a replica must
 * have replayed to show this write. A commit with synchronous_commit on (or local, remote_*) has flushed
 * its record, so the flush position covers it without pointing at other sessions' unflushed WAL (which
 * a replica cannot have yet); with it off, only the insert position is sure to be past the commit.
 */
export const COMMIT_LSN_SQL =
  "select (case when current_setting('synchronous_commit') = 'off' then pg_current_wal_insert_lsn() " +
  'else pg_current_wal_flush_lsn() end)::text as lsn'

/** The commit position {@link COMMIT_LSN_SQL} returned. */
export function commitLsnOf(rows: unknown): string {
  return String((rows as { lsn: string }[])[0]?.lsn)
}
