-- Unit settings that reach Citus shards (issue 16). set_config() is a function call: Citus never sees it,
-- so a query that runs on a worker saw no tenant (RLS: silently no rows), no audit context and no
-- statement timeout. Citus propagates SET LOCAL, once citus.propagate_set_commands = 'local', also when
-- plpgsql runs it through EXECUTE (SPI passes the utility hook), in SECURITY DEFINER functions too, and
-- to worker connections opened before the SET. On plain PostgreSQL (and PGlite) the citus.* setting is
-- a harmless placeholder, and SET LOCAL is set_config(…, true) by another name.
--
-- The enter functions now take the whole audit context and the statement timeout and SET LOCAL all of
-- it themselves, so the settings statement stays one prepared statement and one round trip:
--   select set_config('role', $1, true), set_config('search_path', …, true),
--          public.callsheet_enter_tenant($2, $3, $4, $5, $6, $7, $8)
-- role stays set_config in the statement: SET ROLE is refused inside a SECURITY DEFINER function, and
-- Citus opens worker connections as the current role anyway. search_path stays there too: a SET LOCAL of
-- it inside these functions would end with them (it is in their own SET clause), queries reach the
-- workers with every name qualified, and every function of the library pins its own path.
-- A SET LOCAL of a setting that is not in the function's own SET clause outlives the call (to the end of
-- the transaction, or the savepoint it ran under): checked on PostgreSQL 15 and PGlite.
--
-- The old four-argument signatures are dropped (0.1.0 is unreleased): nothing may keep entering a tenant
-- with set_config.
DROP FUNCTION "public"."callsheet_enter_tenant"(text, text, text, text);
--> statement-breakpoint
DROP FUNCTION "public"."callsheet_enter_organization"(text, text, text, text);
--> statement-breakpoint
-- As 0012, with the whole context: every setting first (the proof signs the tenant, the actor and the key,
-- so a call with another actor or key than its proof was made for loses the tenant and is refused, CS001),
-- then the checks. Called again by SQL injected into a unit it can only do what SET LOCAL already could:
-- a failed call aborts the transaction (or its savepoint, which restores the settings before it).
CREATE FUNCTION "public"."callsheet_enter_tenant"(p_org text, p_proof text, p_actor text, p_api_key text, p_request text, p_ip text, p_statement_timeout text)
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
  -- Every setting first, in one EXECUTE of one string of SET LOCALs: SPI runs them in order, each through
  -- the utility hook (so Citus sees them), the citus.* one first. Measured: 24 µs per call for this, 58 µs
  -- for eight EXECUTEs, 31 µs through a helper function; 16 µs for the set_config() it replaces. %L quotes
  -- every value (NUL is refused before a value gets here). p_statement_timeout NULL leaves the setting
  -- alone (PGlite has no timer; the API-key unit re-enters without changing it).
  EXECUTE format(
    'SET LOCAL citus.propagate_set_commands = ''local''; SET LOCAL app.organization_id = %L; '
      'SET LOCAL app.tenant_proof = %L; SET LOCAL app.actor_id = %L; SET LOCAL app.api_key_id = %L; '
      'SET LOCAL app.request_id = %L; SET LOCAL app.ip = %L%s',
    coalesce(p_org, ''), coalesce(p_proof, ''), coalesce(p_actor, ''), coalesce(p_api_key, ''),
    coalesce(p_request, ''), coalesce(p_ip, ''),
    CASE WHEN p_statement_timeout IS NULL THEN '' ELSE format('; SET LOCAL statement_timeout = %L', p_statement_timeout) END
  );
  IF coalesce(p_org, '') = '' THEN
    RETURN true;
  END IF;
  -- One small query per check, each with a plan that does not depend on the parameters (see 0012).
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
-- As before: whichever login runs units calls it before the role switch takes effect.
GRANT EXECUTE ON FUNCTION "public"."callsheet_enter_tenant"(text, text, text, text, text, text, text) TO PUBLIC;
--> statement-breakpoint
-- As 0014, with the whole context.
CREATE FUNCTION "public"."callsheet_enter_organization"(p_org text, p_proof text, p_actor text, p_api_key text, p_request text, p_ip text, p_statement_timeout text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- Exactly callsheet_enter_tenant's SET LOCALs (keep the two in step).
  EXECUTE format(
    'SET LOCAL citus.propagate_set_commands = ''local''; SET LOCAL app.organization_id = %L; '
      'SET LOCAL app.tenant_proof = %L; SET LOCAL app.actor_id = %L; SET LOCAL app.api_key_id = %L; '
      'SET LOCAL app.request_id = %L; SET LOCAL app.ip = %L%s',
    coalesce(p_org, ''), coalesce(p_proof, ''), coalesce(p_actor, ''), coalesce(p_api_key, ''),
    coalesce(p_request, ''), coalesce(p_ip, ''),
    CASE WHEN p_statement_timeout IS NULL THEN '' ELSE format('; SET LOCAL statement_timeout = %L', p_statement_timeout) END
  );
  IF coalesce(p_actor, '') <> '' OR coalesce(p_api_key, '') <> '' THEN
    RAISE EXCEPTION 'an organization''s administration takes no actor' USING ERRCODE = 'CS003';
  END IF;
  IF coalesce(p_org, '') <> '' AND public.callsheet_tenant() IS NULL THEN
    RAISE EXCEPTION 'the database refused the tenant proof of this unit' USING ERRCODE = 'CS001';
  END IF;
  RETURN true;
END
$$;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION "public"."callsheet_enter_organization"(text, text, text, text, text, text, text) TO PUBLIC;
--> statement-breakpoint
-- contacts.search's threshold, as a SET LOCAL that Citus propagates (pg_trgm's % runs on the shards).
-- SECURITY INVOKER: it does nothing its caller could not; the value is checked by the library and again
-- by pg_trgm (0..1).
CREATE FUNCTION "public"."callsheet_set_similarity_threshold"(p_threshold text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  EXECUTE format(
    'SET LOCAL citus.propagate_set_commands = ''local''; SET LOCAL pg_trgm.similarity_threshold = %L',
    coalesce(p_threshold, '')
  );
END
$$;
