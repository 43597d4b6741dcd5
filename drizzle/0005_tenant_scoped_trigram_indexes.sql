DROP INDEX "contacts_name_trgm_idx";--> statement-breakpoint
DROP INDEX "productions_title_trgm_idx";--> statement-breakpoint
CREATE INDEX "contacts_name_trgm_idx" ON "contacts" USING gin ("organization_id","name" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "productions_title_trgm_idx" ON "productions" USING gin ("organization_id","title" gin_trgm_ops);