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

-- The stats read the counters (sql/counters.sql): a few rows per node, whatever the history.
CREATE FUNCTION journey.flow_stats(name text)
RETURNS TABLE (node text, type text, reached bigint, reached_pct numeric, waiting bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(flow_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c
    ), entered AS (
        -- a fork's branches are part of their parent's trip, not new entries
        SELECT coalesce(sum(c.n), 0) AS n FROM c WHERE c.node = '' AND c.kind = 'enrollments' AND c.label = 'entered'
    )
    SELECT o.node, o.type, coalesce(r.n, 0),
           CASE WHEN entered.n = 0 THEN 0 ELSE round(100.0 * coalesce(r.n, 0) / entered.n, 1) END,
           coalesce(w.n, 0)
    FROM f CROSS JOIN entered CROSS JOIN LATERAL journey._node_order(f.definition) o
    LEFT JOIN c r ON r.node = o.node AND r.kind = 'reached'
    LEFT JOIN c w ON w.node = o.node AND w.kind = 'waiting'
    ORDER BY o.ord
$$;
COMMENT ON FUNCTION journey.flow_stats(text) IS
  'Per node of the flow''s current version, in flow order: type, reached (enrollments that entered the node, any version; a fork''s branches count for the enrollment they belong to, once per node), reached_pct (percent of enrollments that entered the flow) and waiting (active enrollments and branches due to run the node next; an enrollment whose branches run waits at its fork). Read from the counters (journey.counters), so as fast on a long history as on a short one, and kept after retention or forget_contact delete history; journey.node_stats adds how enrollments ended and nodes a later version removed.';

CREATE FUNCTION journey.node_stats(name text)
RETURNS TABLE (node text, type text, removed boolean, reached bigint, reached_pct numeric, waiting bigint,
               completed bigint, exited bigint, stopped bigint, failed bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(node_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c
    ), entered AS (
        SELECT coalesce(sum(c.n), 0) AS n FROM c WHERE c.node = '' AND c.kind = 'enrollments' AND c.label = 'entered'
    ), nodes AS (
        SELECT o.ord, o.node, o.type, false AS removed FROM f, journey._node_order(f.definition) o
        UNION ALL
        -- nodes with history that the current version no longer has: last, by name, typed by the
        -- latest version that had them
        SELECT 1000000, g.node,
               (SELECT v.definition -> 'nodes' -> g.node ->> 'type' FROM journey.flow_versions v, f
                 WHERE v.flow_id = f.id AND v.definition -> 'nodes' ? g.node ORDER BY v.version DESC LIMIT 1),
               true
          FROM (SELECT DISTINCT c.node FROM c
                 WHERE c.node <> '' AND c.kind IN ('reached', 'waiting', 'ended') AND c.n <> 0) g, f
         WHERE NOT f.definition -> 'nodes' ? g.node
    )
    SELECT d.node, d.type, d.removed, coalesce(sum(c.n) FILTER (WHERE c.kind = 'reached'), 0)::bigint,
           CASE WHEN entered.n = 0 THEN 0
                ELSE round(100.0 * coalesce(sum(c.n) FILTER (WHERE c.kind = 'reached'), 0) / entered.n, 1) END,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'waiting'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'ended' AND c.label = 'completed'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'ended' AND c.label = 'exited'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'ended' AND c.label = 'stopped'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'ended' AND c.label = 'failed'), 0)::bigint
      FROM nodes d CROSS JOIN entered LEFT JOIN c ON c.node = d.node
     GROUP BY d.ord, d.node, d.type, d.removed, entered.n
     ORDER BY d.ord, d.node
$$;
COMMENT ON FUNCTION journey.node_stats(text) IS
  'Per node, in flow order, then the nodes a later version removed (removed true, typed by the latest version that had them, with their history): reached and reached_pct, waiting (as flow_stats), and the enrollments and fork branches whose trip ended at the node: completed, exited, stopped, failed (a retried enrollment leaves failed). From the counters: totals kept after retention and forget_contact.';

