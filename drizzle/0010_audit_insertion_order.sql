-- History is read newest first by (created_at, id). Two changes of one row in consecutive transactions
-- can share a created_at (PGlite's clock is coarse; a fast server can also tie), and with a random
-- UUIDv4 id their order was then a coin toss: a contact's history could read [soft_delete, insert].
-- Audit ids now begin with 48 bits of a sequence, in insertion order, followed by the random rest of a
-- v4 UUID (version and variant bits untouched). uuid compares bytewise, so (created_at, id) follows the
-- order the changes were written; the column stays a uuid, and cursors and the primary key are unchanged.
-- The sequence cycles after 2^48 ids; a tie would then need a wrap within one clock tick.
CREATE SEQUENCE "callsheet_audit_order" AS bigint MAXVALUE 281474976710655 CYCLE;
--> statement-breakpoint
ALTER TABLE "audit_logs" ALTER COLUMN "id" SET DEFAULT (encode(overlay(uuid_send(gen_random_uuid()) PLACING substring(int8send(nextval('callsheet_audit_order')) FROM 3 FOR 6) FROM 1 FOR 6), 'hex'))::uuid;
