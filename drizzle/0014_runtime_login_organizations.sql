-- Two roles (issue 14): the login that serves requests is only a member of callsheet_app, so the
-- library's organization operations run as callsheet_app too, each in a unit scoped to the organization
-- itself (policy "tenant_isolation" on organizations: id = the unit's tenant). A tenant therefore sees and
-- changes its own organization row and no other. No DELETE (purging an organization is the owner's), and
-- UPDATE only of the columns the library changes: id and created_at stay the owner's; updated_at is set by
-- the trigger, which needs no column privilege.
GRANT INSERT ON "organizations" TO callsheet_app;
--> statement-breakpoint
GRANT UPDATE ("name", "slug", "settings", "deleted_at") ON "organizations" TO callsheet_app;
--> statement-breakpoint
-- PostgreSQL checks EXECUTE on the functions of a statement when it starts, as the role then current:
-- for a replica read's settings statement that is the login, before its set_config('role', …) has
-- switched to callsheet_app. A runtime login holds nothing of its own (NOINHERIT), so the gate must be
-- executable by PUBLIC. It is harmless there: it reads WAL positions and sleeps, which any role may.
GRANT EXECUTE ON FUNCTION "callsheet_wait_for_replay"(pg_lsn, integer) TO PUBLIC;
--> statement-breakpoint
-- The organization's own administration (db.organizations: create, restore, reads of a deleted one) runs
-- in a unit scoped to that organization, which may not exist yet or may be soft-deleted: the tenant's
-- proof is checked as in callsheet_enter_tenant, the organization's existence and liveness are not, and
-- no actor is taken. Tenant units keep callsheet_enter_tenant, so a deleted organization's units fail.
CREATE FUNCTION "public"."callsheet_enter_organization"(p_org text, p_proof text, p_actor text, p_api_key text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM set_config('app.organization_id', coalesce(p_org, ''), true), set_config('app.tenant_proof', coalesce(p_proof, ''), true);
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
GRANT EXECUTE ON FUNCTION "public"."callsheet_enter_organization"(text, text, text, text) TO PUBLIC;
