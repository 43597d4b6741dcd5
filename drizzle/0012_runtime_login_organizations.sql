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