CREATE FUNCTION journey.message_stats(name text)
RETURNS TABLE (node text, type text, removed boolean, written bigint, suppressed bigint, sent bigint,
               delivered bigint, opened bigint, clicked bigint, failed bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(message_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c WHERE c.kind IN ('message', 'suppressed')
    ), nodes AS (
        SELECT o.ord, o.node, o.type, false AS removed FROM f, journey._node_order(f.definition) o
         WHERE o.type IN ('send_sms', 'send_email', 'send_whatsapp', 'notify_admin')
            OR EXISTS (SELECT 1 FROM c WHERE c.node = o.node)
        UNION ALL
        SELECT 1000000, g.node,
               (SELECT v.definition -> 'nodes' -> g.node ->> 'type' FROM journey.flow_versions v, f
                 WHERE v.flow_id = f.id AND v.definition -> 'nodes' ? g.node ORDER BY v.version DESC LIMIT 1),
               true
          FROM (SELECT DISTINCT c.node FROM c WHERE c.n <> 0) g, f
         WHERE NOT f.definition -> 'nodes' ? g.node
    )
    SELECT d.node, d.type, d.removed,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label = 'written'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'suppressed'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message'
                                     AND c.label IN ('sent', 'delivered', 'opened', 'clicked', 'undelivered', 'bounced')), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label IN ('delivered', 'opened', 'clicked')), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label IN ('opened', 'clicked')), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label = 'clicked'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label IN ('failed', 'undelivered', 'bounced')), 0)::bigint
      FROM nodes d LEFT JOIN c ON c.node = d.node
     GROUP BY d.ord, d.node, d.type, d.removed
     ORDER BY d.ord, d.node
$$;
COMMENT ON FUNCTION journey.message_stats(text) IS
  'Per node that sends (send_sms, send_email, send_whatsapp, notify_admin, and any node that wrote outbox rows), in flow order, then nodes a later version removed (removed true): written (outbox rows the engine wrote), suppressed (sends skipped: opt-out, no address), sent (handed to the provider: mark_sent or a later report, undelivered and bounced included), delivered (delivered, opened or clicked), opened (opened or clicked), clicked, failed (failed, undelivered or bounced). Statuses as the relay reported them (journey.outbox.status only moves forward); test_send''s messages are not counted. From the counters: totals kept after retention and forget_contact.';

CREATE FUNCTION journey.split_stats(name text)
RETURNS TABLE (node text, branch integer, entered bigint, goal text, reached bigint, reached_pct numeric)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(split_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c WHERE c.kind IN ('branch', 'conversion')
    ), branches AS (
        -- the current version's splits and branches, and any branch with history
        SELECT o.ord, o.node, b.n::integer AS branch FROM f, journey._node_order(f.definition) o,
               generate_series(0, jsonb_array_length(f.definition -> 'nodes' -> o.node -> 'branches') - 1) b (n)
         WHERE o.type = 'split'
        UNION
        SELECT coalesce((SELECT o.ord FROM f, journey._node_order(f.definition) o WHERE o.node = c.node), 1000000),
               c.node, c.label::integer
          FROM c WHERE c.kind = 'branch'
    ), goals AS (
        SELECT DISTINCT coalesce(o.goal, o.node) AS goal FROM f, journey._node_order(f.definition) o WHERE o.type = 'goal'
    ), entered AS (
        SELECT b.ord, b.node, b.branch, coalesce((SELECT sum(c.n) FROM c WHERE c.kind = 'branch' AND c.node = b.node
                                                      AND c.label = b.branch::text), 0)::bigint AS n
          FROM branches b
    )
    SELECT e.node, e.branch, e.n, g.goal, coalesce(r.n, 0)::bigint,
           CASE WHEN e.n = 0 OR g.goal IS NULL THEN NULL ELSE round(100.0 * coalesce(r.n, 0) / e.n, 1) END
      FROM entered e LEFT JOIN goals g ON true
      LEFT JOIN LATERAL (SELECT sum(c.n) AS n FROM c WHERE c.kind = 'conversion' AND c.node = e.node
                            AND c.label = e.branch || ':' || g.goal) r ON true
     ORDER BY e.ord, e.node, e.branch, g.goal
