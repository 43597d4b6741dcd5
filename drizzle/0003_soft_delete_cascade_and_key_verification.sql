ALTER TABLE "contacts" ADD COLUMN "deleted_with" uuid;--> statement-breakpoint
ALTER TABLE "uploads" ADD COLUMN "deleted_with" uuid;--> statement-breakpoint
CREATE POLICY "api_key_verification" ON "api_keys" AS PERMISSIVE FOR SELECT TO public USING ("key_hash" = (select nullif(current_setting('app.api_key_hash', true), '')));