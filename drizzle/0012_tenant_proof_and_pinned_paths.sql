-- Isolation that holds when hostile SQL runs inside a tenant unit (issue 14).
--
-- 1. No relation lookup can be redirected. PostgreSQL searches pg_temp first for relations unless the
--    path names it, and a temp table shadows a public one for the session that made it (a pooled
--    connection outlives the request that made it). Every function of the library now pins
--    search_path = pg_catalog, pg_temp (pg_temp last) and names every relation with its schema, and
--    PUBLIC and the app role lose TEMPORARY on this database where the migrating role may revoke it.
-- 2. A tenant that injected SQL cannot forge. app.organization_id alone is a setting any SQL may change:
--    each unit now also carries app.tenant_proof, `<key id>.<expires epoch s>.<hex HMAC>`, computed by
--    the library from the deployment secret, and the policies compare organization_id with
--    callsheet_tenant(), which returns the setting only when its proof verifies. The database keeps
--    HMAC-SHA256's padded inner and outer keys (of a key derived from the secret, so the stored material
--    cannot sign anything else the secret signs) in callsheet_private, which only the owner may use;
--    HMAC is then sha256(outer || sha256(inner || message)) with the built-in sha256().
-- 3. callsheet_enter_tenant(), called by the first statement of every unit, refuses a bad proof (CS001),
--    a missing or soft-deleted organization (CS002) and an actor or API key that is not a live one of
--    the organization (CS003), before any row is read or written.
CREATE SCHEMA IF NOT EXISTS "callsheet_private";
--> statement-breakpoint
REVOKE ALL ON SCHEMA "callsheet_private" FROM PUBLIC;
--> statement-breakpoint
-- Rows are installed by migrate({ secret }) (and by createDatabase on PGlite): current and previous keys.
CREATE TABLE "callsheet_private"."tenant_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"inner_pad" bytea NOT NULL,
	"outer_pad" bytea NOT NULL,
	"installed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tenant_keys_id_format" CHECK ("id" ~ '^[0-9a-f]{16}$'),
	CONSTRAINT "tenant_keys_pad_length" CHECK (octet_length("inner_pad") = 64 AND octet_length("outer_pad") = 64)
);
--> statement-breakpoint
REVOKE ALL ON TABLE "callsheet_private"."tenant_keys" FROM PUBLIC;
--> statement-breakpoint
COMMENT ON TABLE "callsheet_private"."tenant_keys" IS 'HMAC-SHA256 padded keys that verify tenant proofs (derived from the deployment secret). Owner only.';
--> statement-breakpoint
-- The tenant of the current unit, when its proof verifies; NULL otherwise (no tenant: no rows). The proof
-- signs the tenant and the audit actor (app.actor_id, app.api_key_id): SQL injected into a unit that
-- changes either loses the tenant, so it can neither switch tenant nor write audit rows in another's name.
-- STABLE, and policies call it as (select callsheet_tenant()): once per statement.
CREATE FUNCTION "public"."callsheet_tenant"() RETURNS uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_org text := current_setting('app.organization_id', true);
  v_proof text := current_setting('app.tenant_proof', true);
  v_expires text;
  v_inner bytea;
  v_outer bytea;
BEGIN
  -- This runs once per statement of every unit: simple expressions (evaluated without the executor)
  -- and one parameterless-plan query. (One query with CASEs over the parameters was re-planned on
  -- every call: several times slower.)
  IF v_org IS NULL OR v_org = '' OR v_proof IS NULL THEN
    RETURN NULL;
  END IF;
  v_expires := split_part(v_proof, '.', 2);
  IF v_expires !~ '^[0-9]{1,12}$' THEN
    RETURN NULL;
  END IF;
  -- now() is the transaction's start: a proof is good for the whole unit. Far-future proofs are refused
  -- too, so a leaked proof is worth at most a quarter of an hour.
  IF v_expires::bigint <= extract(epoch FROM now()) OR v_expires::bigint > extract(epoch FROM now()) + 900 THEN
    RETURN NULL;
  END IF;
  SELECT k.inner_pad, k.outer_pad INTO v_inner, v_outer FROM callsheet_private.tenant_keys k WHERE k.id = split_part(v_proof, '.', 1);
  IF v_inner IS NULL
     OR encode(sha256(v_outer || sha256(v_inner || convert_to(
          v_org || '.' || coalesce(current_setting('app.actor_id', true), '') || '.' ||
          coalesce(current_setting('app.api_key_id', true), '') || '.' || v_expires, 'UTF8'))), 'hex') <> split_part(v_proof, '.', 3) THEN
    RETURN NULL;
  END IF;
  RETURN v_org::uuid;
