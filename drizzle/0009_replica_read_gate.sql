-- Read-your-writes on streaming replicas (DESIGN "Replicas"). A tenant read sent to a replica carries
-- the consistency token of the client's last write: the primary's WAL insert position read right
-- after that write's COMMIT. This function, called in the read's first statement, returns at once
-- when the replica has replayed that far, waits up to timeout_ms for it otherwise, and then fails with
-- SQLSTATE ZR001 so that the read goes to the primary instead. The read's own queries run after it in
-- the same transaction, each with a fresh snapshot (READ COMMITTED), so they see the write.
-- On a server that is not in recovery — a promoted or misconfigured "replica" — only its own WAL
-- position can vouch for the target: at or past it, it returns; otherwise it fails with ZR001 at once.
CREATE FUNCTION "callsheet_wait_for_replay"(target pg_lsn, timeout_ms integer)
RETURNS pg_lsn
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog
AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + make_interval(secs => greatest(timeout_ms, 0) / 1000.0);
  pause double precision := 0.0002;
  replayed pg_lsn;
BEGIN
  IF NOT pg_is_in_recovery() THEN
    IF pg_current_wal_lsn() >= target THEN
      RETURN pg_current_wal_lsn();
    END IF;
    RAISE EXCEPTION 'server is not in recovery and its WAL (%) is behind %', pg_current_wal_lsn(), target
      USING ERRCODE = 'ZR001', HINT = 'the read goes to the primary';
  END IF;
  LOOP
    replayed := coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn);
    IF replayed >= target THEN
      RETURN replayed;
    END IF;
    IF clock_timestamp() >= deadline THEN
      RAISE EXCEPTION 'replica has replayed WAL to %, not yet to %', replayed, target
        USING ERRCODE = 'ZR001', HINT = 'the read goes to the primary';
    END IF;
    PERFORM pg_sleep(pause);
    pause := least(pause * 2, 0.002);
  END LOOP;
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION "callsheet_wait_for_replay"(pg_lsn, integer) IS 'Read-your-writes gate of @callsheet/db replica reads: waits (bounded) until this standby has replayed WAL up to target; SQLSTATE ZR001 when it has not.';
--> statement-breakpoint
REVOKE ALL ON FUNCTION "callsheet_wait_for_replay"(pg_lsn, integer) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "callsheet_wait_for_replay"(pg_lsn, integer) TO callsheet_app;
