-- Apps' own tenant tables, with the library's guarantees (issue 18). An app creates its table with
-- drizzle-kit (tenantTable() in @callsheet/db/schema: id, organization_id, the timestamps, the primary
-- key (organization_id, id) and the tenant_isolation policy) and adds one step to its own custom migration:
--   SELECT callsheet_register_tenant_table('call_times');
-- which checks the table's shape, forces row-level security, ensures the policy is exactly ours and the
-- only one, installs the library's updated_at and audit triggers, grants the app role what it needs and
-- records the table, so that doctor, stats and monitoring know it. It may run again at any time (after a
-- drizzle-kit migration recreated a trigger or a grant was lost): every step converges.
--
-- Errors, each with its own SQLSTATE, so that a migration tool or a test can tell them apart:
--   42809 not an ordinary or partitioned table (a view, a sequence, …), or a partition of one
--   0A000 not in schema public (the audit trail, doctor and the Citus rules know tables by name in public)
--   42939 one of the library's own tables
--   42622 name longer than 48 characters (its trigger names would be truncated and collide)
--   42501 callsheet_app owns the table or is a member of its owner (it could turn RLS off)
--   42703 a required column is missing; 42804 one has the wrong type or is nullable
--   42P16 no primary key led by organization_id that includes id
--   42710 a policy other than tenant_isolation, or a tenant_isolation that is not exactly the library's
--   55000 public.contacts has no tenant_isolation policy to compare with (the library is not migrated)
--
-- The registry lives with the migrations bookkeeping: owner only, out of `public` (so neither an app's
-- drizzle-kit nor the Citus distribution rules see it). ensureMigrationsTable() creates the schema before
-- any migration runs; IF NOT EXISTS keeps this one step safe when drizzle-kit migrate runs it instead.
CREATE SCHEMA IF NOT EXISTS "callsheet_migrations";
--> statement-breakpoint
REVOKE ALL ON SCHEMA "callsheet_migrations" FROM PUBLIC;
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "callsheet_migrations"."tenant_tables" (
	"table_schema" text NOT NULL,
	"table_name" text NOT NULL,
	"registered_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tenant_tables_pkey" PRIMARY KEY ("table_schema", "table_name")
);
--> statement-breakpoint
REVOKE ALL ON TABLE "callsheet_migrations"."tenant_tables" FROM PUBLIC;
--> statement-breakpoint
COMMENT ON TABLE "callsheet_migrations"."tenant_tables" IS 'App tables registered by callsheet_register_tenant_table(): doctor, stats and monitoring check and report them. A row whose table is gone is reported by doctor. Owner only.';
--> statement-breakpoint
-- SECURITY INVOKER: it does only what its caller, the table's owner running its migration, may do
-- (ALTER TABLE, CREATE TRIGGER on the library's trigger functions, GRANT, the registry's INSERT). Pinned
-- path: regclass and pg_get_expr print names qualified, every relation is named with its schema.
CREATE FUNCTION "public"."callsheet_register_tenant_table"(p_table regclass)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_schema text;
  v_name text;
  v_kind "char";
  v_partition boolean;
  v_owner oid;
  v_rel text;
  v_col record;
  v_id smallint;
  v_org smallint;
  v_pk smallint[];
  v_ours record;
  v_policy record;
  v_trigger text;
  v_library constant text[] := ARRAY['organizations', 'users', 'departments', 'productions', 'contacts', 'uploads', 'api_keys', 'audit_logs'];
