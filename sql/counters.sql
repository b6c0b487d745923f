-- Counters: the totals the stats read (flow_stats, goal_stats, flow_overview, flow_diagram,
-- node_stats, message_stats, split_stats), kept as the writes they count happen, in the same
-- transactions, so a stat reads a few rows whatever the size of the history.
--
-- Writers never update a shared row: every write that changes a count inserts delta rows
-- (journey.counter_deltas, insert-only, no unique key, so concurrent enrolling transactions
-- and workers' batches never wait for each other), and journey.compact_counters (the worker
-- runs it every few seconds, each call a small transaction) folds them into journey.counters.
-- A read sums both (journey._counts). Deleting history (retention, forget_contact) does not
-- touch the counters: their totals stay.
--
-- Where the deltas come from:
--   enrollments  inserts: the inserting statement itself (journey._entered_keys: entered, the
--                status, waiting at the start node; _enroll, _enroll_occurrences,
--                _on_record_written, the engine's fork branches); updates and deletes:
--                statement-level triggers (transition tables): each enrollment's status, waiting
--                per node, how enrollments ended per node; every path that changes an enrollment
--                (the engine's write-back, fork branches, activation, retry, archive, wake-ups)
--                is counted by the same code
--   steps        the engine's write-back (journey._count_batch, before its steps INSERT): each
--                enrollment once per node, goal and split branch (a fork's branches for their
--                parent), suppressed sends, outbox rows written
--   outbox       a row-level trigger on status changes past leased (mark_sent, mark_failed,
--                report: one row per call anyway); the claim's and retries' updates do not fire it

CREATE TABLE journey.counters (
    flow_id bigint NOT NULL,
    node    text NOT NULL,
    kind    text NOT NULL,
    label   text NOT NULL DEFAULT '',
    n       bigint NOT NULL,
    PRIMARY KEY (flow_id, node, kind, label)
);
COMMENT ON TABLE journey.counters IS
  'Compacted stats counters, one row per (flow, node, kind, label); add the rows of journey.counter_deltas for the current value (journey._counts). node is '''' for the flow''s own counts. Kinds: enrollments (node '''', label entered or a status: enrollments that entered the flow and how many are in each status; a fork''s branches not counted), waiting (active enrollments and branches due to run the node), ended (label a status: enrollments and branches whose trip ended at the node), reached (enrollments that entered the node, once each, a fork''s branches for their parent), suppressed (sends the node suppressed), message (label written: outbox rows the node wrote; sent, delivered, opened, clicked, failed, undelivered, bounced: its messages now in that status), goal (node '''', label the goal''s name: enrollments that reached it, once each), branch (label n: enrollments that took branch n of the split node, once each), conversion (label n:goal: those of them that also reached the goal). Kept by journey.compact_counters; not changed by deletes of history (retention, forget_contact), so totals stay; a deleted flow''s rows go with it.';

CREATE TABLE journey.counter_deltas (
    flow_id bigint NOT NULL,
    node    text NOT NULL,
    kind    text NOT NULL,
    label   text NOT NULL DEFAULT '',
    n       bigint NOT NULL
);
CREATE INDEX counter_deltas_flow ON journey.counter_deltas (flow_id);
COMMENT ON TABLE journey.counter_deltas IS
  'Insert-only changes to journey.counters (same key, n the change), written in the transactions that change what they count: insert-only so concurrent writers of one flow never wait on a shared row. journey.compact_counters moves them into counters; stats add both.';

SELECT pg_catalog.pg_extension_config_dump('journey.counters', '');
SELECT pg_catalog.pg_extension_config_dump('journey.counter_deltas', '');

-- ---------------------------------------------------------------- enrollments
-- The keys one enrollment row counts under: ('', enrollments, status) for an enrollment that
-- entered the flow (not a branch), (node, waiting) while active, (node, ended, status) after.
CREATE FUNCTION journey._enrollment_keys(p_parent bigint, p_status text, p_node text)
RETURNS TABLE (node text, kind text, label text)
LANGUAGE sql IMMUTABLE
-- (no SET clause: the planner inlines it into the triggers' queries; it names no object)
AS $$
    SELECT '', 'enrollments', p_status WHERE p_parent IS NULL
    UNION ALL
    SELECT coalesce(p_node, ''), CASE WHEN p_status = 'active' THEN 'waiting' ELSE 'ended' END,
           CASE WHEN p_status = 'active' THEN '' ELSE p_status END
$$;
COMMENT ON FUNCTION journey._enrollment_keys(bigint, text, text) IS
  'Internal: the counter keys (node, kind, label) an enrollment row with this parent_id, status and node counts under (see journey.counters).';

-- Inserted enrollments are counted by the statement that inserts them (journey._count_entered
-- over its RETURNING rows, the keys of journey._entered_keys): journey._enroll,
-- _enroll_occurrences and the engine's fork branches; _on_record_written by its row count
-- (journey._count_entered_at: one flow, its start node). (An INSERT trigger
-- with a transition table cost enrolling as much as one more index: it keeps every whole row.)
CREATE FUNCTION journey._entered_keys(p_branch boolean, p_node text)
RETURNS TABLE (node text, kind text, label text)
LANGUAGE sql IMMUTABLE
-- (no SET clause: the planner inlines it into the enrolling statements; it names no object)
AS $$
    SELECT '', 'enrollments', 'entered' WHERE NOT p_branch
    UNION ALL
    SELECT k.node, k.kind, k.label FROM journey._enrollment_keys(CASE WHEN p_branch THEN 0::bigint END, 'active', p_node) k
$$;
COMMENT ON FUNCTION journey._entered_keys(boolean, text) IS
  'Internal: the counter keys (node, kind, label) a new enrollment row (status active; p_branch: a fork''s branch, parent_id set) at this node counts under: entered (not a fork''s branch) and those of journey._enrollment_keys. The statements that insert enrollments count them with it.';

CREATE FUNCTION journey._count_entered(p_flows bigint[], p_nodes text[], p_branches boolean[]) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    -- grouped by flow and node first: a statement enrolling 100,000 contacts writes three rows.
    -- (PL/pgSQL: the plan is kept for the session; a SQL function's is made again at each call,
    -- which every enrolling write would pay)
    WITH counted AS (
        INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
        SELECT g.flow_id, k.node, k.kind, k.label, g.n
          FROM (SELECT u.flow_id, u.node, coalesce(u.branch, false) AS branch, count(*) AS n
                  FROM unnest(p_flows, p_nodes, p_branches) AS u (flow_id, node, branch)
                 GROUP BY 1, 2, 3) g
         CROSS JOIN LATERAL journey._entered_keys(g.branch, g.node) k
        RETURNING 1)
    SELECT count(*) INTO n FROM counted;
    RETURN n;
END
$$;
COMMENT ON FUNCTION journey._count_entered(bigint[], text[], boolean[]) IS
  'Internal: counts new enrollments (one element per row: flow, start node, whether a fork''s branch; NULL branches: none is) under journey._entered_keys; returns how many delta rows it wrote. The statements that insert enrollments call it with their RETURNING rows.';

CREATE FUNCTION journey._count_entered_at(p_flow bigint, p_node text, p_n bigint) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF p_n = 0 THEN
        RETURN 0;
    END IF;
    WITH counted AS (
        INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
        SELECT p_flow, k.node, k.kind, k.label, p_n FROM journey._entered_keys(false, p_node) k
        RETURNING 1)
    SELECT count(*) INTO n FROM counted;
    RETURN n;
END
$$;
COMMENT ON FUNCTION journey._count_entered_at(bigint, text, bigint) IS
  'Internal: counts p_n new enrollments (not fork branches) of one flow at one node under journey._entered_keys; returns how many delta rows it wrote. A record trigger''s statement calls it with its row count (its rows all enter one flow at its start node: no arrays of their keys).';

CREATE FUNCTION journey._count_moved() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- each changed row: -1 under its old keys, +1 under its new ones (the keys of
    -- journey._enrollment_keys, written out: this runs for every batch of the engine)
    -- (the changed rows grouped by what changed first: a batch of 1000 steps of one node is one
    -- group, expanded into its keys)
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    SELECT g.flow_id, k.node, k.kind, k.label, sum(k.sign * g.n)
      FROM (SELECT n.flow_id, o.status AS o_status, o.node AS o_node, o.parent_id IS NULL AS o_root,
                   n.status AS n_status, n.node AS n_node, n.parent_id IS NULL AS n_root, count(*) AS n
              FROM old_rows o JOIN new_rows n ON n.contact_id = o.contact_id AND n.id = o.id
             WHERE o.status IS DISTINCT FROM n.status OR o.node IS DISTINCT FROM n.node
             GROUP BY 1, 2, 3, 4, 5, 6, 7) g
     CROSS JOIN LATERAL (VALUES
            ('', 'enrollments', g.o_status, -1, g.o_root),
            (coalesce(g.o_node, ''), CASE WHEN g.o_status = 'active' THEN 'waiting' ELSE 'ended' END,
             CASE WHEN g.o_status = 'active' THEN '' ELSE g.o_status END, -1, true),
            ('', 'enrollments', g.n_status, 1, g.n_root),
            (coalesce(g.n_node, ''), CASE WHEN g.n_status = 'active' THEN 'waiting' ELSE 'ended' END,
             CASE WHEN g.n_status = 'active' THEN '' ELSE g.n_status END, 1, true)) k (node, kind, label, sign, counted)
     WHERE k.counted
     GROUP BY g.flow_id, k.node, k.kind, k.label
    HAVING sum(k.sign * g.n) <> 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._count_moved() IS
  'Trigger: counts enrollments whose status or node changed (the engine''s write-back, a fork''s branches ending their parent, activation, retry, archive) as counter deltas: out of their old status and node, into the new ones.';
CREATE TRIGGER enrollments_count_update AFTER UPDATE ON journey.enrollments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._count_moved();

CREATE FUNCTION journey._count_deleted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- totals stay (entered, ended); only what is current goes: active and waiting
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    SELECT o.flow_id, k.node, k.kind, k.label, -count(*)
      FROM old_rows o CROSS JOIN LATERAL journey._enrollment_keys(o.parent_id, o.status, o.node) k
     WHERE o.status = 'active'
     GROUP BY o.flow_id, k.node, k.kind, k.label;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._count_deleted() IS
  'Trigger: deleted active enrollments (forget_contact, a deleted contact or flow version) leave the active and waiting counts; ended ones keep their totals (retention).';
CREATE TRIGGER enrollments_count_delete AFTER DELETE ON journey.enrollments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._count_deleted();

-- ---------------------------------------------------------------- outbox
CREATE FUNCTION journey._count_message_status() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    SELECT NEW.flow_id, NEW.node, 'message', s.status, s.n
      FROM (VALUES (OLD.status, -1), (NEW.status, 1)) s (status, n)
     WHERE s.status NOT IN ('pending', 'leased');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._count_message_status() IS
  'Trigger: an engine message (not a test_send''s) whose status changed past leased (mark_sent, mark_failed, report) moves from its old status''s count to the new one''s.';
CREATE TRIGGER outbox_count_status AFTER UPDATE OF status ON journey.outbox
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.node IS NOT NULL AND NEW.flow_id IS NOT NULL
                       AND NOT NEW.test AND (OLD.status NOT IN ('pending', 'leased') OR NEW.status NOT IN ('pending', 'leased')))
    EXECUTE FUNCTION journey._count_message_status();

-- ---------------------------------------------------------------- flows
CREATE FUNCTION journey._delete_flow_counters() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.counters c USING old_rows o WHERE c.flow_id = o.id;
    DELETE FROM journey.counter_deltas c USING old_rows o WHERE c.flow_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._delete_flow_counters() IS 'Trigger: a deleted flow''s counters go with it.';
CREATE TRIGGER flows_delete_counters AFTER DELETE ON journey.flows
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._delete_flow_counters();

-- ---------------------------------------------------------------- the engine's steps
-- A goal node's name in a definition (its id when it has none, as the engine reads it).
CREATE FUNCTION journey._goal_name(p_definition jsonb, p_node text) RETURNS text
LANGUAGE sql IMMUTABLE
-- (no SET clause: inlined into its callers' queries; it names no object)
AS $$
    SELECT coalesce(p_definition -> 'nodes' -> p_node ->> 'name', p_node)
$$;
COMMENT ON FUNCTION journey._goal_name(jsonb, text) IS 'Internal: the name of goal node p_node in a definition (its id when it has none).';

-- The engine's write-back calls this before inserting the batch's steps (src/engine/batch.rs),
-- so the history it probes is what came before the batch. Each step's enrollment is counted for
-- its root (the enrollment that entered the flow; a branch's parent), and a node only the first
-- time that root enters it: an index probe of the contact's steps (steps' primary key leads with
-- contact_id), which finds nothing for most steps.
CREATE FUNCTION journey._count_batch(p_enrollment bigint[], p_contact bigint[], p_flow bigint[], p_node text[],
                                     p_outcome text[], p_msg_flow bigint[], p_msg_node text[], p_root bigint[])
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
-- Index probes, whatever the tables' statistics say: a plan made while steps was (or was
-- analyzed) empty must not scan all of steps per step; and planned for each batch (its arrays
-- and the tables as they are now), never a generic plan the worker's session kept from
-- another size of the tables.
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_custom_plan
-- (a probe per step costs more the larger steps looks: past jit_above_cost, compiling the plan
-- took 30 ms of a 40 ms batch)
SET jit = off
AS $$
BEGIN
    -- Fork branches' steps: their parents are locked first (in id order, so two batches never
    -- wait on each other), so that a sibling's batch still in progress commits before this one
    -- reads the history; the next statement's snapshot sees its steps (two workers' batches
    -- running two branches of one fork into one node counted it twice for the parent).
    IF p_root IS DISTINCT FROM p_enrollment THEN
        PERFORM 1 FROM journey.enrollments e
          JOIN (SELECT DISTINCT u.contact_id, u.root
                  FROM unnest(p_contact, p_root, p_enrollment) AS u (contact_id, root, enrollment_id)
                 WHERE u.root <> u.enrollment_id) r ON e.contact_id = r.contact_id AND e.id = r.root
         ORDER BY e.id
           FOR NO KEY UPDATE OF e;
    END IF;
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    -- (each step's root, the enrollment that entered the flow, comes from the claim: a contact
    -- may have several in one flow and batch, one per record of a record trigger; the history
    -- is read only when the contact has steps at the node already)
    SELECT u.flow_id, u.node, 'reached', '', count(DISTINCT u.root)
      FROM unnest(p_root, p_contact, p_flow, p_node) AS u (root, contact_id, flow_id, node)
     WHERE NOT EXISTS (
            SELECT 1 FROM journey.steps h
              JOIN journey.enrollments he ON he.contact_id = h.contact_id AND he.id = h.enrollment_id
             WHERE h.contact_id = u.contact_id
               -- (the contact's steps, read by the primary key; IS TRUE keeps the planner from
               -- taking these for index conditions of any index by flow an admin may add)
               AND (h.flow_id = u.flow_id AND h.node = u.node) IS TRUE
               AND coalesce(he.parent_id, he.id) = u.root
            -- (OFFSET 0: a subplan run per step with its contact as the index key; pulled up
            -- into an anti join it could be planned, on statistics taken while steps was
            -- small, as all of steps read once and compared with every step of the batch)
            OFFSET 0)
     GROUP BY u.flow_id, u.node
    UNION ALL
    SELECT u.flow_id, u.node, 'suppressed', '', count(*)
      FROM unnest(p_flow, p_node, p_outcome) AS u (flow_id, node, outcome)
     WHERE u.outcome LIKE 'suppressed%'
     GROUP BY u.flow_id, u.node
    UNION ALL
    SELECT m.flow_id, m.node, 'message', 'written', count(*)
      FROM unnest(p_msg_flow, p_msg_node) AS m (flow_id, node)
     GROUP BY m.flow_id, m.node;
    IF EXISTS (SELECT 1 FROM unnest(p_outcome) o WHERE o = 'goal' OR o LIKE 'branch %') THEN
        PERFORM journey._count_goals(p_enrollment, p_contact, p_node, p_outcome);
    END IF;
END
$$;
COMMENT ON FUNCTION journey._count_batch(bigint[], bigint[], bigint[], text[], text[], bigint[], text[], bigint[]) IS
  'Internal: the engine''s write-back counts a batch''s steps (enrollment, contact, flow, node, outcome and root, the enrollment that entered the flow, per step) and outbox rows (flow, node per message) before inserting them: reached (each enrollment once per node, a fork''s branches for their parent), suppressed sends, messages written, and through journey._count_goals goals and split branches. A batch with branch steps first locks their parents (in id order), so concurrent batches running branches of one fork count one after the other.';

-- Goals and split branches of a batch (only batches with such steps get here): a root's first
-- goal of a name, its first step along each branch of a split, and the (branch, goal) pairs it
-- completes (A/B conversion: a branch taken and a goal reached, in either order).
CREATE FUNCTION journey._count_goals(p_enrollment bigint[], p_contact bigint[], p_node text[], p_outcome text[])
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_custom_plan
-- (a probe per step costs more the larger steps looks: past jit_above_cost, compiling the plan
-- took 30 ms of a 40 ms batch)
SET jit = off
AS $$
BEGIN
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    WITH batch AS (
        -- the batch's goal and split steps: (root, split node, branch) or (root, goal name)
        SELECT e.contact_id, e.flow_id, coalesce(e.parent_id, e.id) AS root, u.node,
               CASE WHEN u.outcome = 'goal' THEN NULL ELSE substr(u.outcome, 8) END AS branch,
               CASE WHEN u.outcome = 'goal' THEN journey._goal_name(v.definition, u.node) END AS goal
          FROM unnest(p_enrollment, p_contact, p_node, p_outcome) AS u (enrollment_id, contact_id, node, outcome)
          JOIN journey.enrollments e ON e.contact_id = u.contact_id AND e.id = u.enrollment_id
          JOIN journey.flow_versions v ON v.flow_id = e.flow_id AND v.version = e.version
         WHERE u.outcome = 'goal' OR u.outcome LIKE 'branch %'
    ), past AS (
        -- the same from the history of the batch's roots
        SELECT DISTINCT b.contact_id, b.flow_id, b.root, h.node,
               CASE WHEN h.outcome = 'goal' THEN NULL ELSE substr(h.outcome, 8) END AS branch,
               CASE WHEN h.outcome = 'goal' THEN journey._goal_name(v.definition, h.node) END AS goal
          FROM (SELECT DISTINCT contact_id, flow_id, root FROM batch) b
          -- (a lateral subquery, OFFSET 0: the root's contact is the index key of each probe,
          -- whatever steps' statistics say; see journey._count_batch)
          CROSS JOIN LATERAL (
                SELECT h.node, h.outcome, he.flow_id, he.version
                  FROM journey.steps h
                  JOIN journey.enrollments he ON he.contact_id = h.contact_id AND he.id = h.enrollment_id
                 WHERE h.contact_id = b.contact_id AND (h.flow_id = b.flow_id) IS TRUE
                   AND (h.outcome = 'goal' OR h.outcome LIKE 'branch %')
                   AND coalesce(he.parent_id, he.id) = b.root
                OFFSET 0) h
          JOIN journey.flow_versions v ON v.flow_id = h.flow_id AND v.version = h.version
    ), fresh AS (
        -- firsts: in the batch, not in the past
        SELECT DISTINCT b.contact_id, b.flow_id, b.root, CASE WHEN b.goal IS NULL THEN b.node END AS node, b.branch, b.goal
          FROM batch b
         WHERE NOT EXISTS (SELECT 1 FROM past p WHERE p.root = b.root AND p.contact_id = b.contact_id
                              AND (CASE WHEN b.goal IS NULL THEN p.node = b.node AND p.branch = b.branch ELSE p.goal = b.goal END))
    ), seen AS (
        SELECT contact_id, root, node, branch, goal FROM past
        UNION
        SELECT contact_id, root, node, branch, goal FROM batch
    ), pairs AS (
        -- (root, split node, branch, goal) pairs that one of the firsts completes
        SELECT f.flow_id, f.root, s.node, s.branch, f.goal
          FROM fresh f JOIN seen s ON s.contact_id = f.contact_id AND s.root = f.root AND s.goal IS NULL
         WHERE f.goal IS NOT NULL
        UNION
        SELECT f.flow_id, f.root, f.node, f.branch, s.goal
          FROM fresh f JOIN seen s ON s.contact_id = f.contact_id AND s.root = f.root AND s.goal IS NOT NULL
         WHERE f.goal IS NULL
    )
    SELECT flow_id, coalesce(node, ''), CASE WHEN goal IS NULL THEN 'branch' ELSE 'goal' END,
           coalesce(branch, goal), count(*)
      FROM fresh GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT flow_id, node, 'conversion', branch || ':' || goal, count(*)
      FROM pairs GROUP BY 1, 2, 4;
END
$$;
COMMENT ON FUNCTION journey._count_goals(bigint[], bigint[], text[], text[]) IS
  'Internal: counts a batch''s goal and split steps (called by journey._count_batch): each enrollment once per goal name and per split branch, and once per (branch, goal) pair it has completed, in either order (split_stats'' conversions); a fork''s branches count for their parent.';

-- ---------------------------------------------------------------- reading and compaction
CREATE FUNCTION journey._counts(p_flow bigint)
RETURNS TABLE (node text, kind text, label text, n bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT c.node, c.kind, c.label, sum(c.n)::bigint
      FROM (SELECT k.node, k.kind, k.label, k.n FROM journey.counters k WHERE k.flow_id = p_flow
            UNION ALL
            SELECT d.node, d.kind, d.label, d.n FROM journey.counter_deltas d WHERE d.flow_id = p_flow) c
     GROUP BY c.node, c.kind, c.label
$$;
COMMENT ON FUNCTION journey._counts(bigint) IS
  'Internal: a flow''s counters now: journey.counters plus the deltas not yet compacted (see journey.counters for the keys).';

CREATE FUNCTION journey.compact_counters(max_rows integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    moved bigint;
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'compact_counters: max_rows must be at least 1, not %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass how many delta rows one call may fold, e.g. 10000.';
    END IF;
    -- rows of transactions still running are not seen (they are folded next time); a row a
    -- concurrent call deleted first is skipped
    WITH gone AS (
        DELETE FROM journey.counter_deltas d
         WHERE d.ctid = ANY (ARRAY(SELECT x.ctid FROM journey.counter_deltas x LIMIT max_rows))
        RETURNING d.flow_id, d.node, d.kind, d.label, d.n
    ), summed AS (
        SELECT g.flow_id, g.node, g.kind, g.label, sum(g.n)::bigint AS n FROM gone g
         WHERE EXISTS (SELECT 1 FROM journey.flows f WHERE f.id = g.flow_id)
         GROUP BY g.flow_id, g.node, g.kind, g.label
    ), folded AS (
        INSERT INTO journey.counters AS c (flow_id, node, kind, label, n)
        SELECT * FROM summed
        ON CONFLICT (flow_id, node, kind, label) DO UPDATE SET n = c.n + excluded.n
    )
    SELECT count(*) INTO moved FROM gone;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION journey.compact_counters(integer) IS
  'Folds up to max_rows rows of journey.counter_deltas into journey.counters (sums per key; deltas of deleted flows are dropped) and returns how many it folded. The worker calls it every 2 seconds, again while a call folds a full max_rows; reads are right without it (they add the deltas), only slower when many wait.';

-- ---------------------------------------------------------------- the recount
-- What the counters must equal, counted from the tables: the upgrade fills the counters with it
-- once, and the tests compare (tests/pg_regress/sql/counters.sql, tests/crash_test.sh). Equal
-- until history is deleted (retention, forget_contact): the counters keep their totals.
CREATE FUNCTION journey._recount()
RETURNS TABLE (flow_id bigint, node text, kind text, label text, n bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH e AS (
        SELECT e.contact_id, e.id, e.flow_id, e.version, coalesce(e.parent_id, e.id) AS root, e.parent_id, e.status, e.node
          FROM journey.enrollments e
    ), s AS (
        SELECT s.flow_id, s.node, s.outcome, e.contact_id, e.root, v.definition
          FROM journey.steps s JOIN e ON e.contact_id = s.contact_id AND e.id = s.enrollment_id
          JOIN journey.flow_versions v ON v.flow_id = e.flow_id AND v.version = e.version
    ), marks AS (
        SELECT DISTINCT s.flow_id, s.contact_id, s.root, CASE WHEN s.outcome = 'goal' THEN NULL ELSE s.node END AS node,
               CASE WHEN s.outcome = 'goal' THEN NULL ELSE substr(s.outcome, 8) END AS branch,
               CASE WHEN s.outcome = 'goal' THEN journey._goal_name(s.definition, s.node) END AS goal
          FROM s WHERE s.outcome = 'goal' OR s.outcome LIKE 'branch %'
    )
    SELECT e.flow_id, '', 'enrollments', 'entered', count(*) FROM e WHERE e.parent_id IS NULL GROUP BY e.flow_id
    UNION ALL
    SELECT e.flow_id, k.node, k.kind, k.label, count(*)
      FROM e CROSS JOIN LATERAL journey._enrollment_keys(e.parent_id, e.status, e.node) k
     GROUP BY e.flow_id, k.node, k.kind, k.label
    UNION ALL
    SELECT s.flow_id, s.node, 'reached', '', count(DISTINCT (s.contact_id, s.root)) FROM s GROUP BY s.flow_id, s.node
    UNION ALL
    SELECT s.flow_id, s.node, 'suppressed', '', count(*) FROM s WHERE s.outcome LIKE 'suppressed%' GROUP BY s.flow_id, s.node
    UNION ALL
    SELECT o.flow_id, o.node, 'message', 'written', count(*) FROM journey.outbox o
     WHERE NOT o.test AND o.flow_id IS NOT NULL AND o.node IS NOT NULL GROUP BY o.flow_id, o.node
    UNION ALL
    SELECT o.flow_id, o.node, 'message', o.status, count(*) FROM journey.outbox o
     WHERE NOT o.test AND o.flow_id IS NOT NULL AND o.node IS NOT NULL AND o.status NOT IN ('pending', 'leased')
     GROUP BY o.flow_id, o.node, o.status
    UNION ALL
    SELECT m.flow_id, coalesce(m.node, ''), CASE WHEN m.goal IS NULL THEN 'branch' ELSE 'goal' END,
           coalesce(m.branch, m.goal), count(*)
      FROM marks m GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT b.flow_id, b.node, 'conversion', b.branch || ':' || g.goal, count(*)
      FROM marks b JOIN marks g ON g.contact_id = b.contact_id AND g.root = b.root AND g.goal IS NOT NULL
     WHERE b.goal IS NULL
     GROUP BY 1, 2, 4
$$;
COMMENT ON FUNCTION journey._recount() IS
  'Internal: every counter of every flow counted from enrollments, steps and outbox (what journey.counters plus journey.counter_deltas must equal while no history was deleted). The upgrade to 0.3.0 fills the counters with it; tests compare.';

CREATE FUNCTION journey.counter_differences()
RETURNS TABLE (flow_id bigint, node text, kind text, label text, counted bigint, recounted bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH c AS (
        SELECT x.flow_id, x.node, x.kind, x.label, sum(x.n)::bigint AS n
          FROM (SELECT k.flow_id, k.node, k.kind, k.label, k.n FROM journey.counters k
                UNION ALL
                SELECT d.flow_id, d.node, d.kind, d.label, d.n FROM journey.counter_deltas d) x
         WHERE EXISTS (SELECT 1 FROM journey.flows f WHERE f.id = x.flow_id)
         GROUP BY 1, 2, 3, 4
    )
    SELECT coalesce(c.flow_id, r.flow_id), coalesce(c.node, r.node), coalesce(c.kind, r.kind),
           coalesce(c.label, r.label), coalesce(c.n, 0), coalesce(r.n, 0)
      FROM c FULL JOIN journey._recount() r
        ON r.flow_id = c.flow_id AND r.node = c.node AND r.kind = c.kind AND r.label = c.label
     WHERE coalesce(c.n, 0) <> coalesce(r.n, 0)
     ORDER BY 1, 2, 3, 4
$$;
COMMENT ON FUNCTION journey.counter_differences() IS
  'Every counter that differs from a recount from the tables (journey._recount), with both values: empty while no history was deleted. Reads all of enrollments, steps and outbox: a check for tests and audits, not for production hours. After retention or forget_contact the counters are expected to be higher (they keep totals).';
