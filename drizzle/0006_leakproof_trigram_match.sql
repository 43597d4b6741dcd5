-- Under row-level security PostgreSQL evaluates a non-LEAKPROOF operator only after the policy, so
-- it cannot use pg_trgm's `%` (similarity_op) as an index condition: a tenant's fuzzy search would
-- read every row of the tenant instead of the trigram index. similarity_op returns a boolean and
-- raises no error that depends on its arguments, so it reveals nothing but its result: it is
-- leakproof in fact. Only a superuser may declare it; when the migrating role is not one, search
-- stays correct but slower, and a superuser can run the ALTER below later.
DO $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION similarity_op(text, text) LEAKPROOF;
  ELSE
    RAISE NOTICE 'not a superuser: run ALTER FUNCTION similarity_op(text, text) LEAKPROOF as one so that tenant fuzzy search can use its trigram index';
  END IF;
END
$$;