$$;
COMMENT ON FUNCTION journey.split_stats(text) IS
  'A/B conversion: per split node of the flow (in flow order; splits a later version removed last) and branch (its place in branches, from 0), entered (enrollments that took the branch, once each) and, per goal of the current version, reached (those of them that reached the goal, before or after the split, once each) and reached_pct (percent of entered). One row per branch with goal NULL when the flow has no goal. A fork''s branches count for their parent. From the counters: totals kept after retention and forget_contact.';

CREATE FUNCTION journey.goal_stats(name text)
RETURNS TABLE (goal text, reached bigint, reached_pct numeric)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(goal_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c WHERE c.node = '' AND c.kind IN ('goal', 'enrollments')
    ), entered AS (
        SELECT coalesce(sum(c.n), 0) AS n FROM c WHERE c.kind = 'enrollments' AND c.label = 'entered'
    ), goals AS (
        SELECT DISTINCT coalesce(o.goal, o.node) AS goal FROM f, journey._node_order(f.definition) o WHERE o.type = 'goal'
    )
    -- a goal reached along a fork's branch counts for the enrollment the branch belongs to
    SELECT g.goal, coalesce(r.n, 0),
           CASE WHEN entered.n = 0 THEN 0 ELSE round(100.0 * coalesce(r.n, 0) / entered.n, 1) END
    FROM entered CROSS JOIN goals g
    LEFT JOIN c r ON r.kind = 'goal' AND r.label = g.goal
    ORDER BY g.goal
$$;
COMMENT ON FUNCTION journey.goal_stats(text) IS
  'Per goal of the flow''s current version: enrollments that reached it (along any fork branch, once; goal nodes sharing a name count once) and the percent of enrollments that entered the flow. From the counters: totals kept after retention and forget_contact.';

CREATE VIEW journey.flow_overview AS
SELECT f.name AS flow, f.status, f.version,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'entered'), 0)::bigint AS entered,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'active'), 0)::bigint AS active,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'completed'), 0)::bigint AS completed,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'failed'), 0)::bigint AS failed,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'stopped'), 0)::bigint AS stopped,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'exited'), 0)::bigint AS exited
FROM journey.flows f
LEFT JOIN (SELECT k.flow_id, k.label, k.n FROM journey.counters k WHERE k.node = '' AND k.kind = 'enrollments'
           UNION ALL
           SELECT d.flow_id, d.label, d.n FROM journey.counter_deltas d WHERE d.node = '' AND d.kind = 'enrollments') c
       ON c.flow_id = f.id
GROUP BY f.id
ORDER BY f.name;
COMMENT ON VIEW journey.flow_overview IS 'One row per flow: status, current version and enrollment counts (entered, active, completed, failed, stopped, exited); a fork''s branches are counted in their parent. From the counters: entered and the ended counts are totals kept after retention and forget_contact (a forgotten active enrollment leaves active).';

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
               format('enrollment %s (version %s)', e.id, e.version)
                 || CASE WHEN e.record_type IS NULL THEN '' ELSE format(', record %s %s', e.record_type, e.record_key) END AS detail,
               0 AS o, e.id AS k
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
  'Everything that happened to one contact, oldest first: enrollments (kind enrolled; with the record type and key of a record trigger''s), nodes entered (kind step, detail = outcome), messages (kind message; not test_send''s, and named after their flow even once it was deleted) and how enrollments ended (kind completed/exited/stopped/failed, detail = error).';
