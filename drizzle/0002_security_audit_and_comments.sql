-- What drizzle-kit cannot express: FORCE ROW LEVEL SECURITY, the partitioned audit log, grants,
-- the updated_at trigger, partition maintenance and table comments.

-- FORCE makes the policies bind the table owner too; only superusers and BYPASSRLS roles skip them.
ALTER TABLE "users" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "departments" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "productions" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "contacts" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "uploads" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "api_keys" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE TABLE "audit_logs" (
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"action" text NOT NULL,
	"entity_type" text NOT NULL,
	"entity_id" uuid NOT NULL,
	"old_values" jsonb,
	"new_values" jsonb,
	"user_id" uuid,
	"api_key_id" uuid,
	"ip_address" inet,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "audit_logs_pkey" PRIMARY KEY ("id", "created_at"),
	CONSTRAINT "audit_logs_action_check" CHECK ("action" in ('insert', 'update', 'soft_delete', 'restore', 'purge')),
	CONSTRAINT "audit_logs_request_id_length" CHECK ("request_id" is null or char_length("request_id") <= 200)
) PARTITION BY RANGE ("created_at");
--> statement-breakpoint
-- No insert ever fails for want of a partition: rows outside every month land here and are moved
-- into their month when callsheet_ensure_audit_partitions creates it.
CREATE TABLE "audit_logs_default" PARTITION OF "audit_logs" DEFAULT;
--> statement-breakpoint
CREATE INDEX "audit_logs_entity_idx" ON "audit_logs" USING btree ("organization_id", "entity_type", "entity_id", "created_at");
--> statement-breakpoint
CREATE INDEX "audit_logs_organization_created_idx" ON "audit_logs" USING btree ("organization_id", "created_at");
--> statement-breakpoint
CREATE INDEX "audit_logs_user_idx" ON "audit_logs" USING btree ("organization_id", "user_id", "created_at");
--> statement-breakpoint
ALTER TABLE "audit_logs" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "audit_logs" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
-- Policies on a partitioned parent apply to every query through the parent; partitions are never
-- granted to the app role, so it cannot go around them.
CREATE POLICY "tenant_isolation" ON "audit_logs" AS PERMISSIVE FOR ALL TO public
  USING ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid))
  WITH CHECK ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid));
--> statement-breakpoint
CREATE FUNCTION "callsheet_set_updated_at"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "organizations_set_updated_at" BEFORE UPDATE ON "organizations" FOR EACH ROW EXECUTE FUNCTION "callsheet_set_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "users_set_updated_at" BEFORE UPDATE ON "users" FOR EACH ROW EXECUTE FUNCTION "callsheet_set_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "departments_set_updated_at" BEFORE UPDATE ON "departments" FOR EACH ROW EXECUTE FUNCTION "callsheet_set_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "productions_set_updated_at" BEFORE UPDATE ON "productions" FOR EACH ROW EXECUTE FUNCTION "callsheet_set_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "contacts_set_updated_at" BEFORE UPDATE ON "contacts" FOR EACH ROW EXECUTE FUNCTION "callsheet_set_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "uploads_set_updated_at" BEFORE UPDATE ON "uploads" FOR EACH ROW EXECUTE FUNCTION "callsheet_set_updated_at"();
--> statement-breakpoint
CREATE TRIGGER "api_keys_set_updated_at" BEFORE UPDATE ON "api_keys" FOR EACH ROW EXECUTE FUNCTION "callsheet_set_updated_at"();
--> statement-breakpoint
-- Creates the monthly partitions from p_from's month through p_months_ahead months later. Idempotent.
-- Rows that already sit in the DEFAULT partition for a month being created are moved into it in the
-- same transaction (PostgreSQL refuses to create a partition whose rows are in DEFAULT).
CREATE FUNCTION "callsheet_ensure_audit_partitions"(p_months_ahead integer DEFAULT 3, p_from date DEFAULT current_date)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
  month_start date;
  month_end date;
  part_name text;
  moved bigint;
BEGIN
  IF p_months_ahead < 0 OR p_months_ahead > 120 THEN
    RAISE EXCEPTION 'p_months_ahead must be between 0 and 120, got %', p_months_ahead USING ERRCODE = '22023';
  END IF;
  FOR i IN 0..p_months_ahead LOOP
    month_start := (date_trunc('month', p_from) + make_interval(months => i))::date;
    month_end := (month_start + interval '1 month')::date;
    part_name := format('audit_logs_%s', to_char(month_start, 'YYYY_MM'));
    CONTINUE WHEN to_regclass(format('public.%I', part_name)) IS NOT NULL;
    LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE;
    CREATE TEMP TABLE IF NOT EXISTS callsheet_audit_moving (LIKE audit_logs) ON COMMIT DROP;
    WITH gone AS (
      DELETE FROM audit_logs_default
      WHERE created_at >= month_start AND created_at < month_end
      RETURNING *
    )
    INSERT INTO callsheet_audit_moving SELECT * FROM gone;
    GET DIAGNOSTICS moved = ROW_COUNT;
    EXECUTE format(
      'CREATE TABLE public.%I PARTITION OF public.audit_logs FOR VALUES FROM (%L) TO (%L)',
      part_name, month_start, month_end
    );
    IF moved > 0 THEN
      INSERT INTO audit_logs SELECT * FROM callsheet_audit_moving;
      TRUNCATE callsheet_audit_moving;
    END IF;
    RETURN NEXT part_name;
  END LOOP;
END
$$;
--> statement-breakpoint
-- The app role works through the tables only, under RLS. audit_logs is append-only for it.
GRANT USAGE ON SCHEMA public TO callsheet_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON "users", "departments", "productions", "contacts", "uploads", "api_keys" TO callsheet_app;
--> statement-breakpoint
GRANT SELECT ON "organizations" TO callsheet_app;
--> statement-breakpoint
GRANT SELECT, INSERT ON "audit_logs" TO callsheet_app;
--> statement-breakpoint
REVOKE ALL ON FUNCTION "callsheet_ensure_audit_partitions"(integer, date) FROM PUBLIC;
--> statement-breakpoint
COMMENT ON TABLE "organizations" IS 'Tenants. Created and listed by the privileged path; the app role sees only the organization of its tenant context.';
--> statement-breakpoint
COMMENT ON TABLE "users" IS 'People who sign in to an organization. Soft-deletable; e-mail unique per organization among live rows.';
--> statement-breakpoint
COMMENT ON TABLE "departments" IS 'Production departments (Camera, Grip, …) of an organization. Soft-deletable; code unique per organization among live rows.';
--> statement-breakpoint
COMMENT ON TABLE "productions" IS 'Films, series and shoots of an organization. Soft-deleting one soft-deletes its contacts and uploads.';
--> statement-breakpoint
COMMENT ON TABLE "contacts" IS 'Crew and cast of a production, typed in or extracted from an uploaded call sheet. Soft-deletable; trigram-indexed names.';
--> statement-breakpoint
COMMENT ON TABLE "uploads" IS 'Uploaded call sheets and the JSONB result of extracting contacts from them.';
--> statement-breakpoint
COMMENT ON TABLE "api_keys" IS 'API keys for machine access: only the SHA-256 of a key is stored. Revoked, never soft-deleted.';
--> statement-breakpoint
COMMENT ON TABLE "audit_logs" IS 'Append-only audit trail written by triggers in the same transaction as each change. Partitioned by month on created_at.';
