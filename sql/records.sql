-- Record types: the app's own tables attached to journey (attach_table, detach_table, link,
-- allow_writes), the statement-level triggers that enroll from their writes, the record view
-- templates read (links read at claim), and record_timeline.
--
-- Who may do what: attach_table, detach_table, link and allow_writes are admin functions
-- (SECURITY DEFINER: they create triggers on tables journey does not own), and each checks that
-- its caller (the role outside any SECURITY DEFINER function, journey._caller_may) holds the
-- privileges it lends journey: SELECT and TRIGGER on an attached table, SELECT on a link's
-- target, INSERT and UPDATE on a table flows may write (attached tables included). The worker
-- writes the app's tables as their owner, in a security-restricted context
-- (src/engine/nodes/record.rs): a trigger the app put on its own table never runs as the worker.

CREATE TABLE journey.record_types (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    tbl            regclass NOT NULL UNIQUE,
    key_column     text NOT NULL,
    contact_column text NOT NULL,
    match          text NOT NULL CHECK (match IN ('id', 'external_id', 'email', 'phone')),
    writable       boolean NOT NULL DEFAULT false,
    unmatched      bigint NOT NULL DEFAULT 0,
    attached_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE journey.record_types IS
  'Tables of the app attached with journey.attach_table: name (the record type flows name), the table, its one-column primary key (a record''s key), the column holding its contact and how it matches contacts (id, external_id, email (case-insensitive) or phone (E.164)). writable: flows may update_record it (the attaching role had INSERT and UPDATE on it). unmatched counts records written while a flow listened whose contact column matched no contact (they enrolled nobody).';

CREATE TABLE journey.record_links (
    record_type text NOT NULL REFERENCES journey.record_types (name) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    target      regclass NOT NULL,
    via_column  text NOT NULL,
    target_key  text NOT NULL,
    PRIMARY KEY (record_type, name)
);
COMMENT ON TABLE journey.record_links IS
  'journey.link: record.<name> of a record of record_type is the row of target whose primary key (target_key) equals the record''s via_column, read when the enrollment''s step runs (templates, conditions, recipients, update_record target).';

CREATE TABLE journey.writable_tables (
    tbl        regclass PRIMARY KEY,
    allowed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE journey.writable_tables IS
  'Tables of the app that create_record nodes may insert into (journey.allow_writes), besides writable attached tables.';

SELECT pg_catalog.pg_extension_config_dump('journey.record_types', '');
SELECT pg_catalog.pg_extension_config_dump('journey.record_links', '');
SELECT pg_catalog.pg_extension_config_dump('journey.writable_tables', '');

CREATE FUNCTION journey._table_key(p_tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    cols text[];
BEGIN
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO cols
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = p_tbl AND i.indisprimary;
    IF cols IS NULL OR array_length(cols, 1) <> 1 THEN
        RAISE EXCEPTION 'table % needs a primary key of one column, not %', p_tbl,
            CASE WHEN cols IS NULL THEN 'none' ELSE array_to_string(cols, ', ') END
            USING ERRCODE = 'invalid_table_definition',
                  HINT = 'Add one (e.g. ALTER TABLE ... ADD PRIMARY KEY (id)): a record''s key names it in enrollments, links and record_timeline.';
    END IF;
    RETURN cols[1];
END
$$;
COMMENT ON FUNCTION journey._table_key(regclass) IS 'Internal: the one column of a table''s primary key, or an error naming the table.';

CREATE FUNCTION journey._check_column(p_tbl regclass, p_column text, p_what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF p_column IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute a
            WHERE a.attrelid = p_tbl AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION '% "%" is not a column of %', p_what, coalesce(p_column, 'NULL'), p_tbl
            USING ERRCODE = 'undefined_column',
                  HINT = format('Columns of %s: %s.', p_tbl, (SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum)
                      FROM pg_attribute a WHERE a.attrelid = p_tbl AND a.attnum > 0 AND NOT a.attisdropped));
    END IF;
END
$$;
COMMENT ON FUNCTION journey._check_column(regclass, text, text) IS 'Internal: raises 42703 naming the table and listing its columns when p_column is not one of them.';

CREATE FUNCTION journey._require_privileges(p_tbl regclass, p_privileges text[]) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    p text;
BEGIN
    FOREACH p IN ARRAY p_privileges LOOP
        IF NOT journey._caller_may(p_tbl, p) THEN
            RAISE EXCEPTION 'permission denied: % on %', p, p_tbl
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('journey acts on %s for you only with the privileges you hold on it: %s. Ask its owner to GRANT them.',
                                    p_tbl, array_to_string(p_privileges, ', '));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION journey._require_privileges(regclass, text[]) IS 'Internal: raises 42501 unless the caller (outside any SECURITY DEFINER function) holds each privilege on the table.';

CREATE FUNCTION journey.attach_table(tbl regclass, contact_column text, match text DEFAULT 'id', record_type text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    rt text := coalesce(attach_table.record_type, (SELECT c.relname::text FROM pg_class c WHERE c.oid = attach_table.tbl));
    key_col text;
    may_write boolean;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the table, e.g. ''public.invoices''.';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = 'wrong_object_type', HINT = 'Attach a plain or partitioned table.';
    END IF;
    IF (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl) IN ('journey', 'pg_catalog', 'information_schema') THEN
        RAISE EXCEPTION '% belongs to journey or the system', tbl USING ERRCODE = 'wrong_object_type', HINT = 'Attach a table of your app.';
    END IF;
    IF match IS NULL OR match NOT IN ('id', 'external_id', 'email', 'phone') THEN
        RAISE EXCEPTION 'match must be id, external_id, email or phone, not %', coalesce(match, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'match says which column of journey.contacts the contact column holds.';
    END IF;
    IF rt IS NULL OR rt !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'record type name "%" must be lower-case letters, digits and _', coalesce(rt, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass record_type => ''invoices''.';
    END IF;
    PERFORM journey._require_privileges(tbl, ARRAY['SELECT', 'TRIGGER']);
    PERFORM journey._check_column(tbl, contact_column, 'contact_column');
    key_col := journey._table_key(tbl);
    IF EXISTS (SELECT 1 FROM journey.record_types r WHERE r.name = rt OR r.tbl = attach_table.tbl) THEN
        RAISE EXCEPTION 'record type "%" or table % is attached already', rt, tbl
            USING ERRCODE = 'duplicate_object', HINT = 'SELECT * FROM journey.record_types lists them; journey.detach_table removes one.';
    END IF;
    may_write := journey._caller_may(tbl, 'INSERT') AND journey._caller_may(tbl, 'UPDATE');
    INSERT INTO journey.record_types (name, tbl, key_column, contact_column, match, writable)
    VALUES (rt, tbl, key_col, contact_column, match, may_write);
    -- Only these two triggers are added to the table; the record type is their argument, so a
    -- write no flow listens to costs one probe of flow_triggers.
    EXECUTE format('CREATE TRIGGER journey_record_inserted AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION journey._on_record_written(%L)', tbl, rt);
    EXECUTE format('CREATE TRIGGER journey_record_updated AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION journey._on_record_written(%L)', tbl, rt);
    RETURN rt;
END
$$;
COMMENT ON FUNCTION journey.attach_table(regclass, text, text, text) IS
  'Admin: makes an app table a record type (named record_type, default the table''s name) that record triggers fire on: adds the statement-level AFTER INSERT and AFTER UPDATE triggers journey_record_inserted and journey_record_updated (transition tables), nothing else. contact_column holds the contact, matched against contacts.id, external_id, email or phone (match). The table needs a one-column primary key. The caller must hold SELECT and TRIGGER on it; with INSERT and UPDATE too, flows may update_record and create_record it (record_types.writable). Returns the record type.';

CREATE FUNCTION journey.detach_table(record_type text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.record_types;
    users text;
BEGIN
    SELECT * INTO r FROM journey.record_types t WHERE t.name = detach_table.record_type FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record type "%" is not attached', coalesce(record_type, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM journey.record_types lists them.';
    END IF;
    PERFORM journey._require_privileges(r.tbl, ARRAY['SELECT', 'TRIGGER']);
    SELECT string_agg(DISTINCT f.name, ', ') INTO users
    FROM journey.flows f JOIN journey.flow_versions v ON v.flow_id = f.id AND v.version = f.version
    WHERE f.status IN ('active', 'paused') AND journey._uses_record_type(v.definition, r.name);
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'record type "%" is used by flows %', r.name, users
            USING ERRCODE = 'object_in_use', HINT = 'Archive those flows (journey.archive_flow) or save versions that do not use it first.';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS journey_record_inserted ON %s', r.tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS journey_record_updated ON %s', r.tbl);
    DELETE FROM journey.record_types t WHERE t.name = r.name;
END
$$;
COMMENT ON FUNCTION journey.detach_table(text) IS
  'Admin: removes a record type''s triggers from its table and forgets it (and its links). Refused while an active or paused flow''s current version has a record trigger on it (update_record needs one). Once detached, flows may write the table only if journey.allow_writes allowed it. Enrollments it caused keep their record_type and key.';

CREATE FUNCTION journey._uses_record_type(p_definition jsonb, p_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_definition -> 'triggers') = 'array' THEN p_definition -> 'triggers' ELSE '[]' END) t
                   WHERE t ->> 'type' = 'record' AND t ->> 'record' = p_type)
$$;
COMMENT ON FUNCTION journey._uses_record_type(jsonb, text) IS 'Internal: whether a definition has a record trigger on the record type.';

CREATE FUNCTION journey.link(record_type text, name text, target regclass, via_column text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.record_types;
BEGIN
    SELECT * INTO r FROM journey.record_types t WHERE t.name = link.record_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record type "%" is not attached', coalesce(record_type, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'Attach its table first with journey.attach_table.';
    END IF;
    IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'link name "%" must be lower-case letters, digits and _', coalesce(name, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. journey.link(''invoices'', ''account'', ''accounts'', ''account_id'').';
    END IF;
    IF target IS NULL THEN
        RAISE EXCEPTION 'link target must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the linked table.';
    END IF;
    PERFORM journey._check_column(r.tbl, via_column, 'via_column');
    IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.tbl AND a.attname = link.name AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'link name "%" is a column of %', name, r.tbl
            USING ERRCODE = 'duplicate_column', HINT = 'record.<name> would hide the column: choose another name.';
    END IF;
    IF NOT journey._readable_target(target) THEN
        RAISE EXCEPTION 'link target % is not a table journey may read: %', target,
            CASE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = target) NOT IN ('r', 'p') THEN 'not a plain table'
                 ELSE 'it has row-level security' END
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Links are read by the worker''s role, which would run a view''s functions and read past row security policies: link a plain table without row-level security.';
    END IF;
    PERFORM journey._require_privileges(target, ARRAY['SELECT']);
    INSERT INTO journey.record_links (record_type, name, target, via_column, target_key)
    VALUES (r.name, link.name, target, via_column, journey._table_key(target))
    ON CONFLICT ON CONSTRAINT record_links_pkey DO UPDATE
       SET target = EXCLUDED.target, via_column = EXCLUDED.via_column, target_key = EXCLUDED.target_key;
END
$$;
COMMENT ON FUNCTION journey.link(text, text, regclass, text) IS
  'Admin: record.<name> of a record of record_type is the row of target whose primary key equals the record''s via_column (e.g. invoice -> account), read when a step runs: templates, conditions, recipients (record.<name>.<column>) and update_record target <name>. The caller must hold SELECT on target, a plain table without row-level security (journey._readable_target: the worker reads it). Linking a name again replaces it.';

CREATE FUNCTION journey.allow_writes(tbl regclass) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the table, e.g. ''public.tasks''.';
    END IF;
    PERFORM journey._writable_now(tbl);   -- a plain table of the app, its row security forced if any
    PERFORM journey._require_privileges(tbl, ARRAY['SELECT', 'INSERT', 'UPDATE']);
    INSERT INTO journey.writable_tables (tbl) VALUES (tbl) ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION journey.allow_writes(regclass) IS
  'Admin: lets create_record nodes insert into an app table (one that is not attached). The caller must hold SELECT, INSERT and UPDATE on it. The worker inserts as the table''s owner, security-restricted; a table with row-level security is refused unless it is forced (the owner would bypass its policies; journey._writable_now, checked again at every write).';

-- ---------------------------------------------------------------- firing
CREATE FUNCTION journey._base_type(p_type oid, p_typmod integer, OUT base oid, OUT typmod integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    d record;
BEGIN
    base := p_type;
    typmod := p_typmod;
    -- through the domains created after initdb to the type beneath (bounded walk), with the
    -- innermost domain's typmod
    FOR i IN 1..32 LOOP
        EXIT WHEN base < 16384;
        SELECT y.typbasetype, y.typtypmod INTO d FROM pg_type y WHERE y.oid = base AND y.typtype = 'd';
        EXIT WHEN NOT FOUND;   -- not a domain: base is the type itself
        base := d.typbasetype;
        typmod := d.typtypmod;
    END LOOP;
END
$$;
COMMENT ON FUNCTION journey._base_type(oid, integer) IS
  'Internal: a column''s type (and typmod) with the domains created after initdb looked through: journey casts a link''s key to it (format_type), never to such a domain, whose CHECK would run its owner''s functions as the reading role; journey._plain_type asks whether it is built in.';

CREATE FUNCTION journey._readable_target(p_tbl regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p_tbl AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity)
$$;
COMMENT ON FUNCTION journey._readable_target(regclass) IS
  'Internal: whether journey reads a link''s target (journey._record_data): a plain or partitioned table without row-level security. Reading runs as the claiming role (the worker''s, a superuser by default): a view would run its functions as that role, and a superuser reads past row security policies.';

CREATE FUNCTION journey._writable_now(p_tbl regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    c pg_class;
BEGIN
    SELECT * INTO c FROM pg_class x WHERE x.oid = p_tbl;
    IF NOT FOUND OR c.relkind NOT IN ('r', 'p')
       OR c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'journey'::regnamespace, 'pg_toast'::regnamespace) THEN
        RAISE EXCEPTION 'flows may not write %: it is not a table of the app', p_tbl
            USING ERRCODE = 'wrong_object_type', HINT = 'Flows write plain tables of the app, never journey''s or the system''s.';
    END IF;
    IF c.relrowsecurity AND NOT c.relforcerowsecurity THEN
        RAISE EXCEPTION 'flows may not write %: it has row-level security, which its owner (the role flows write it as) bypasses', p_tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('ALTER TABLE %s FORCE ROW LEVEL SECURITY makes the owner''s writes obey its policies too.', p_tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION journey._writable_now(regclass) IS
  'Internal: raises unless flows may write the table as its owner now: a plain or partitioned table outside journey and the system, without row-level security its owner would bypass (enabled and not forced). allow_writes checks it, and so does every write (a table can change after).';

CREATE FUNCTION journey._plain_type(p_type oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    -- a domain stands for its base type (to_jsonb and casts look through it); built in at initdb:
    -- their casts, operators and output functions are the system's own
    SELECT (journey._base_type(p_type, -1)).base < 16384
$$;
COMMENT ON FUNCTION journey._plain_type(oid) IS
  'Internal: whether a column type is built in (through domains): journey reads such columns with to_jsonb, ::text and their = operator. A type created later (an enum, a composite, an extension''s or the app''s own type) may carry casts or operators its owner wrote, which journey''s triggers (SECURITY DEFINER) and the worker must not run: such columns are read through their output function (format(''%s'')).';

CREATE FUNCTION journey._record_columns(p_tbl regclass)
RETURNS TABLE (col text, attnum int2, plain boolean, eq boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- read once per statement: whether each column's type is built in (journey._plain_type) and
    -- has pg_catalog's = (compared with it; any other column as text). PL/pgSQL: its plan is
    -- kept for the session (a SQL function's would be made again at every call, in every write)
    RETURN QUERY
    SELECT a.attname::text, a.attnum, x.plain,
           -- (a scalar subquery with LIMIT: an index probe per column; EXISTS became a hash join
           -- over all of pg_operator)
           x.plain AND coalesce((SELECT true FROM pg_operator p WHERE p.oprname = '=' AND p.oprleft = a.atttypid AND p.oprright = a.atttypid
                                    AND p.oprnamespace = 'pg_catalog'::regnamespace AND p.oprresult = 'bool'::regtype LIMIT 1), false)
      FROM pg_attribute a CROSS JOIN LATERAL (SELECT journey._plain_type(a.atttypid) AS plain) x
     WHERE a.attrelid = p_tbl AND a.attnum > 0 AND NOT a.attisdropped;
END
$$;
COMMENT ON FUNCTION journey._record_columns(regclass) IS
  'Internal: a table''s columns in order, each with whether its type is built in (journey._plain_type) and has pg_catalog''s = operator; the record triggers'' SQL is written from them.';

CREATE FUNCTION journey._text_expr(p_alias text, p_column text, p_plain boolean) RETURNS text
LANGUAGE sql IMMUTABLE
-- (no SET clause: the planner inlines it; it names no object)
AS $$
    -- the column as text: a cast for built-in types, the type's output function otherwise
    SELECT CASE WHEN p_plain THEN format('(%s.%I)::text', p_alias, p_column)
                ELSE format('CASE WHEN num_nulls(%1$s.%2$I) = 0 THEN format(''%%s'', %1$s.%2$I) END', p_alias, p_column) END
$$;
COMMENT ON FUNCTION journey._text_expr(text, text, boolean) IS
  'Internal: the SQL expression reading column p_column of the row p_alias as text: a cast when its type is built in (p_plain), the type''s output function (format) otherwise.';

CREATE FUNCTION journey._differs_expr(p_column text, p_plain boolean, p_eq boolean) RETURNS text
LANGUAGE sql IMMUTABLE
-- (no SET clause: the planner inlines it; it names no object)
AS $$
    SELECT CASE WHEN p_eq THEN format('o.%1$I IS DISTINCT FROM n.%1$I', p_column)
                ELSE format('%s IS DISTINCT FROM %s', journey._text_expr('o', p_column, p_plain),
                            journey._text_expr('n', p_column, p_plain)) END
$$;
COMMENT ON FUNCTION journey._differs_expr(text, boolean, boolean) IS
  'Internal: the test that column p_column changed between an old row o and a new row n: IS DISTINCT FROM by pg_catalog''s = (p_eq), else by the text forms (journey._text_expr).';

CREATE FUNCTION journey._text_of(p_tbl regclass, p_alias text, p_column text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    RETURN (SELECT journey._text_expr(p_alias, c.col, c.plain) FROM journey._record_columns(p_tbl) c WHERE c.col = p_column);
END
$$;
COMMENT ON FUNCTION journey._text_of(regclass, text, text) IS
  'Internal: the SQL expression reading a column of the row p_alias (of table p_tbl) as text: a cast for built-in types, the type''s output function (format) for others (journey._plain_type).';

CREATE FUNCTION journey._json_of(p_tbl regclass, p_alias text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    out text;
BEGIN
    -- to_jsonb of the row when every column is built in; else the row's columns one by one
    -- (those of other types as their text), 50 to a jsonb_build_object (its argument limit)
    SELECT CASE WHEN bool_and(x.plain) THEN format('to_jsonb(%s)', p_alias)
                ELSE string_agg(x.part, ' || ') END
      INTO out
    FROM (SELECT bool_and(c.plain) AS plain,
                 format('jsonb_build_object(%s)', string_agg(format('%L, %s', c.col,
                        CASE WHEN c.plain THEN format('%s.%I', p_alias, c.col) ELSE journey._text_expr(p_alias, c.col, false) END),
                        ', ' ORDER BY c.attnum)) AS part
          FROM (SELECT c.*, (row_number() OVER (ORDER BY c.attnum) - 1) / 50 AS chunk FROM journey._record_columns(p_tbl) c) c
          GROUP BY c.chunk) x;
    RETURN out;
END
$$;
COMMENT ON FUNCTION journey._json_of(regclass, text) IS
  'Internal: the SQL expression reading the row p_alias of table p_tbl as jsonb: to_jsonb when every column is of a built-in type, else an object built column by column with the others as their text (journey._plain_type).';

CREATE FUNCTION journey._record_lookup(p_tbl regclass, p_match text, p_column text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    -- a per-row index probe of contacts by the record's contact column (n.<column>): by id,
    -- external_id, email (case-insensitive) or phone; the oldest contact when several match; the
    -- column read as text by journey._text_of
    SELECT format(CASE WHEN p_match = 'id' AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN 'c.id = n.%1$I'
        WHEN p_match = 'id' THEN 'c.id = CASE WHEN %2$s ~ ''^[0-9]{1,18}$'' THEN (%2$s)::bigint END'
        WHEN p_match = 'external_id' THEN 'c.id = (SELECT k.contact_id FROM journey.contact_keys k WHERE k.external_id = %2$s)'
        WHEN p_match = 'email' THEN 'lower(c.email) = lower(%2$s)'
        WHEN p_match = 'phone' THEN 'c.phone = %2$s'
    END, p_column, journey._text_of(p_tbl, 'n', p_column))
    FROM pg_attribute a WHERE a.attrelid = p_tbl AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION journey._record_lookup(regclass, text, text) IS 'Internal: the condition on contacts c that finds the contact of a record n of a table by its contact column, for a match kind (id, external_id, email case-insensitively, phone); an integer column is compared with contacts.id as it is, another one (read as text) only when it holds digits.';

CREATE FUNCTION journey._record_contact_is_key(r journey.record_types) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- the contact column is NOT NULL and a non-deferrable foreign key to contacts.id: every
    -- record written has its contact (the app's own write checked it). (PL/pgSQL: a plan kept
    -- for the session, as journey._record_columns)
    RETURN r.match = 'id' AND EXISTS (
        SELECT 1 FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        WHERE k.conrelid = r.tbl AND k.contype = 'f' AND k.confrelid = 'journey.contacts'::regclass
          AND NOT k.condeferrable AND cardinality(k.conkey) = 1 AND a.attname = r.contact_column AND a.attnotnull);
END
$$;
COMMENT ON FUNCTION journey._record_contact_is_key(journey.record_types) IS
  'Internal: whether a record type''s contact column is NOT NULL and a non-deferrable foreign key to journey.contacts (id): then it is the contact''s id, with no lookup, and no record lacks its contact.';

CREATE FUNCTION journey._record_source(r journey.record_types, p_op text, p_changed jsonb, p_old boolean) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    lookup text;
    test text;
    old text;
    key text;
    key_join text;
BEGIN
    -- the contact: the column itself when it is a NOT NULL, non-deferrable foreign key to
    -- contacts.id (_record_contact_is_key), else a per-row index probe of contacts (_record_lookup)
    IF journey._record_contact_is_key(r) THEN
        lookup := format('CROSS JOIN LATERAL (SELECT n.%I::bigint AS id) c', r.contact_column);
    ELSE
        lookup := format('LEFT JOIN LATERAL (SELECT c.id FROM journey.contacts c WHERE %s ORDER BY c.id LIMIT 1) c ON true',
                         journey._record_lookup(r.tbl, r.match, r.contact_column));
    END IF;
    IF p_op <> 'update' THEN
        RETURN format('SELECT %1$s AS key, c.id AS contact_id, %2$s AS data, NULL::jsonb AS old FROM new_rows n %3$s',
                      journey._text_of(r.tbl, 'n', r.key_column), journey._json_of(r.tbl, 'n'), lookup);
    END IF;
    -- the columns' facts read once (journey._record_columns); from them:
    -- changed: one of the listed columns (those the table still has) differs; without a list,
    -- any column;
    -- old: the columns that changed, as they were (the worker reads old as record || old), built
    -- as JSON text from the changed columns only (ARRAY[...]: a function takes at most 100
    -- arguments, a table may have more columns); {} when the flow cannot read old (p_old false:
    -- nothing reads it, and building it is a good part of an update's enrollment);
    -- the key: its text form, and the join of old and new rows on it
    SELECT string_agg(journey._differs_expr(c.col, c.plain, c.eq), ' OR ' ORDER BY c.attnum)
               FILTER (WHERE p_changed IS NULL OR c.col IN (SELECT jsonb_array_elements_text(p_changed))),
           format('(''{'' || array_to_string(ARRAY[%s]::text[], '','') || ''}'')::jsonb',
                  string_agg(format('CASE WHEN %s THEN %L || coalesce(to_json(%s)::text, ''null'') END',
                                    journey._differs_expr(c.col, c.plain, c.eq), to_json(c.col)::text || ':',
                                    CASE WHEN c.plain THEN format('o.%I', c.col) ELSE journey._text_expr('o', c.col, false) END),
                             ', ' ORDER BY c.attnum)),
           max(journey._text_expr('n', c.col, c.plain)) FILTER (WHERE c.col = r.key_column),
           max(CASE WHEN c.plain THEN format('o.%1$I = n.%1$I', c.col)
                    ELSE format('%s = %s', journey._text_expr('o', c.col, false), journey._text_expr('n', c.col, false)) END)
               FILTER (WHERE c.col = r.key_column)
      INTO test, old, key, key_join
      FROM journey._record_columns(r.tbl) c;
    RETURN format('SELECT %1$s AS key, c.id AS contact_id, %2$s AS data, %3$s AS old
                   FROM new_rows n JOIN old_rows o ON %4$s %5$s WHERE %6$s',
                  key, journey._json_of(r.tbl, 'n'), CASE WHEN p_old THEN old ELSE '''{}''::jsonb' END,
                  key_join, lookup, coalesce(test, 'false'));
END
$$;
COMMENT ON FUNCTION journey._record_source(journey.record_types, text, jsonb, boolean) IS
  'Internal: the query over a record trigger''s transition tables (new_rows, and old_rows on updates) giving each written record''s key, its contact (NULL when none matches), the record as jsonb and, on updates, the columns that changed as they were (an empty object when p_old is false: the flow cannot read old) (only rows where a column of p_changed, or any column, changed). Identifiers come from the catalog, quoted.';

CREATE FUNCTION journey._record_listeners(p_type text, p_op text)
RETURNS TABLE (flow_id bigint, condition jsonb, changed jsonb, reads_old boolean, keyed boolean, tbl oid,
               key_column text, contact_column text, match text)
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
    r journey.record_types;
    keyed boolean;
BEGIN
    -- one index probe when no flow listens to this record type
    SELECT array_agg(DISTINCT f.flow_id) INTO flows
    FROM journey.flow_triggers f WHERE f.kind = 'record' AND f.key = p_type;
    IF flows IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO r FROM journey.record_types x WHERE x.name = p_type;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM journey._lock_flows(flows);
    keyed := journey._record_contact_is_key(r);   -- (a catalog read: once, not per trigger)
    RETURN QUERY
    SELECT f.flow_id, f.condition, f.params -> 'changed', coalesce((f.params ->> 'old')::boolean, true),
           keyed, r.tbl::oid,
           r.key_column, r.contact_column, r.match
      FROM journey.flow_triggers f
     WHERE f.kind = 'record' AND f.key = p_type AND f.flow_id = ANY (flows)
       AND coalesce(f.params -> 'on', '["insert", "update"]') ? p_op
     ORDER BY f.flow_id, f.pos;
END
$$;
COMMENT ON FUNCTION journey._record_listeners(text, text) IS
  'Internal: the record trigger''s first step (journey._on_record_written): the record-trigger flows listening to an operation on a record type, one row per trigger in flow order with its where (condition), changed list and whether the flow can read old (params.old, false when its definition cannot: model::triggers::record::routed_params), and the record type''s facts its statement is written from (keyed: journey._record_contact_is_key); takes the flows'' shared locks. No row (one index probe) when no flow listens.';

CREATE FUNCTION journey._record_statement(p_type text, p_op text, p_changed jsonb, p_old boolean, p_keyed boolean,
                                          p_bulk boolean) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.record_types;
BEGIN
    SELECT * INTO r FROM journey.record_types x WHERE x.name = p_type;
    -- The written records with their contacts (journey._record_source), enrolled once per
    -- record (occurrence record:<key>; the check is not ON CONFLICT: two writes of one record
    -- are serialized by its row lock. For a bulk write (p_bulk: planned for its size at every
    -- write) NOT EXISTS, which the planner makes a hash of the flow's enrollments when that is
    -- cheaper; for a small one, whose plan is kept, a probe per record of the flow/contact/
    -- occurrence index, written as a scalar subquery over a row range only that index can serve:
    -- a plan made while enrollments looked empty would otherwise read all of a contact's
    -- enrollments by the primary key (or hash all of the flow's) at every later write) into the
    -- flow $1 as journey._enroll does (frozen into a flow paused by an edit or a
    -- quota), when the where $3 matches, counted at once (they all enter at the flow's start
    -- node); records without a contact are counted. Arguments: $1 the flow, $2 the record
    -- type, $3 the where. The records are read once; kept (MATERIALIZED) only when some may lack
    -- a contact, to count those.
    RETURN format(
        'WITH m AS %s (%s),
         ins AS (
           INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at, data, occurrence, record_type, record_key, record_old)
           SELECT f.id, CASE WHEN f.status = ''active'' THEN f.version ELSE coalesce(f.routed_version, f.version) END,
                  m.contact_id, f.start_node, now(), m.data, ''record:'' || m.key, $2, m.key, m.old
             FROM m JOIN journey.flows f ON f.id = $1
              AND (f.status = ''active'' OR (f.status = ''paused'' AND f.paused_reason IN (''edited'', ''quota'')))
            WHERE m.contact_id IS NOT NULL
              AND ($3 IS NULL OR journey._matches($3, m.contact_id, journey._record_event($2, m.data, m.old)))
              AND %s
           RETURNING 1)
         SELECT %s, i.n, journey._count_entered_at($1, (SELECT f.start_node FROM journey.flows f WHERE f.id = $1), i.n)
           FROM (SELECT count(*) AS n FROM ins) i',
        CASE WHEN p_keyed THEN 'NOT MATERIALIZED' ELSE 'MATERIALIZED' END, journey._record_source(r, p_op, p_changed, p_old),
        CASE WHEN p_bulk
             THEN 'NOT EXISTS (SELECT FROM journey.enrollments e
                     WHERE e.flow_id = $1 AND e.contact_id = m.contact_id AND e.occurrence = ''record:'' || m.key)'
             ELSE '(SELECT true FROM journey.enrollments e
                     WHERE (e.flow_id, e.contact_id, e.occurrence) >= ($1, m.contact_id, ''record:'' || m.key)
                       AND (e.flow_id, e.contact_id, e.occurrence) <= ($1, m.contact_id, ''record:'' || m.key)
                     LIMIT 1) IS NULL' END,
        CASE WHEN p_keyed THEN '0::bigint' ELSE '(SELECT count(*) FROM m WHERE m.contact_id IS NULL)' END);
END
$$;
COMMENT ON FUNCTION journey._record_statement(text, text, jsonb, boolean, boolean, boolean) IS
  'Internal: the statement a record trigger runs for one listening trigger (arguments $1 flow, $2 record type, $3 where), over the transition tables: enrolls each written record''s contact once per record, counts them; returns (records without a contact, enrolled, counter rows written). Written from the catalog (journey._record_source, identifiers quoted); journey._on_record_written keeps it per backend. p_bulk: for a write of many rows, planned at each use (the once-per-record check NOT EXISTS); else a kept plan''s (an index probe per record).';

COMMENT ON FUNCTION journey._on_record_written() IS
  'Trigger of attached tables (argument: the record type; C, src/api/record_trigger.rs): enrolls the contact of each inserted or updated record into the active record-trigger flows listening to that operation whose changed columns really changed (IS DISTINCT FROM; without changed, any column) and whose where matches (record.*, old.*, contact.*); one enrollment per record (occurrence = record:<key>), its data the record as written, record_old the columns an update changed as they were. Counts records whose contact column matched no contact in record_types.unmatched (once per statement: the most any one trigger of it saw). A write no flow listens to costs one index probe. The statement of each listening trigger (journey._record_statement) is kept per backend, keyed on the table''s columns as its relation has them, the record type and the trigger''s changed list: a write of up to 64 rows reuses its plan, a larger one is planned for its size.';

CREATE FUNCTION journey._record_event(p_type text, p_data jsonb, p_old jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT CASE WHEN p_old IS NULL
                THEN jsonb_build_object('trigger', 'record', 'op', 'insert', 'record_type', p_type, 'record', p_data)
                ELSE jsonb_build_object('trigger', 'record', 'op', 'update', 'record_type', p_type, 'record', p_data,
                                        'old', p_data || p_old) END
$$;
COMMENT ON FUNCTION journey._record_event(text, jsonb, jsonb) IS
  'Internal: what flows see of a record trigger''s enrollment (event.*, record.*, old.*): {trigger, op, record_type, record, old} from its data (the record) and record_old (the columns an update changed, as they were; NULL for an insert).';

CREATE FUNCTION journey._record_data(p_type text, p_data jsonb, p_old jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    l record;
    linked jsonb;
    out jsonb := journey._record_event(p_type, p_data, p_old);
BEGIN
    -- the record as it was when the trigger fired, plus each link's row read now
    FOR l IN SELECT k.*, journey._readable_target(k.target) AS readable
               FROM journey.record_links k WHERE k.record_type = p_type ORDER BY k.name LOOP
        BEGIN
            -- Read as the claim's role (the worker's, a superuser by default): only a plain
            -- table without row security (a view's functions would run as that role, and a
            -- superuser reads past policies; journey.link refuses both, and a table can change
            -- after), else nil. The key compared in its own type, cast to the type beneath any
            -- domain (a cast to the domain would run its CHECK, a function of the table's owner,
            -- as that role); a key of a type created after initdb as text (journey._plain_type).
            linked := NULL;
            IF l.readable THEN
                EXECUTE format('SELECT %s FROM %s t WHERE %s', journey._json_of(l.target, 't'), l.target,
                               (SELECT CASE WHEN journey._plain_type(a.atttypid)
                                            THEN format('t.%I = CAST($1 AS %s)', a.attname,
                                                        (SELECT format_type(b.base, b.typmod) FROM journey._base_type(a.atttypid, a.atttypmod) b))
                                            ELSE format('%s = $1', journey._text_of(l.target, 't', l.target_key)) END
                                  FROM pg_attribute a WHERE a.attrelid = l.target AND a.attname = l.target_key))
                    INTO linked USING p_data ->> l.via_column;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            linked := NULL;   -- a table gone or unreadable: the link reads as nil
        END;
        out := jsonb_set(out, ARRAY['record', l.name], coalesce(linked, 'null'));
    END LOOP;
    RETURN out;
END
$$;
COMMENT ON FUNCTION journey._record_data(text, jsonb, jsonb) IS
  'Internal: a record trigger''s enrollment as flows see it (journey._record_event) with record.<link> set to each link''s row as it is now (nil when none or unreadable); the claim reads record enrollments through it.';

CREATE FUNCTION journey.record_timeline(record_type text, key text)
RETURNS TABLE (at timestamptz, kind text, flow text, node text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    -- the record's enrollments: in each flow that ever had a record trigger on the type, those of
    -- occurrence record:<key> (the flow_id-leading unique index), and their fork branches
    WITH roots AS (
        SELECT e.* FROM journey.enrollments e
        WHERE e.flow_id IN (SELECT v.flow_id FROM journey.flow_versions v
                            WHERE journey._uses_record_type(v.definition, record_timeline.record_type))
          AND e.occurrence = 'record:' || record_timeline.key AND e.record_type = record_timeline.record_type
    ), es AS (
        SELECT * FROM roots
        UNION ALL
        SELECT b.* FROM roots p JOIN journey.enrollments b ON b.contact_id = p.contact_id AND b.parent_id = p.id
    )
    SELECT t.at, t.kind, t.flow, t.node, t.detail FROM (
        SELECT e.entered_at AS at, 'enrolled'::text AS kind, f.name AS flow, NULL::text AS node,
               format('enrollment %s of contact %s (version %s)', e.id, e.contact_id, e.version) AS detail, 0 AS o, e.id AS k
        FROM roots e JOIN journey.flows f ON f.id = e.flow_id
      UNION ALL
        SELECT s.at, 'step', f.name, s.node, s.outcome, 1, s.id
        FROM es e JOIN journey.steps s ON s.contact_id = e.contact_id AND s.enrollment_id = e.id
        JOIN journey.flows f ON f.id = s.flow_id
      UNION ALL
        SELECT m.created_at, 'message', coalesce(f.name, m.flow_name), m.node,
               format('%s to %s: %s', m.channel, coalesce(m.recipient, '?'), m.status), 2, m.id
        FROM es e JOIN journey.outbox m ON m.contact_id = e.contact_id AND m.enrollment_id = e.id
        LEFT JOIN journey.flows f ON f.id = m.flow_id
      UNION ALL
        SELECT e.updated_at, e.status, f.name, e.node, e.last_error, 3, e.id
        FROM roots e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.status <> 'active'
    ) t
    ORDER BY t.at, t.o, t.k
$$;
COMMENT ON FUNCTION journey.record_timeline(text, text) IS
  'The activity log of one record (seed 004): every enrollment it caused (kind enrolled, with its contact), each node those enrollments and their fork branches entered (kind step), each message they wrote (kind message) and how they ended, oldest first. Found through the flows that ever had a record trigger on the type (no index of its own: enrolling stays cheap).';

-- ---------------------------------------------------------------- writing (update_record, create_record)
CREATE FUNCTION journey._writable(p_tbl regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM journey.writable_tables w WHERE w.tbl = p_tbl)
        OR EXISTS (SELECT 1 FROM journey.record_types r WHERE r.tbl = p_tbl AND r.writable)
$$;
COMMENT ON FUNCTION journey._writable(regclass) IS 'Internal: whether flows may write the table (allowed with journey.allow_writes, or attached by a role that could write it).';

CREATE FUNCTION journey._record_write(p_type text, p_target text, p_table text, p_columns text[],
                                      OUT statement text, OUT owner oid, OUT key_from text, OUT key_column text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    tbl regclass;
    c text;
    sets text;
    cols text;
BEGIN
    -- the table: the record's own (target record), a link's, or create_record's table
    IF p_target = 'record' THEN
        SELECT r.tbl, r.key_column, r.key_column INTO tbl, key_column, key_from
        FROM journey.record_types r WHERE r.name = p_type;
    ELSIF p_target IS NOT NULL THEN
        SELECT l.target, l.target_key, l.via_column INTO tbl, key_column, key_from
        FROM journey.record_links l WHERE l.record_type = p_type AND l.name = p_target;
    ELSE
        tbl := to_regclass(p_table);
    END IF;
    IF tbl IS NULL THEN
        RAISE EXCEPTION '%', CASE WHEN p_target IS NULL THEN format('table %s does not exist', p_table)
                                  WHEN p_type IS NULL THEN 'update_record needs a record trigger (this enrollment has no record)'
                                  ELSE format('record type "%s" has no %s', p_type, CASE WHEN p_target = 'record' THEN 'table (detached)' ELSE format('link "%s"', p_target) END) END
            USING ERRCODE = 'undefined_table', HINT = 'journey.record_types, journey.record_links and journey.writable_tables say what flows may write.';
    END IF;
    IF NOT journey._writable(tbl) THEN
        RAISE EXCEPTION 'flows may not write %', tbl
            USING ERRCODE = 'insufficient_privilege', HINT = 'journey.allow_writes(table) lets them (an admin who may INSERT and UPDATE it).';
    END IF;
    PERFORM journey._writable_now(tbl);
    FOREACH c IN ARRAY p_columns LOOP
        PERFORM journey._check_column(tbl, c, 'column');
    END LOOP;
    SELECT string_agg(format('%1$I = r.%1$I', x), ', '), string_agg(format('%I', x), ', ')
      INTO sets, cols FROM unnest(p_columns) x;
    -- identifiers from the catalog (quoted), values the statement's arguments: $1 the values
    -- and $2 the key, each a jsonb object read through the table's row type
    statement := CASE WHEN p_target IS NOT NULL THEN format(
        'WITH w AS (UPDATE %1$s t SET %2$s FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $1) r '
        'WHERE t.%3$I = (SELECT k.%3$I FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $2) k) RETURNING 1) '
        'SELECT pg_catalog.count(*) FROM w', tbl, sets, key_column)
    ELSE format(
        'WITH w AS (INSERT INTO %1$s (%2$s) SELECT %3$s FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $1) r RETURNING 1) '
        'SELECT pg_catalog.count(*) FROM w', tbl, cols, (SELECT string_agg(format('r.%I', x), ', ') FROM unnest(p_columns) x))
    END;
    SELECT cl.relowner INTO owner FROM pg_class cl WHERE cl.oid = tbl;
END
$$;
COMMENT ON FUNCTION journey._record_write(text, text, text, text[]) IS
  'Internal: the statement an update_record (p_target: record or a link name of record type p_type) or create_record (p_table) node runs, for these columns: the table checked writable and each column checked to exist; identifiers quoted from the catalog, values passed as the jsonb arguments $1 (values) and $2 (the key, {key_column: value}); with the table''s owner (the engine runs it as that role, security-restricted) and which record column holds the key.';

CREATE FUNCTION journey._record_columns_problem(p_type text, p_target text, p_table text, p_columns text[], p_write boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    tbl regclass;
    missing text;
BEGIN
    -- the table: a record type's (p_target NULL or 'record'), a link's, or one named (p_table)
    IF p_table IS NOT NULL THEN
        tbl := to_regclass(p_table);
        IF tbl IS NULL THEN
            RETURN format('table "%s" does not exist', p_table);
        END IF;
    ELSIF coalesce(p_target, 'record') = 'record' THEN
        SELECT r.tbl INTO tbl FROM journey.record_types r WHERE r.name = p_type;
        IF tbl IS NULL THEN
            RETURN NULL;   -- an unknown record type is listed as such already
        END IF;
    ELSE
        SELECT l.target INTO tbl FROM journey.record_links l WHERE l.record_type = p_type AND l.name = p_target;
        IF tbl IS NULL THEN
            RETURN format('record type "%s" has no link "%s" (journey.link adds one; target is "record" or a link)', p_type, p_target);
        END IF;
    END IF;
    IF p_write AND NOT journey._writable(tbl) THEN
        RETURN format('flows may not write %s (journey.allow_writes(''%s'') lets them)', tbl, tbl);
    END IF;
    SELECT string_agg(format('"%s"', c), ', ') INTO missing FROM unnest(p_columns) c
    WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RETURN format('%s: no column %s (its columns: %s)', tbl, missing,
                      (SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum) FROM pg_attribute a
                       WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._record_columns_problem(text, text, text, text[], boolean) IS
  'Internal (validate_flow): what is wrong with the columns a record trigger (changed) or node (update_record set, create_record values) names: the table missing, not writable (p_write), a link unknown, or columns it lacks; NULL when nothing.';
