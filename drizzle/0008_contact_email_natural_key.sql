-- Lint exception (pre-0.1.0 baseline): every database runs this in the transaction that creates
-- contacts (migrate() applies the pending migrations in one transaction), so it is empty and no other
-- session can see it: there is no lock to contend for.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX "contacts_email_live_key" ON "contacts" USING btree ("organization_id","production_id","email") WHERE "contacts"."deleted_at" is null and "contacts"."email" is not null;