-- Retention: settings.keep_sent_messages and settings.keep_ended_enrollments (NULL = keep
-- forever). The worker calls journey._retention_pass every 10 seconds in a transaction of its
-- own; each call deletes at most a few thousand rows, found without an index of their own:
-- outbox rows in id order from a cursor (ids grow with created_at), enrollments by a TID range
-- of the table (a slice of its blocks, like a vacuum pass), so no write pays for retention.

-- One pass: outbox rows after p_outbox_after (in id order, at most p_rows looked at) and the
-- enrollments in blocks [p_block, p_block + p_blocks). Returns where the next pass starts (0:
-- from the beginning again) and what it deleted.
CREATE FUNCTION journey._retention_pass(p_outbox_after bigint, p_block bigint, p_rows integer, p_blocks integer,
                                        OUT outbox_next bigint, OUT block_next bigint,
                                        OUT messages bigint, OUT enrollments bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    s journey.settings;
    last_seen bigint;
    youngest timestamptz;
    nblocks bigint;
BEGIN
    SELECT * INTO s FROM journey.settings;
    outbox_next := 0; block_next := 0; messages := 0; enrollments := 0;
    IF s.keep_sent_messages IS NOT NULL THEN
        -- the next p_rows rows; those final and older than the cutoff go
        WITH slice AS (
            SELECT o.id, o.contact_id, o.status, o.created_at FROM journey.outbox o
            WHERE o.id > p_outbox_after ORDER BY o.id LIMIT p_rows),
        gone AS (
            DELETE FROM journey.outbox o USING slice x
            WHERE o.id = x.id AND o.contact_id = x.contact_id
              AND x.status IN ('sent', 'delivered', 'opened', 'clicked', 'failed', 'undelivered', 'bounced')
              AND x.created_at < now() - s.keep_sent_messages
            RETURNING 1)
        SELECT (SELECT count(*) FROM gone), max(x.id), max(x.created_at) INTO messages, last_seen, youngest FROM slice x;
        -- past the cutoff (or at the end): start again from the beginning next time
        outbox_next := CASE WHEN last_seen IS NULL OR youngest >= now() - s.keep_sent_messages THEN 0 ELSE last_seen END;
    END IF;
    IF s.keep_ended_enrollments IS NOT NULL THEN
        nblocks := pg_relation_size('journey.enrollments') / current_setting('block_size')::bigint;
        -- (their steps go with them: trigger enrollments_delete_steps). Kept: an enrollment that
        -- keeps its contact from entering again: of a flow never re-entered (occurrence once) or
        -- of a record (record:<key>, once per record), and one that ended within its flow's
        -- reentry interval; of those only the steps go (deleting them let the contact in again).
        DELETE FROM journey.enrollments e
        WHERE e.ctid >= format('(%s,0)', p_block)::tid AND e.ctid < format('(%s,0)', p_block + p_blocks)::tid
          AND e.status <> 'active' AND e.updated_at < now() - s.keep_ended_enrollments
          AND e.occurrence IS DISTINCT FROM 'once' AND e.record_key IS NULL
          AND NOT EXISTS (SELECT 1 FROM journey.flows f
                           WHERE f.id = e.flow_id AND e.updated_at > now() - f.reentry_after);
        GET DIAGNOSTICS enrollments = ROW_COUNT;
        DELETE FROM journey.steps st USING journey.enrollments e
        WHERE e.ctid >= format('(%s,0)', p_block)::tid AND e.ctid < format('(%s,0)', p_block + p_blocks)::tid
          AND e.status <> 'active' AND e.updated_at < now() - s.keep_ended_enrollments
          AND st.contact_id = e.contact_id AND st.enrollment_id = e.id;
        block_next := CASE WHEN p_block + p_blocks >= nblocks THEN 0 ELSE p_block + p_blocks END;
    END IF;
END
$$;
COMMENT ON FUNCTION journey._retention_pass(bigint, bigint, integer, integer) IS
  'Internal: one retention pass (the worker runs one every 10 seconds): deletes, among the next p_rows outbox rows after id p_outbox_after, those in a final status older than settings.keep_sent_messages (with their delivery reports), and the enrollments in table blocks [p_block, p_block + p_blocks) that ended before now() - settings.keep_ended_enrollments (with their steps); of an enrollment that keeps its contact from entering again (a flow never re-entered, a record trigger''s, or ended within its flow''s reentry interval) only the steps. Returns where the next pass starts and how many rows it deleted. Does nothing for a setting that is NULL.';
