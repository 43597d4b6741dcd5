-- Extensions first: the tables that follow use citext columns and gin_trgm_ops indexes.
-- Both are trusted extensions (PostgreSQL 13+), so a database owner without superuser can create them.
CREATE EXTENSION IF NOT EXISTS citext;
--> statement-breakpoint
CREATE EXTENSION IF NOT EXISTS pg_trgm;
--> statement-breakpoint
-- The app role is cluster-wide: a second database in the same cluster must not fail here, and two
-- databases migrating at once must not either (CREATE ROLE has no IF NOT EXISTS).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'callsheet_app') THEN
    BEGIN
      CREATE ROLE callsheet_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
END
$$;
--> statement-breakpoint
-- The migrating (owning) role switches to the app role inside tenant transactions, so it must be a member.
DO $$
BEGIN
  IF NOT pg_has_role(current_user, 'callsheet_app', 'MEMBER') THEN
    EXECUTE format('GRANT callsheet_app TO %I', current_user);
  END IF;
END
$$;