END
$$;
--> statement-breakpoint
-- Every policy calls it, for whichever role the policy binds (the owner too, under FORCE): PUBLIC may
-- execute it. It says nothing a caller could not tell: the tenant its own settings prove.
GRANT EXECUTE ON FUNCTION "public"."callsheet_tenant"() TO PUBLIC;
--> statement-breakpoint
-- The first statement of every unit calls this (after setting role, actor, key, request and ip): it
-- sets the tenant and its proof, then refuses the unit before any row is read or written when the
-- proof does not verify (CS001), the organization is missing or soft-deleted (CS002), or the actor or
-- API key is not a live one of it (CS003). On a standby a failed check may only be replication lag:
-- it raises ZR001 instead, and the library sends the read to the primary, which decides.
-- p_org = '' is the unit without a tenant that verifies API keys.
CREATE FUNCTION "public"."callsheet_enter_tenant"(p_org text, p_proof text, p_actor text, p_api_key text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_org uuid;
  v_state text;
  v_message text;
BEGIN
  PERFORM set_config('app.organization_id', coalesce(p_org, ''), true), set_config('app.tenant_proof', coalesce(p_proof, ''), true);
  IF coalesce(p_org, '') = '' THEN
    RETURN true;
  END IF;
  -- One small query per check, each with a plan that does not depend on the parameters (a condition
  -- like `p_actor <> '' AND NOT EXISTS (…)` folds to a free custom plan when p_actor is '', and
  -- PostgreSQL then re-plans it on every call). The rows are read as the owner, who sees them now that
  -- the tenant is set and proven (FORCE ROW LEVEL SECURITY binds a non-superuser owner too).
  v_org := public.callsheet_tenant();
  IF v_org IS NULL THEN
    v_state := 'CS001';
    v_message := 'the database refused the tenant proof of this unit';
  ELSIF NOT EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = v_org AND o.deleted_at IS NULL) THEN
    v_state := 'CS002';
    v_message := format('organization %s does not exist or is deleted', v_org);
  END IF;
  IF v_state IS NULL AND coalesce(p_actor, '') <> '' THEN
    IF NOT EXISTS (
      SELECT 1 FROM public.users u WHERE u.organization_id = v_org AND u.id = p_actor::uuid AND u.deleted_at IS NULL
    ) THEN
      v_state := 'CS003';
      v_message := format('actorId %s is not a live user of organization %s', p_actor, v_org);
    END IF;
  END IF;
  IF v_state IS NULL AND coalesce(p_api_key, '') <> '' THEN
    IF NOT EXISTS (
      SELECT 1 FROM public.api_keys k
      WHERE k.organization_id = v_org AND k.id = p_api_key::uuid AND k.revoked_at IS NULL
        AND (k.expires_at IS NULL OR k.expires_at > now())
    ) THEN
      v_state := 'CS003';
      v_message := format('apiKeyId %s is not an unrevoked, unexpired API key of organization %s', p_api_key, v_org);
    END IF;
  END IF;
  IF v_state IS NULL THEN
    RETURN true;
  END IF;
  IF pg_is_in_recovery() THEN
    RAISE EXCEPTION 'standby: %', v_message USING ERRCODE = 'ZR001', HINT = 'the read goes to the primary';
  END IF;
  RAISE EXCEPTION '%', v_message USING ERRCODE = v_state;
