-- Run as the superuser after an attacker's session (psql variable :attacker): did the attack
-- work? Then reset for the next attacker.
\c - postgres
SET client_min_messages = warning;
-- the attacker is still no superuser
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = :'attacker';
-- the hostile code ran (the trap was armed) but never as anyone but the attacker
SELECT count(*) > 0 AS hostile_code_ran_as_attacker FROM public.hostile_log WHERE attacker = :'attacker' AND ran_as = attacker;
SELECT attacker, ran_as, via FROM public.hostile_log WHERE ran_as <> attacker ORDER BY 1, 2, 3;
-- which SECURITY DEFINER functions the attacker's session reached (calls since the last check;
-- the attacker flushed its statistics with pg_stat_force_next_flush() before leaving)
SELECT pg_stat_clear_snapshot();
SELECT p.oid::regprocedure AS definer_function, coalesce(s.calls, 0) > coalesce(b.calls, 0) AS reached
  FROM pg_proc p
  LEFT JOIN pg_stat_user_functions s ON s.funcid = p.oid
  LEFT JOIN definer_calls_before b ON b.funcid = p.oid
 WHERE p.pronamespace = 'journey'::regnamespace AND p.prosecdef
 ORDER BY p.oid::regprocedure::text;
INSERT INTO definer_calls_reached SELECT s.funcid FROM pg_stat_user_functions s
  LEFT JOIN definer_calls_before b ON b.funcid = s.funcid WHERE s.calls > coalesce(b.calls, 0);
TRUNCATE definer_calls_before;
INSERT INTO definer_calls_before SELECT funcid, calls FROM pg_stat_user_functions;
-- the attacker's objects in public go (its pg_temp ones went with its session)
SET hostile.attacker = :'attacker';
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT o.oid::regoperator AS op FROM pg_operator o
              WHERE o.oprnamespace = 'public'::regnamespace AND o.oprowner = current_setting('hostile.attacker')::regrole LOOP
        EXECUTE format('DROP OPERATOR %s', r.op);
    END LOOP;
    FOR r IN SELECT t.oid::regtype AS typ FROM pg_type t
              WHERE t.typnamespace = 'public'::regnamespace AND t.typowner = current_setting('hostile.attacker')::regrole
                AND t.typtype = 'd' LOOP
        EXECUTE format('DROP DOMAIN %s', r.typ);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace AND p.proowner = current_setting('hostile.attacker')::regrole LOOP
        EXECUTE format('DROP FUNCTION %s', r.fn);
    END LOOP;
END
$$;
SELECT count(*) AS left_in_public FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proowner = :'attacker'::regrole;
