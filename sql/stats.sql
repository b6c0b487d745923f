-- Introspection: flow_stats, goal_stats, flow_overview, timeline.

CREATE FUNCTION journey._flow_id(p_flow text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    fid bigint;
BEGIN
    IF p_flow IS NULL THEN
        RAISE EXCEPTION 'flow name must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass a name from journey.flows.';
    END IF;
    SELECT id INTO fid FROM journey.flows WHERE name = p_flow;
    IF fid IS NULL THEN
        RAISE EXCEPTION 'flow "%" does not exist', p_flow
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM journey.flows lists the flows; create one with journey.create_flow.';
    END IF;
    RETURN fid;
END
$$;
COMMENT ON FUNCTION journey._flow_id(text) IS 'Internal: the id of a flow by name, or an error naming it.';

CREATE FUNCTION journey.flow_stats(name text)
RETURNS TABLE (node text, type text, reached bigint, reached_pct numeric, waiting bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(flow_stats.name)
    ), entered AS (
        -- a fork's branches (parent_id set) are part of their parent's trip, not new entries
        SELECT count(*) AS n FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NULL
    ), branches AS (
        SELECT e.id, e.parent_id FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NOT NULL
    ), reach AS (
        -- each node once per enrollment that reached it, along any of its branches
        SELECT s.node, count(DISTINCT coalesce(b.parent_id, s.enrollment_id)) AS n
        FROM journey.steps s CROSS JOIN f LEFT JOIN branches b ON b.id = s.enrollment_id
        WHERE s.flow_id = f.id GROUP BY s.node
    ), wait AS (
        SELECT e.node, count(*) AS n FROM journey.enrollments e, f
        WHERE e.flow_id = f.id AND e.status = 'active' GROUP BY e.node
    )
    SELECT o.node, o.type, coalesce(r.n, 0),
           CASE WHEN entered.n = 0 THEN 0 ELSE round(100.0 * coalesce(r.n, 0) / entered.n, 1) END,
           coalesce(w.n, 0)
    FROM f CROSS JOIN entered CROSS JOIN LATERAL journey._node_order(f.definition) o
    LEFT JOIN reach r ON r.node = o.node
    LEFT JOIN wait w ON w.node = o.node
    ORDER BY o.ord
$$;
COMMENT ON FUNCTION journey.flow_stats(text) IS
  'Per node of the flow''s current version, in flow order: type, reached (enrollments that entered the node, any version; a fork''s branches count for the enrollment they belong to, once per node), reached_pct (percent of enrollments that entered the flow) and waiting (active enrollments and branches due to run the node next; an enrollment whose branches run waits at its fork).';

CREATE FUNCTION journey.goal_stats(name text)
RETURNS TABLE (goal text, reached bigint, reached_pct numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(goal_stats.name)
    ), entered AS (
        SELECT count(*) AS n FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NULL
    ), branches AS (
        SELECT e.id, e.parent_id FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NOT NULL
    ), goals AS (
        SELECT DISTINCT coalesce(o.goal, o.node) AS goal, o.node FROM f, journey._node_order(f.definition) o WHERE o.type = 'goal'
    )
    -- a goal reached along a fork's branch counts for the enrollment the branch belongs to
    SELECT g.goal, count(DISTINCT coalesce(b.parent_id, s.enrollment_id)),
           CASE WHEN entered.n = 0 THEN 0
                ELSE round(100.0 * count(DISTINCT coalesce(b.parent_id, s.enrollment_id)) / entered.n, 1) END
    FROM f CROSS JOIN entered CROSS JOIN goals g
    LEFT JOIN journey.steps s ON s.flow_id = f.id AND s.node = g.node AND s.outcome = 'goal'
    LEFT JOIN branches b ON b.id = s.enrollment_id
    GROUP BY g.goal, entered.n
    ORDER BY g.goal
$$;
COMMENT ON FUNCTION journey.goal_stats(text) IS
  'Per goal of the flow''s current version: enrollments that reached it (along any fork branch, once) and the percent of enrollments that entered the flow.';

CREATE VIEW journey.flow_overview AS
SELECT f.name AS flow, f.status, f.version,
       count(e.id) AS entered,
       count(e.id) FILTER (WHERE e.status = 'active') AS active,
       count(e.id) FILTER (WHERE e.status = 'completed') AS completed,
       count(e.id) FILTER (WHERE e.status = 'failed') AS failed
FROM journey.flows f
LEFT JOIN journey.enrollments e ON e.flow_id = f.id AND e.parent_id IS NULL
GROUP BY f.id
ORDER BY f.name;
COMMENT ON VIEW journey.flow_overview IS 'One row per flow: status, current version and enrollment counts (entered, active, completed, failed); a fork''s branches are counted in their parent.';

CREATE FUNCTION journey.timeline(contact bigint)
RETURNS TABLE (at timestamptz, kind text, flow text, node text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    PERFORM journey._check_contact(contact);
    RETURN QUERY
    SELECT t.at, t.kind, t.flow, t.node, t.detail FROM (
        SELECT e.entered_at AS at, 'enrolled'::text AS kind, f.name AS flow, NULL::text AS node,
               format('enrollment %s (version %s)', e.id, e.version) AS detail, 0 AS o, e.id AS k
        FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.contact_id = timeline.contact
      UNION ALL
        SELECT s.at, 'step', f.name, s.node, s.outcome, 1, s.id
        FROM journey.steps s JOIN journey.flows f ON f.id = s.flow_id
        WHERE s.contact_id = timeline.contact
      UNION ALL
        SELECT m.created_at, 'message', coalesce(f.name, m.flow_name), m.node,
               format('%s to %s: %s', m.channel, coalesce(m.recipient, '?'), m.status), 2, m.id
        FROM journey.outbox m LEFT JOIN journey.flows f ON f.id = m.flow_id
        WHERE m.contact_id = timeline.contact AND NOT m.test
      UNION ALL
        SELECT e.updated_at, e.status, f.name, e.node, e.last_error, 3, e.id
        FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.contact_id = timeline.contact AND e.status <> 'active'
    ) t
    ORDER BY t.at, t.o, t.k;
END
$$;
COMMENT ON FUNCTION journey.timeline(bigint) IS
  'Everything that happened to one contact, oldest first: enrollments (kind enrolled), nodes entered (kind step, detail = outcome), messages (kind message; not test_send''s, and named after their flow even once it was deleted) and how enrollments ended (kind completed/exited/stopped/failed, detail = error).';