BEGIN
  IF p_table IS NULL THEN
    RAISE EXCEPTION 'callsheet_register_tenant_table needs a table' USING ERRCODE = '22004';
  END IF;
  SELECT n.nspname, c.relname, c.relkind, c.relispartition, c.relowner
    INTO v_schema, v_name, v_kind, v_partition, v_owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = p_table;
  v_rel := format('%I.%I', v_schema, v_name);
  IF v_kind NOT IN ('r', 'p') OR v_partition THEN
    RAISE EXCEPTION '% is not an ordinary or partitioned table (or it is a partition): only tables can be tenant tables', v_rel
      USING ERRCODE = '42809', HINT = 'register the table itself (a partitioned one by its parent)';
  END IF;
  IF v_schema <> 'public' THEN
    RAISE EXCEPTION '% is not in schema public: tenant tables of apps must be in public', v_rel
      USING ERRCODE = '0A000',
            DETAIL = 'the audit trail records a table by its name alone, and doctor, stats and monitoring look in public';
  END IF;
  IF v_name = ANY (v_library) THEN
    RAISE EXCEPTION '% is one of @callsheet/db''s own tables: its migrations manage it', v_rel USING ERRCODE = '42939';
  END IF;
  IF length(v_name) > 48 THEN
    RAISE EXCEPTION 'the name of % is longer than 48 characters: its trigger names (<table>_set_updated_at) would be truncated', v_rel
      USING ERRCODE = '42622';
  END IF;
  IF pg_has_role('callsheet_app', v_owner, 'USAGE') THEN
    RAISE EXCEPTION '% is owned by %, which callsheet_app is or is a member of: the app role could turn its row-level security off', v_rel, pg_get_userbyid(v_owner)
      USING ERRCODE = '42501', HINT = 'make the migrating role (the owner of the library''s tables) its owner';
  END IF;

  -- The columns the policy, the triggers and the audit trail read, with the types they read them as.
  FOR v_col IN
    SELECT r.name, r.type, a.attnum, a.atttypid, a.attnotnull
    FROM (VALUES ('id', 'uuid'::regtype), ('organization_id', 'uuid'), ('created_at', 'timestamptz'), ('updated_at', 'timestamptz')) AS r(name, type)
    LEFT JOIN pg_attribute a ON a.attrelid = p_table AND a.attname = r.name AND a.attnum > 0 AND NOT a.attisdropped
  LOOP
    IF v_col.attnum IS NULL THEN
      RAISE EXCEPTION '% has no column %: a tenant table needs id uuid, organization_id uuid, created_at and updated_at timestamptz', v_rel, v_col.name
        USING ERRCODE = '42703';
    END IF;
    IF v_col.atttypid <> v_col.type::oid THEN
      RAISE EXCEPTION 'column %.% is %, not %', v_rel, v_col.name, format_type(v_col.atttypid, NULL), format_type(v_col.type, NULL)
        USING ERRCODE = '42804';
    END IF;
    IF v_col.name IN ('id', 'organization_id') AND NOT v_col.attnotnull THEN
      RAISE EXCEPTION 'column %.% must be NOT NULL', v_rel, v_col.name USING ERRCODE = '42804';
    END IF;
    IF v_col.name = 'id' THEN v_id := v_col.attnum; END IF;
    IF v_col.name = 'organization_id' THEN v_org := v_col.attnum; END IF;
  END LOOP;

  -- PRIMARY KEY (organization_id, id …): a row is found within its tenant, and Citus can distribute it.
  SELECT k.conkey INTO v_pk FROM pg_constraint k WHERE k.conrelid = p_table AND k.contype = 'p';
  IF v_pk IS NULL OR v_pk[1] <> v_org OR NOT v_id = ANY (v_pk) THEN
    RAISE EXCEPTION '% needs a primary key led by organization_id that includes id, e.g. PRIMARY KEY (organization_id, id)', v_rel
      USING ERRCODE = '42P16';
  END IF;

  -- The policy: exactly the one on public.contacts (whatever its text: pg_get_expr prints both the same
  -- way), permissive, for all commands, to PUBLIC, and no other policy (a second permissive one would OR
  -- its rows in; a restrictive one is the app's business we cannot vouch for).
  SELECT pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck
    INTO v_ours
    FROM pg_policy p WHERE p.polrelid = 'public.contacts'::regclass AND p.polname = 'tenant_isolation';
  IF v_ours.qual IS NULL OR v_ours.withcheck IS NULL THEN
    RAISE EXCEPTION 'public.contacts has no tenant_isolation policy to copy: run the library''s migrations first' USING ERRCODE = '55000';
  END IF;
  FOR v_policy IN
    SELECT p.polname, p.polpermissive, p.polcmd, p.polroles,
           pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck
    FROM pg_policy p WHERE p.polrelid = p_table
  LOOP
    IF v_policy.polname <> 'tenant_isolation' THEN
      RAISE EXCEPTION '% has policy %: a tenant table has exactly one, tenant_isolation', v_rel, quote_ident(v_policy.polname)
        USING ERRCODE = '42710', HINT = 'a second permissive policy widens what a tenant sees; drop it';
    END IF;
    IF NOT (v_policy.polpermissive AND v_policy.polcmd = '*' AND v_policy.polroles = ARRAY[0::oid]
            AND v_policy.qual = v_ours.qual AND v_policy.withcheck = v_ours.withcheck) THEN
      RAISE EXCEPTION 'policy tenant_isolation on % is not the library''s (permissive, FOR ALL, TO public, USING and WITH CHECK %)', v_rel, v_ours.qual
        USING ERRCODE = '42710', HINT = 'drop it (callsheet_register_tenant_table creates it), or declare the table with tenantTable()';
    END IF;
  END LOOP;
  IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = p_table) THEN
    EXECUTE format('CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)',
                   v_rel, v_ours.qual, v_ours.withcheck);
  END IF;
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_rel);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', v_rel);

  -- The triggers, made as migration 0015 makes ours; dropped first so that a disabled or altered one is
  -- replaced by the library's, enabled.
  FOREACH v_trigger IN ARRAY ARRAY['set_updated_at', 'audit_insert', 'audit_update', 'audit_delete'] LOOP
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p_table AND t.tgname = v_name || '_' || v_trigger) THEN
      EXECUTE format('DROP TRIGGER %I ON %s', v_name || '_' || v_trigger, v_rel);
    END IF;
  END LOOP;
  EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION public.callsheet_set_updated_at(%L)',
                 v_name || '_set_updated_at', v_rel, v_name);
  EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.callsheet_audit(%L)',
                 v_name || '_audit_insert', v_rel, v_name);
  EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.callsheet_audit(%L)',
                 v_name || '_audit_update', v_rel, v_name);
  EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.callsheet_audit(%L)',
                 v_name || '_audit_delete', v_rel, v_name);

  -- What the app role needs, and nothing that skips row-level security: TRUNCATE ignores policies,
  -- TRIGGER would let it run code as whoever writes the table, REFERENCES probe other tenants' keys.
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO callsheet_app', v_rel);
  EXECUTE format('REVOKE TRUNCATE, TRIGGER, REFERENCES ON %s FROM PUBLIC, callsheet_app', v_rel);

  INSERT INTO callsheet_migrations.tenant_tables (table_schema, table_name) VALUES (v_schema, v_name)
    ON CONFLICT (table_schema, table_name) DO NOTHING;
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION "public"."callsheet_register_tenant_table"(regclass) IS 'Gives an app''s table the guarantees of @callsheet/db''s tenant tables (forced RLS, tenant_isolation, updated_at and audit triggers, grants) and registers it. Idempotent. Run as the table''s owner in the app''s migration.';
--> statement-breakpoint
-- Only the migrating role (the function's owner) and those it grants it to may call it; the app role never.
REVOKE ALL ON FUNCTION "public"."callsheet_register_tenant_table"(regclass) FROM PUBLIC;
