-- The audit trail is written by the database, in the same transaction as each change: batch inserts,
-- raw SQL and every repository are covered, and a rollback leaves nothing. One statement-level trigger
-- per table and event reads the transition tables, so a 10,000-row insert costs one extra INSERT ... SELECT,
-- not 10,000. The function is SECURITY DEFINER so that the app role needs no INSERT on audit_logs at all:
-- audit rows come from triggers only. Values are the row as JSON without secrets (api_keys.key_hash);
-- an update records only the columns that changed (updated_at aside) and a no-op update records nothing;
-- an API key's last use is bookkeeping, not a change, and is not audited. created_at is the clock time
-- of the change (not the transaction start), so a transaction's audit rows sort in the order they happened.
CREATE FUNCTION "callsheet_audit"() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
  v_user uuid := nullif(current_setting('app.actor_id', true), '')::uuid;
  v_key uuid := nullif(current_setting('app.api_key_id', true), '')::uuid;
  v_ip inet := nullif(current_setting('app.ip', true), '')::inet;
  v_request text := nullif(current_setting('app.request_id', true), '');
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO audit_logs (organization_id, action, entity_type, entity_id, old_values, new_values, user_id, api_key_id, ip_address, request_id, created_at)
    SELECT n.organization_id, 'insert', TG_TABLE_NAME, n.id, NULL, to_jsonb(n) - 'key_hash', v_user, v_key, v_ip, v_request, clock_timestamp()
    FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO audit_logs (organization_id, action, entity_type, entity_id, old_values, new_values, user_id, api_key_id, ip_address, request_id, created_at)
    SELECT c.organization_id,
           CASE
             WHEN c.old_row->>'deleted_at' IS NULL AND c.new_row->>'deleted_at' IS NOT NULL THEN 'soft_delete'
             WHEN c.old_row->>'deleted_at' IS NOT NULL AND c.new_row->>'deleted_at' IS NULL THEN 'restore'
             ELSE 'update'
           END,
           TG_TABLE_NAME, c.id, d.old_values, d.new_values, v_user, v_key, v_ip, v_request, clock_timestamp()
    FROM (
      SELECT n.organization_id, n.id, to_jsonb(o) - 'key_hash' AS old_row, to_jsonb(n) - 'key_hash' AS new_row
      FROM old_rows o JOIN new_rows n ON n.id = o.id
      -- OFFSET 0 keeps the planner from flattening this subquery, which would recompute both to_jsonb()
      -- for every column key the diff below visits (measured: 3x the cost of an update's audit).
      OFFSET 0
    ) c
    CROSS JOIN LATERAL (
      SELECT jsonb_object_agg(k, c.old_row -> k) AS old_values, jsonb_object_agg(k, c.new_row -> k) AS new_values
      FROM jsonb_object_keys(c.new_row) AS k
      WHERE k NOT IN ('updated_at', 'last_used_at') AND (c.old_row -> k) IS DISTINCT FROM (c.new_row -> k)
    ) d
    WHERE d.new_values IS NOT NULL;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO audit_logs (organization_id, action, entity_type, entity_id, old_values, new_values, user_id, api_key_id, ip_address, request_id, created_at)
    SELECT o.organization_id, 'purge', TG_TABLE_NAME, o.id, to_jsonb(o) - 'key_hash', NULL, v_user, v_key, v_ip, v_request, clock_timestamp()
    FROM old_rows o;
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "callsheet_audit"() FROM PUBLIC;
--> statement-breakpoint
-- Audit rows pair an update's old and new row by id, so an id never changes; the tenant of a row
-- never changes either (RLS refuses it for the app role; this refuses it for everyone).
CREATE OR REPLACE FUNCTION "callsheet_set_updated_at"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id THEN
    RAISE EXCEPTION 'id of % is immutable', TG_TABLE_NAME USING ERRCODE = '23514';
  END IF;
  -- Nested, not AND-ed: plpgsql would still read NEW.organization_id, which organizations lacks.
  IF TG_TABLE_NAME <> 'organizations' THEN
    IF NEW.organization_id IS DISTINCT FROM OLD.organization_id THEN
      RAISE EXCEPTION 'organization_id of % is immutable', TG_TABLE_NAME USING ERRCODE = '23514';
    END IF;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "users_audit_insert" AFTER INSERT ON "users" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "users_audit_update" AFTER UPDATE ON "users" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "users_audit_delete" AFTER DELETE ON "users" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "departments_audit_insert" AFTER INSERT ON "departments" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "departments_audit_update" AFTER UPDATE ON "departments" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "departments_audit_delete" AFTER DELETE ON "departments" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "productions_audit_insert" AFTER INSERT ON "productions" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "productions_audit_update" AFTER UPDATE ON "productions" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "productions_audit_delete" AFTER DELETE ON "productions" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "contacts_audit_insert" AFTER INSERT ON "contacts" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "contacts_audit_update" AFTER UPDATE ON "contacts" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "contacts_audit_delete" AFTER DELETE ON "contacts" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "uploads_audit_insert" AFTER INSERT ON "uploads" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "uploads_audit_update" AFTER UPDATE ON "uploads" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "uploads_audit_delete" AFTER DELETE ON "uploads" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "api_keys_audit_insert" AFTER INSERT ON "api_keys" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "api_keys_audit_update" AFTER UPDATE ON "api_keys" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
CREATE TRIGGER "api_keys_audit_delete" AFTER DELETE ON "api_keys" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "callsheet_audit"();
--> statement-breakpoint
-- Audit rows are written by the triggers only: the app role may read its tenant's, nothing more.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "audit_logs" FROM callsheet_app;
--> statement-breakpoint
-- Month boundaries in UTC whatever the session's TimeZone, and rows moved out of DEFAULT straight into
-- the new partition (partitions carry no RLS of their own, so this also works for a non-superuser owner
-- under FORCE ROW LEVEL SECURITY).
CREATE OR REPLACE FUNCTION "callsheet_ensure_audit_partitions"(p_months_ahead integer DEFAULT 3, p_from date DEFAULT current_date)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
  month_start date;
  lower_bound timestamptz;
  upper_bound timestamptz;
  part_name text;
  moved bigint;
BEGIN
  IF p_months_ahead < 0 OR p_months_ahead > 120 THEN
    RAISE EXCEPTION 'p_months_ahead must be between 0 and 120, got %', p_months_ahead USING ERRCODE = '22023';
  END IF;
  FOR i IN 0..p_months_ahead LOOP
    month_start := (date_trunc('month', p_from::timestamp) + make_interval(months => i))::date;
    lower_bound := month_start::timestamp AT TIME ZONE 'UTC';
    upper_bound := (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    part_name := format('audit_logs_%s', to_char(month_start, 'YYYY_MM'));
    CONTINUE WHEN to_regclass(format('public.%I', part_name)) IS NOT NULL;
    LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE;
    CREATE TEMP TABLE IF NOT EXISTS callsheet_audit_moving (LIKE audit_logs) ON COMMIT DROP;
    WITH gone AS (
      DELETE FROM audit_logs_default
      WHERE created_at >= lower_bound AND created_at < upper_bound
      RETURNING *
    )
    INSERT INTO callsheet_audit_moving SELECT * FROM gone;
    GET DIAGNOSTICS moved = ROW_COUNT;
    EXECUTE format(
      'CREATE TABLE public.%I PARTITION OF public.audit_logs FOR VALUES FROM (%L) TO (%L)',
      part_name, lower_bound, upper_bound
    );
    IF moved > 0 THEN
      EXECUTE format('INSERT INTO public.%I SELECT * FROM callsheet_audit_moving', part_name);
      TRUNCATE callsheet_audit_moving;
    END IF;
    RETURN NEXT part_name;
  END LOOP;
END
$$;
--> statement-breakpoint
-- Retention: detach, then drop, every monthly partition that ends on or before p_before. Returns what
-- went. The DEFAULT partition is never dropped.
CREATE FUNCTION "callsheet_drop_audit_partitions_before"(p_before timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
  part record;
BEGIN
  FOR part IN
    SELECT c.relname AS name,
           (to_date(substring(c.relname from 'audit_logs_(\d{4}_\d{2})$'), 'YYYY_MM') + interval '1 month')::timestamp AT TIME ZONE 'UTC' AS upper_bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'public.audit_logs'::regclass AND c.relname ~ '^audit_logs_\d{4}_\d{2}$'
    ORDER BY c.relname
  LOOP
    CONTINUE WHEN part.upper_bound > p_before;
    EXECUTE format('ALTER TABLE public.audit_logs DETACH PARTITION public.%I', part.name);
    EXECUTE format('DROP TABLE public.%I', part.name);
    RETURN NEXT part.name;
  END LOOP;
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "callsheet_drop_audit_partitions_before"(timestamptz) FROM PUBLIC;
