-- A live row carries no cascade tag. Until this migration's release, restoring a contact or upload on its own left
-- the tag of the production whose soft delete had taken it along, and the production's restore later
-- brought that row back even after it had been deleted again on its own. Existing live rows lose a
-- stale tag first (audited like any change), then the database refuses a live row with a tag.
UPDATE "contacts" SET "deleted_with" = NULL WHERE "deleted_at" IS NULL AND "deleted_with" IS NOT NULL;--> statement-breakpoint
UPDATE "uploads" SET "deleted_with" = NULL WHERE "deleted_at" IS NULL AND "deleted_with" IS NOT NULL;--> statement-breakpoint
-- Lint exception (pre-0.1.0 baseline): every database runs this in the transaction that creates
-- contacts and uploads (migrate() applies the pending migrations in one transaction), so they are empty and no other
-- session can see them: there is no lock to contend for.
-- squawk-ignore-file constraint-missing-not-valid
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_deleted_with_only_deleted" CHECK ("contacts"."deleted_with" is null or "contacts"."deleted_at" is not null);--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_deleted_with_only_deleted" CHECK ("uploads"."deleted_with" is null or "uploads"."deleted_at" is not null);
