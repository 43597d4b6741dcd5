CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"key_hash" text NOT NULL,
	"scopes" text[] DEFAULT '{}'::text[] NOT NULL,
	"last_used_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "api_keys_key_hash_format" CHECK ("api_keys"."key_hash" ~ '^[0-9a-f]{64}$'),
	CONSTRAINT "api_keys_prefix_format" CHECK ("api_keys"."prefix" ~ '^[A-Za-z0-9_]{4,32}$'),
	CONSTRAINT "api_keys_name_length" CHECK (char_length("api_keys"."name") between 1 and 200),
	CONSTRAINT "api_keys_scopes_count" CHECK (cardinality("api_keys"."scopes") <= 64)
);
--> statement-breakpoint
ALTER TABLE "api_keys" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "contacts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"production_id" uuid NOT NULL,
	"department_id" uuid,
	"upload_id" uuid,
	"name" text NOT NULL,
	"email" "citext",
	"phone" text,
	"role" text,
	"extraction_confidence" numeric(3, 2),
	"notes" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "contacts_confidence_range" CHECK ("contacts"."extraction_confidence" is null or "contacts"."extraction_confidence" between 0 and 1),
	CONSTRAINT "contacts_name_length" CHECK (char_length("contacts"."name") between 1 and 200),
	CONSTRAINT "contacts_email_format" CHECK ("contacts"."email" is null or (char_length("contacts"."email") <= 320 and "contacts"."email" ~ '^[^@[:space:]]+@[^@[:space:]]+$')),
	CONSTRAINT "contacts_phone_length" CHECK ("contacts"."phone" is null or char_length("contacts"."phone") <= 50),
	CONSTRAINT "contacts_role_length" CHECK ("contacts"."role" is null or char_length("contacts"."role") <= 200),
	CONSTRAINT "contacts_notes_length" CHECK ("contacts"."notes" is null or char_length("contacts"."notes") <= 10000)
);
--> statement-breakpoint
ALTER TABLE "contacts" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "departments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"name" text NOT NULL,
	"code" text NOT NULL,
	-- Lint exception: sort_order is a position in a department list, never an identifier or a counter;
	-- a 32-bit integer is ample.
	-- squawk-ignore prefer-bigint-over-int
	"sort_order" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "departments_organization_id_id_key" UNIQUE("organization_id","id"),
	CONSTRAINT "departments_code_format" CHECK ("departments"."code" ~ '^[A-Za-z0-9_-]{1,50}$'),
	CONSTRAINT "departments_name_length" CHECK (char_length("departments"."name") between 1 and 200)
);
--> statement-breakpoint
ALTER TABLE "departments" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "organizations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"slug" text NOT NULL,
	"settings" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "organizations_slug_format" CHECK ("organizations"."slug" ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length("organizations"."slug") <= 63),
	CONSTRAINT "organizations_name_length" CHECK (char_length("organizations"."name") between 1 and 200)
);
--> statement-breakpoint
ALTER TABLE "organizations" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "productions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"title" text NOT NULL,
	"code" text,
	"status" text DEFAULT 'development' NOT NULL,
	"start_date" date,
	"end_date" date,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "productions_organization_id_id_key" UNIQUE("organization_id","id"),
	CONSTRAINT "productions_status_check" CHECK ("productions"."status" in ('development', 'pre_production', 'production', 'post_production', 'wrapped')),
	CONSTRAINT "productions_dates_check" CHECK ("productions"."end_date" is null or "productions"."start_date" is null or "productions"."end_date" >= "productions"."start_date"),
	CONSTRAINT "productions_title_length" CHECK (char_length("productions"."title") between 1 and 300),
	CONSTRAINT "productions_code_format" CHECK ("productions"."code" is null or "productions"."code" ~ '^[A-Za-z0-9_-]{1,50}$')
);
--> statement-breakpoint
ALTER TABLE "productions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "uploads" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"production_id" uuid NOT NULL,
	"uploaded_by" uuid,
	"file_name" text NOT NULL,
	"mime_type" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	"checksum_sha256" text NOT NULL,
	"storage_key" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"extraction_result" jsonb,
	"extraction_confidence" numeric(3, 2),
	"error" text,
	"processed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "uploads_organization_id_id_key" UNIQUE("organization_id","id"),
	CONSTRAINT "uploads_status_check" CHECK ("uploads"."status" in ('pending', 'processing', 'completed', 'failed')),
	CONSTRAINT "uploads_size_check" CHECK ("uploads"."size_bytes" >= 0),
	CONSTRAINT "uploads_checksum_format" CHECK ("uploads"."checksum_sha256" ~ '^[0-9a-f]{64}$'),
	CONSTRAINT "uploads_confidence_range" CHECK ("uploads"."extraction_confidence" is null or "uploads"."extraction_confidence" between 0 and 1),
	CONSTRAINT "uploads_file_name_length" CHECK (char_length("uploads"."file_name") between 1 and 255),
	CONSTRAINT "uploads_mime_type_length" CHECK (char_length("uploads"."mime_type") between 1 and 255),
	CONSTRAINT "uploads_storage_key_length" CHECK (char_length("uploads"."storage_key") between 1 and 1024),
	CONSTRAINT "uploads_error_length" CHECK ("uploads"."error" is null or char_length("uploads"."error") <= 10000)
);
--> statement-breakpoint
ALTER TABLE "uploads" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"email" "citext" NOT NULL,
	"name" text NOT NULL,
	"role" text DEFAULT 'member' NOT NULL,
	"is_active" boolean DEFAULT true NOT NULL,
	"last_login_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "users_organization_id_id_key" UNIQUE("organization_id","id"),
	CONSTRAINT "users_role_check" CHECK ("users"."role" in ('owner', 'admin', 'member')),
	CONSTRAINT "users_email_format" CHECK (char_length("users"."email") <= 320 and "users"."email" ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
	CONSTRAINT "users_name_length" CHECK (char_length("users"."name") between 1 and 200)
);
--> statement-breakpoint
ALTER TABLE "users" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_organization_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_created_by_fk" FOREIGN KEY ("organization_id","created_by") REFERENCES "public"."users"("organization_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_organization_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_production_fk" FOREIGN KEY ("organization_id","production_id") REFERENCES "public"."productions"("organization_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_department_fk" FOREIGN KEY ("organization_id","department_id") REFERENCES "public"."departments"("organization_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_upload_fk" FOREIGN KEY ("organization_id","upload_id") REFERENCES "public"."uploads"("organization_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "departments" ADD CONSTRAINT "departments_organization_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "productions" ADD CONSTRAINT "productions_organization_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "productions" ADD CONSTRAINT "productions_created_by_fk" FOREIGN KEY ("organization_id","created_by") REFERENCES "public"."users"("organization_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_organization_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_production_fk" FOREIGN KEY ("organization_id","production_id") REFERENCES "public"."productions"("organization_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_uploaded_by_fk" FOREIGN KEY ("organization_id","uploaded_by") REFERENCES "public"."users"("organization_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_organization_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE INDEX "api_keys_organization_idx" ON "api_keys" USING btree ("organization_id","created_at");--> statement-breakpoint
CREATE INDEX "api_keys_created_by_idx" ON "api_keys" USING btree ("organization_id","created_by");--> statement-breakpoint
CREATE INDEX "contacts_production_idx" ON "contacts" USING btree ("organization_id","production_id","created_at");--> statement-breakpoint
CREATE INDEX "contacts_department_idx" ON "contacts" USING btree ("organization_id","department_id");--> statement-breakpoint
CREATE INDEX "contacts_upload_idx" ON "contacts" USING btree ("organization_id","upload_id");--> statement-breakpoint
CREATE INDEX "contacts_email_idx" ON "contacts" USING btree ("organization_id","email") WHERE "contacts"."deleted_at" is null and "contacts"."email" is not null;--> statement-breakpoint
CREATE INDEX "contacts_name_trgm_idx" ON "contacts" USING gin ("name" gin_trgm_ops);--> statement-breakpoint
CREATE UNIQUE INDEX "departments_code_live_key" ON "departments" USING btree ("organization_id","code") WHERE "departments"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "departments_organization_sort_idx" ON "departments" USING btree ("organization_id","sort_order");--> statement-breakpoint
CREATE UNIQUE INDEX "organizations_slug_live_key" ON "organizations" USING btree ("slug") WHERE "organizations"."deleted_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "productions_code_live_key" ON "productions" USING btree ("organization_id","code") WHERE "productions"."deleted_at" is null and "productions"."code" is not null;--> statement-breakpoint
CREATE INDEX "productions_created_by_idx" ON "productions" USING btree ("organization_id","created_by");--> statement-breakpoint
CREATE INDEX "productions_organization_created_idx" ON "productions" USING btree ("organization_id","created_at");--> statement-breakpoint
CREATE INDEX "productions_title_trgm_idx" ON "productions" USING gin ("title" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "uploads_production_idx" ON "uploads" USING btree ("organization_id","production_id","created_at");--> statement-breakpoint
CREATE INDEX "uploads_uploaded_by_idx" ON "uploads" USING btree ("organization_id","uploaded_by");--> statement-breakpoint
CREATE INDEX "uploads_status_idx" ON "uploads" USING btree ("organization_id","status") WHERE "uploads"."deleted_at" is null and "uploads"."status" in ('pending', 'processing');--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_live_key" ON "users" USING btree ("organization_id","email") WHERE "users"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "users_organization_created_idx" ON "users" USING btree ("organization_id","created_at");--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "api_keys" AS PERMISSIVE FOR ALL TO public USING ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid)) WITH CHECK ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "contacts" AS PERMISSIVE FOR ALL TO public USING ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid)) WITH CHECK ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "departments" AS PERMISSIVE FOR ALL TO public USING ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid)) WITH CHECK ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "organizations" AS PERMISSIVE FOR ALL TO public USING ("id" = (select nullif(current_setting('app.organization_id', true), '')::uuid)) WITH CHECK ("id" = (select nullif(current_setting('app.organization_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "productions" AS PERMISSIVE FOR ALL TO public USING ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid)) WITH CHECK ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "uploads" AS PERMISSIVE FOR ALL TO public USING ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid)) WITH CHECK ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid));--> statement-breakpoint
CREATE POLICY "tenant_isolation" ON "users" AS PERMISSIVE FOR ALL TO public USING ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid)) WITH CHECK ("organization_id" = (select nullif(current_setting('app.organization_id', true), '')::uuid));