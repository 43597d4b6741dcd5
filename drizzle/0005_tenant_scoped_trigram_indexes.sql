-- Lint exception (pre-0.1.0 baseline): every database runs this in the transaction that creates
-- contacts and productions (migrate() applies the pending migrations in one transaction), so they are empty and no other
-- session can see them: there is no lock to contend for.
-- squawk-ignore-file require-concurrent-index-deletion, require-concurrent-index-creation
DROP INDEX "contacts_name_trgm_idx";--> statement-breakpoint
DROP INDEX "productions_title_trgm_idx";--> statement-breakpoint
CREATE INDEX "contacts_name_trgm_idx" ON "contacts" USING gin ("organization_id","name" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "productions_title_trgm_idx" ON "productions" USING gin ("organization_id","title" gin_trgm_ops);