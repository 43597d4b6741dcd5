-- btree_gin lets one GIN index hold organization_id next to the trigrams of a name, so a tenant's
-- fuzzy search is one index scan over that tenant's entries instead of a scan of the tenant's rows.
-- Trusted since PostgreSQL 13: a database owner can create it.
CREATE EXTENSION IF NOT EXISTS btree_gin;
