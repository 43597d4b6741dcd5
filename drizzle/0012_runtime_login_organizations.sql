-- Two roles (issue 14): the login that serves requests is only a member of callsheet_app, so the
-- library's organization operations run as callsheet_app too, each in a unit scoped to the organization
-- itself (policy "tenant_isolation" on organizations: id = the unit's tenant). A tenant therefore sees and
-- changes its own organization row and no other. No DELETE (purging an organization is the owner's), and
-- UPDATE only of the columns the library changes: id and created_at stay the owner's; updated_at is set by
-- the trigger, which needs no column privilege.
GRANT INSERT ON "organizations" TO callsheet_app;
--> statement-breakpoint
GRANT UPDATE ("name", "slug", "settings", "deleted_at") ON "organizations" TO callsheet_app;