END
$$;
--> statement-breakpoint
-- Whichever login runs units calls it before the role switch takes effect: PUBLIC may execute it. Its
-- checks answer only for a tenant whose proof the caller already holds.
GRANT EXECUTE ON FUNCTION "public"."callsheet_enter_tenant"(text, text, text, text) TO PUBLIC;
--> statement-breakpoint
-- Verifies an API key before its tenant is known: the key's row when it is unrevoked, unexpired and
-- its organization is live; no row otherwise.
CREATE FUNCTION "public"."callsheet_verify_api_key"(p_hash text)
RETURNS TABLE (api_key_id uuid, org_id uuid, key_name text, key_scopes text[])
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- The api_key_verification policy shows the owner (bound by FORCE ROW LEVEL SECURITY) this one row.
  PERFORM set_config('app.api_key_hash', coalesce(p_hash, ''), true);
  RETURN QUERY
    SELECT k.id, k.organization_id, k.name, k.scopes
    FROM public.api_keys k JOIN public.organizations o ON o.id = k.organization_id
    WHERE k.key_hash = p_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
      AND o.deleted_at IS NULL;
  PERFORM set_config('app.api_key_hash', '', true);
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "public"."callsheet_verify_api_key"(text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "public"."callsheet_verify_api_key"(text) TO callsheet_app;
--> statement-breakpoint
-- audit_logs is not drizzle-kit's (partitioned): its policy is changed here; the others by 0013.
ALTER POLICY "tenant_isolation" ON "public"."audit_logs"
  USING ("organization_id" = (select callsheet_tenant()))
  WITH CHECK ("organization_id" = (select callsheet_tenant()));
--> statement-breakpoint
-- As 0007, with the path pinned (pg_temp last) and every relation schema-qualified. The transition
-- tables (new_rows, old_rows) are the trigger's own and are found before any schema is searched.
CREATE OR REPLACE FUNCTION "public"."callsheet_audit"() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_user uuid := nullif(current_setting('app.actor_id', true), '')::uuid;
  v_key uuid := nullif(current_setting('app.api_key_id', true), '')::uuid;
  v_ip inet := nullif(current_setting('app.ip', true), '')::inet;
  v_request text := nullif(current_setting('app.request_id', true), '');
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO public.audit_logs (organization_id, action, entity_type, entity_id, old_values, new_values, user_id, api_key_id, ip_address, request_id, created_at)
    SELECT n.organization_id, 'insert', TG_TABLE_NAME, n.id, NULL, to_jsonb(n) - 'key_hash', v_user, v_key, v_ip, v_request, clock_timestamp()
    FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO public.audit_logs (organization_id, action, entity_type, entity_id, old_values, new_values, user_id, api_key_id, ip_address, request_id, created_at)
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
    INSERT INTO public.audit_logs (organization_id, action, entity_type, entity_id, old_values, new_values, user_id, api_key_id, ip_address, request_id, created_at)
    SELECT o.organization_id, 'purge', TG_TABLE_NAME, o.id, to_jsonb(o) - 'key_hash', NULL, v_user, v_key, v_ip, v_request, clock_timestamp()
    FROM old_rows o;
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- As 0007, with the path pinned and relations qualified. The scratch table is this call's own: created
-- without IF NOT EXISTS (a table of that name left in the session by someone else is an error, never
-- a source of rows) and dropped as soon as its rows are moved.
CREATE OR REPLACE FUNCTION "public"."callsheet_ensure_audit_partitions"(p_months_ahead integer DEFAULT 3, p_from date DEFAULT current_date)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
    LOCK TABLE public.audit_logs IN ACCESS EXCLUSIVE MODE;
    CREATE TEMP TABLE pg_temp.callsheet_audit_moving (LIKE public.audit_logs) ON COMMIT DROP;
    WITH gone AS (
      DELETE FROM public.audit_logs_default
      WHERE created_at >= lower_bound AND created_at < upper_bound
      RETURNING *
    )
    INSERT INTO pg_temp.callsheet_audit_moving SELECT * FROM gone;
    GET DIAGNOSTICS moved = ROW_COUNT;
    EXECUTE format(
      'CREATE TABLE public.%I PARTITION OF public.audit_logs FOR VALUES FROM (%L) TO (%L)',
      part_name, lower_bound, upper_bound
    );
    IF moved > 0 THEN
      EXECUTE format('INSERT INTO public.%I SELECT * FROM pg_temp.callsheet_audit_moving', part_name);
    END IF;
    DROP TABLE pg_temp.callsheet_audit_moving;
    RETURN NEXT part_name;
  END LOOP;
END
$$;
--> statement-breakpoint
-- Its relations are pg_catalog's or qualified already; only the path changes.
ALTER FUNCTION "public"."callsheet_drop_audit_partitions_before"(timestamptz) SET search_path = pg_catalog, pg_temp;
--> statement-breakpoint
ALTER FUNCTION "public"."callsheet_wait_for_replay"(pg_lsn, integer) SET search_path = pg_catalog, pg_temp;
--> statement-breakpoint
-- Without TEMPORARY, SQL run as the app role cannot create the temp tables that would shadow the
-- library's. Only the database's owner (or a superuser) may revoke it; otherwise `callsheet-db doctor`
-- reports it with the statement to run.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = current_user AND rolsuper)
     OR pg_catalog.pg_has_role(current_user, (SELECT d.datdba FROM pg_catalog.pg_database d WHERE d.datname = current_database()), 'MEMBER') THEN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM callsheet_app', current_database());
  ELSE
    RAISE NOTICE 'not the owner of database %: run REVOKE TEMPORARY ON DATABASE % FROM PUBLIC, callsheet_app as its owner', current_database(), current_database();
  END IF;
END
$$;
