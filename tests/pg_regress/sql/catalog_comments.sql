-- Every table, view and function of the extension has a COMMENT (what \d+ and \df+ show).
SELECT c.relname AS without_comment FROM pg_class c
 WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'v')
   AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT p.oid::regprocedure::text FROM pg_proc p
 WHERE p.pronamespace = 'journey'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
-- and there is something to check
SELECT (SELECT count(*) > 10 FROM pg_class WHERE relnamespace = 'journey'::regnamespace AND relkind IN ('r', 'v')) AS tables_and_views,
       (SELECT count(*) > 10 FROM pg_proc WHERE pronamespace = 'journey'::regnamespace) AS functions;
