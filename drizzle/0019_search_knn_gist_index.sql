-- contacts.search at scale (issue 20): the GIN trigram index answered `name % text` with every name that
-- shares a few trigrams with the text (median 2,500, p95 9,900 candidates in a 200,000-contact tenant), each
-- fetched from the heap and rechecked. A GiST trigram index keeps every name's trigrams in its leaves and
-- returns the tenant's names nearest first (KNN: ORDER BY name <-> text LIMIT n), so a search reads its top
-- hits and stops; the threshold filters those hits instead of choosing the candidates. organization_id leads
-- (btree_gist gives uuid a GiST opclass) so a search reads only its tenant's part of the index, on a shard of
-- its own under Citus too. siglen=256: with the default 12-byte signature the inner pages of a 200,000-name
-- tenant are all-ones and a KNN scan reads the whole tenant (bench/suites/search.ts, BENCHMARKS.md "search").
-- Only live rows: every search filters on deleted_at IS NULL, so deleted contacts need no index entries.
--
-- btree_gist is a trusted extension (PostgreSQL 13+): a database owner creates it without superuser. PGlite
-- loads it with pgliteExtensions; Citus propagates CREATE EXTENSION to every node.
--
-- TODO(lead): on a populated database build this CONCURRENTLY, outside the transaction (the migrator's
-- marker comment for that is in review): a plain CREATE INDEX blocks writes to contacts while it builds
-- (measured: ~35-95 s for 1,000,000 contacts on 2 busy cores).
CREATE EXTENSION IF NOT EXISTS btree_gist;
--> statement-breakpoint
DROP INDEX "contacts_name_trgm_idx";--> statement-breakpoint
CREATE INDEX "contacts_name_trgm_idx" ON "contacts" USING gist ("organization_id","name" gist_trgm_ops(siglen=256)) WHERE "contacts"."deleted_at" is null;
