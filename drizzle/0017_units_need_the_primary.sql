-- Primary work runs on the primary only (issue 17). With a multi-host URL, or after a failover, a pooled
-- connection can reach a standby (in recovery) or a primary being demoted (read-only). The library's
-- units on the primary target call this function in their first statement — the settings statement,
-- already one round trip, so the happy path pays one function call and no extra round trip — and the
-- unit is refused before any of its queries ran: SQLSTATE CS005. The library then drops the connection
-- (postgres.js reconnects through the multi-host list) and reports a retryable CONNECTION_ERROR.
-- p_write: a write unit also needs a writable transaction (a standby, or default_transaction_read_only,
-- which pg_auto_failover and operators set while demoting a primary). A read unit (BEGIN READ ONLY) needs
-- only a server out of recovery: its own transaction is read-only by request.
CREATE FUNCTION public.callsheet_require_primary(p_write boolean)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF pg_is_in_recovery() THEN
    RAISE EXCEPTION 'not the primary: this server is a standby (in recovery)'
      USING ERRCODE = 'CS005', HINT = 'the connection is dropped and the unit may be retried on the primary';
  END IF;
  IF p_write AND current_setting('transaction_read_only') = 'on' THEN
    RAISE EXCEPTION 'not the primary: this server only allows read-only transactions (default_transaction_read_only)'
      USING ERRCODE = 'CS005', HINT = 'the connection is dropped and the unit may be retried on the primary';
  END IF;
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION public.callsheet_require_primary(boolean) IS 'First statement of @callsheet/db units on the primary target: SQLSTATE CS005 on a standby, or (p_write) in a read-only transaction.';
--> statement-breakpoint
-- Executable by PUBLIC, like callsheet_wait_for_replay (migration 0014): PostgreSQL checks EXECUTE when the
-- statement starts, as the runtime login, before its set_config('role', …) has switched to callsheet_app.
-- Harmless: it reads two settings every role may read.
GRANT EXECUTE ON FUNCTION public.callsheet_require_primary(boolean) TO PUBLIC;
