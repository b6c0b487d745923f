//! SQL-level tests run by `cargo pgrx test` in a real cluster, each in a rolled-back
//! transaction. Time is the virtual clock of `journey.run_due(max, at)`.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn sql(query: &str) {
        Spi::run(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    }

    fn one<T: pgrx::IntoDatum + pgrx::FromDatum>(query: &str) -> Option<T> {
        Spi::get_one::<T>(query).unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    fn text(query: &str) -> String {
        one::<String>(query).unwrap_or_default()
    }

    fn count(query: &str) -> i64 {
        one::<i64>(query).unwrap_or(-1)
    }

    /// Runs `query`, returning "SQLSTATE|message|hint" of the error it raises ("no error" if none).
    fn error_of(query: &str) -> String {
        sql("CREATE OR REPLACE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
             DECLARE s text; m text; h text;
             BEGIN EXECUTE q; RETURN 'no error';
             EXCEPTION WHEN OTHERS THEN
               GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, h = PG_EXCEPTION_HINT;
               RETURN s || '|' || m || '|' || coalesce(h, '');
             END $$");
        Spi::get_one_with_args::<String>("SELECT pg_temp.err($1)", &[query.into()])
            .unwrap()
            .unwrap_or_default()
    }

    fn assert_error(query: &str, sqlstate: &str, names: &str) {
        let e = error_of(query);
        let parts: Vec<&str> = e.splitn(3, '|').collect();
        assert_eq!(parts[0], sqlstate, "{query} -> {e}");
        assert!(
            parts[1].contains(names),
            "message of {query} should name {names}: {e}"
        );
        assert!(
            parts.len() == 3 && !parts[2].is_empty(),
            "{query} should have a hint: {e}"
        );
    }

    const WELCOME: &str = r#"{
        "triggers": [{"type": "group_joined", "group": "newsletter"}],
        "start": "sms",
        "nodes": {
            "sms":  {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "sender": "ACME",
                     "next": {"to": "mail", "delay": "1 hour"}},
            "mail": {"type": "send_email", "template": "welcome_email", "next": "won"},
            "won":  {"type": "goal", "name": "welcomed"}
        }}"#;

    fn setup() {
        sql("UPDATE journey.settings SET quiet_hours_start = '00:00', quiet_hours_end = '00:00'");
        sql("INSERT INTO journey.groups (name) VALUES ('newsletter'), ('vip')");
        sql("INSERT INTO journey.templates (name, channel, subject, body)
             VALUES ('welcome_email', 'email', 'Welcome {{ contact.first_name }}', 'Hello {{ contact.first_name }} from {{ flow.name }}')");
        sql(&format!(
            "SELECT journey.create_flow('welcome', '{WELCOME}')"
        ));
    }

    fn contact(first: &str) -> i64 {
        Spi::get_one_with_args::<i64>(
            "SELECT journey.upsert_contact(jsonb_build_object('first_name', $1::text, 'phone', '+1555' || $1, 'email', lower($1) || '@example.com'))",
            &[first.into()],
        )
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn welcome_journey_runs_end_to_end() {
        setup();
        sql("SELECT journey.activate_flow('welcome')");
        let dana = contact("Dana");
        sql(&format!(
            "SELECT journey.add_to_group({dana}, 'newsletter')"
        ));
        assert_eq!(
            count("SELECT count(*) FROM journey.enrollments WHERE status = 'active'"),
            1
        );
        assert_eq!(one::<i32>("SELECT journey.run_due(100, now())"), Some(1));
        assert_eq!(text("SELECT channel || '|' || recipient || '|' || sender || '|' || body || '|' || sms_encoding || '|' || sms_segments FROM journey.outbox"),
                   "sms|+1555Dana|ACME|Hi Dana|GSM-7|1");
        let e = count("SELECT id FROM journey.enrollments");
        assert_eq!(
            text("SELECT idempotency_key FROM journey.outbox"),
            format!("{e}:sms:1")
        );
        // the delay holds the email back
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '59 minutes')"),
            Some(0)
        );
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '61 minutes')"),
            Some(1)
        );
        assert_eq!(text("SELECT recipient || '|' || subject || '|' || body FROM journey.outbox WHERE channel = 'email'"),
                   "dana@example.com|Welcome Dana|Hello Dana from welcome");
        assert_eq!(text("SELECT status FROM journey.enrollments"), "completed");
        assert_eq!(
            text("SELECT string_agg(node || ':' || outcome, ',' ORDER BY id) FROM journey.steps"),
            "sms:sent,mail:sent,won:goal"
        );
        assert_eq!(text("SELECT string_agg(node || ':' || type || ':' || reached || ':' || reached_pct || ':' || waiting, ',')
                         FROM journey.flow_stats('welcome')"),
                   "sms:send_sms:1:100.0:0,mail:send_email:1:100.0:0,won:goal:1:100.0:0");
        assert_eq!(text("SELECT goal || ':' || reached || ':' || reached_pct FROM journey.goal_stats('welcome')"), "welcomed:1:100.0");
        assert_eq!(text("SELECT entered || ':' || active || ':' || completed || ':' || failed FROM journey.flow_overview WHERE flow = 'welcome'"), "1:0:1:0");
        assert_eq!(
            text(&format!(
                "SELECT string_agg(kind, ',' ORDER BY at, kind) FROM journey.timeline({dana})"
            ))
            .split(',')
            .count(),
            7
        );
        // nothing left to run
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '10 days')"),
            Some(0)
        );
    }

    #[pg_test]
    fn waiting_counts_and_missing_phone_is_suppressed() {
        setup();
        sql("SELECT journey.activate_flow('welcome')");
        let nobody = count("SELECT journey.upsert_contact('{\"first_name\": \"Nophone\", \"email\": \"n@example.com\"}')");
        let opted = count("SELECT journey.upsert_contact('{\"first_name\": \"Opt\", \"phone\": \"+1\", \"sms_opt_out\": true}')");
        sql(&format!("INSERT INTO journey.group_members (group_id, contact_id) SELECT g.id, c FROM journey.groups g, unnest(ARRAY[{nobody}, {opted}]::bigint[]) c WHERE g.name = 'newsletter'"));
        sql("SELECT journey.run_due(100, now())");
        assert_eq!(count("SELECT count(*) FROM journey.outbox"), 0);
        assert_eq!(
            text("SELECT string_agg(outcome, ',' ORDER BY outcome) FROM journey.steps"),
            "suppressed: no phone,suppressed: sms_opt_out"
        );
        assert_eq!(text("SELECT string_agg(node || ':' || waiting, ',') FROM journey.flow_stats('welcome') WHERE waiting > 0"), "mail:2");
    }

    #[pg_test]
    fn group_joined_only_after_activation_unless_include_existing() {
        setup();
        let before = contact("Early");
        sql(&format!(
            "SELECT journey.add_to_group({before}, 'newsletter')"
        ));
        sql("SELECT journey.activate_flow('welcome')");
        assert_eq!(
            count("SELECT count(*) FROM journey.enrollments"),
            0,
            "existing members are not enrolled by default"
        );
        sql("SELECT journey.pause_flow('welcome')");
        sql("SELECT journey.activate_flow('welcome', include_existing => true)");
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM journey.enrollments WHERE contact_id = {before}"
            )),
            1
        );
    }

    #[pg_test]
    fn rolled_back_insert_enrolls_nobody() {
        setup();
        sql("SELECT journey.activate_flow('welcome')");
        let c = contact("Ghost");
        sql(&format!(
            "DO $$ BEGIN
                 PERFORM journey.add_to_group({c}, 'newsletter');
                 RAISE EXCEPTION 'app rolls back';
               EXCEPTION WHEN raise_exception THEN NULL; END $$"
        ));
        assert_eq!(count("SELECT count(*) FROM journey.enrollments"), 0);
        assert_eq!(count("SELECT count(*) FROM journey.group_members"), 0);
    }

    #[pg_test]
    fn one_active_enrollment_and_reentry_rules() {
        setup();
        sql(
            r#"SELECT journey.create_flow('m', '{"triggers": [{"type": "manual"}], "start": "g", "nodes": {"g": {"type": "goal"}}}')"#,
        );
        sql("SELECT journey.activate_flow('m')");
        let c = contact("Re");
        // never (default): a second enroll while active, and after completion, does nothing
        assert!(one::<i64>(&format!("SELECT journey.enroll('m', {c})")).is_some());
        assert!(one::<i64>(&format!("SELECT journey.enroll('m', {c})")).is_none());
        sql("SELECT journey.run_due(10, now())");
        assert!(one::<i64>(&format!("SELECT journey.enroll('m', {c})")).is_none());
        // always: re-enters after completion, never while active
        sql(
            r#"SELECT journey.update_flow('m', '{"triggers": [{"type": "manual"}], "reentry": "always", "start": "g", "nodes": {"g": {"type": "goal", "next": {"to": "g2", "delay": "1 day"}}, "g2": {"type": "exit"}}}')"#,
        );
        sql("SELECT journey.activate_flow('m')");
        assert!(one::<i64>(&format!("SELECT journey.enroll('m', {c})")).is_some());
        assert!(
            one::<i64>(&format!("SELECT journey.enroll('m', {c})")).is_none(),
            "already active"
        );
        assert_eq!(
            count("SELECT count(*) FROM journey.enrollments WHERE status = 'active'"),
            1
        );
        // after: not before the interval has passed since the last enrollment ended
        sql(
            r#"SELECT journey.update_flow('m', '{"triggers": [{"type": "manual"}], "reentry": {"after": "30 days"}, "start": "g", "nodes": {"g": {"type": "goal"}}}')"#,
        );
        sql("SELECT journey.activate_flow('m', in_flight => 'stop')");
        assert!(
            one::<i64>(&format!("SELECT journey.enroll('m', {c})")).is_none(),
            "ended moments ago"
        );
        sql("UPDATE journey.enrollments SET updated_at = now() - interval '31 days'");
        assert!(one::<i64>(&format!("SELECT journey.enroll('m', {c})")).is_some());
    }

    #[pg_test]
    fn form_submission_maps_fields_creates_contact_and_enrolls() {
        setup();
        sql(
            r#"INSERT INTO journey.forms (name, field_map) VALUES ('contact-us', '{"Email": "email", "Name": "first_name", "City": "attributes.city"}')"#,
        );
        sql(
            r#"SELECT journey.create_flow('f', '{"triggers": [{"type": "form_submitted", "form": "contact-us"}], "start": "s",
               "nodes": {"s": {"type": "send_email", "subject": "Thanks {{ contact.first_name }}", "body": "You wrote from {{ event.City }}"}}}')"#,
        );
        sql("SELECT journey.activate_flow('f')");
        let sid = count(
            r#"SELECT journey.submit_form('contact-us', '{"Email": "Mia@Example.com", "Name": "Mia", "City": "Iasi"}')"#,
        );
        assert_eq!(text("SELECT first_name || '|' || email || '|' || (attributes->>'city') FROM journey.contacts"), "Mia|Mia@Example.com|Iasi");
        assert_eq!(count(&format!("SELECT count(*) FROM journey.form_submissions s JOIN journey.contacts c ON c.id = s.contact_id WHERE s.id = {sid}")), 1);
        // a second submission matches the same contact (case-insensitive email) and updates it
        sql(
            r#"SELECT journey.submit_form('contact-us', '{"Email": "mia@example.com", "Name": "Mia R"}')"#,
        );
        assert_eq!(count("SELECT count(*) FROM journey.contacts"), 1);
        assert_eq!(text("SELECT first_name FROM journey.contacts"), "Mia R");
        sql("SELECT journey.run_due(10, now())");
        assert_eq!(
            text("SELECT subject || '|' || body FROM journey.outbox"),
            "Thanks Mia R|You wrote from Iasi"
        );
    }

    #[pg_test]
    fn events_check_params_map_fields_and_filter_with_where() {
        setup();
        sql(
            r#"SELECT journey.define_event('order_paid', '[{"name": "amount", "type": "number", "required": true},
               {"name": "coupon", "type": "string", "pattern": "^[A-Z0-9]+$"},
               {"name": "city", "type": "string", "contact_field": "attributes.city"}]')"#,
        );
        sql(
            r#"SELECT journey.create_flow('big', '{"triggers": [{"type": "event", "event": "order_paid", "where": {"field": "event.amount", "op": ">", "value": 100}}],
               "start": "s", "nodes": {"s": {"type": "send_sms", "text": "Thanks for {{ event.amount }}"}}}')"#,
        );
        sql("SELECT journey.activate_flow('big')");
        let c = contact("Ion");
        assert_error(
            &format!("SELECT journey.emit('order_paid', {c}, '{{}}')"),
            "23502",
            "amount",
        );
        assert_error(
            &format!("SELECT journey.emit('order_paid', {c}, '{{\"amount\": \"lots\"}}')"),
            "22023",
            "amount",
        );
        assert_error(&format!("SELECT journey.emit('order_paid', {c}, '{{\"amount\": 5, \"coupon\": \"bad one\"}}')"), "23514", "coupon");
        assert_error(
            &format!("SELECT journey.emit('no_such_event', {c})"),
            "42704",
            "no_such_event",
        );
        assert_eq!(
            count("SELECT count(*) FROM journey.events"),
            0,
            "bad input changes nothing"
        );
        sql(&format!(
            "SELECT journey.emit('order_paid', {c}, '{{\"amount\": 50, \"city\": \"Cluj\"}}')"
        ));
        assert_eq!(
            count("SELECT count(*) FROM journey.enrollments"),
            0,
            "where amount > 100 does not match"
        );
        assert_eq!(
            text("SELECT attributes->>'city' FROM journey.contacts"),
            "Cluj"
        );
        sql(&format!(
            "SELECT journey.emit('order_paid', {c}, '{{\"amount\": 150}}')"
        ));
        assert_eq!(count("SELECT count(*) FROM journey.enrollments"), 1);
        sql("SELECT journey.run_due(10, now())");
        assert_eq!(text("SELECT body FROM journey.outbox"), "Thanks for 150");
        assert_error(
            "SELECT journey.define_event('has space', '[]')",
            "42602",
            "has space",
        );
    }

    #[pg_test]
    fn update_pauses_and_in_flight_continue_or_stop() {
        setup();
        sql("SELECT journey.activate_flow('welcome')");
        let a = contact("A");
        let b = contact("B");
        sql(&format!("SELECT journey.add_to_group({a}, 'newsletter')"));
        sql("SELECT journey.run_due(10, now())"); // a waits before "mail"
                                                  // version 2 drops "mail": a (waiting at mail) must be stopped on activation with continue
        let v2 = WELCOME
            .replace(
                r#""mail": {"type": "send_email", "template": "welcome_email", "next": "won"},"#,
                "",
            )
            .replace(r#""to": "mail""#, r#""to": "won""#);
        assert_eq!(
            one::<i32>(&format!("SELECT journey.update_flow('welcome', '{v2}')")),
            Some(2)
        );
        assert_eq!(
            text("SELECT status || ':' || paused_reason FROM journey.flows"),
            "paused:edited"
        );
        // paused: triggers do not enroll, the engine skips
        sql(&format!("SELECT journey.add_to_group({b}, 'newsletter')"));
        assert_eq!(count("SELECT count(*) FROM journey.enrollments"), 1);
        assert_eq!(
            one::<i32>("SELECT journey.run_due(10, now() + interval '2 hours')"),
            Some(0)
        );
        sql("SELECT journey.activate_flow('welcome')");
        assert_eq!(
            text("SELECT status || ':' || last_error FROM journey.enrollments"),
            "stopped:node \"mail\" no longer exists in version 2"
        );
        // a frozen enrollment whose node still exists continues on the new version
        sql(&format!(
            "SELECT journey.remove_from_group({b}, 'newsletter')"
        ));
        sql(&format!("SELECT journey.add_to_group({b}, 'newsletter')"));
        sql("SELECT journey.run_due(10, now())"); // b waits before "won"
        sql(&format!("SELECT journey.update_flow('welcome', '{v2}')"));
        sql("SELECT journey.activate_flow('welcome')");
        assert_eq!(
            text(&format!(
                "SELECT status || ':' || version FROM journey.enrollments WHERE contact_id = {b}"
            )),
            "active:3"
        );
        assert_eq!(
            one::<i32>("SELECT journey.run_due(10, now() + interval '2 hours')"),
            Some(1)
        );
        assert_eq!(
            text(&format!(
                "SELECT status FROM journey.enrollments WHERE contact_id = {b}"
            )),
            "completed"
        );
        // in_flight = stop stops them all
        let c = contact("C");
        sql(&format!("SELECT journey.add_to_group({c}, 'newsletter')"));
        sql("SELECT journey.pause_flow('welcome')");
        sql("SELECT journey.activate_flow('welcome', in_flight => 'stop')");
        assert_eq!(
            text(&format!(
                "SELECT status FROM journey.enrollments WHERE contact_id = {c}"
            )),
            "stopped"
        );
        sql("SELECT journey.archive_flow('welcome')");
        assert_error(
            "SELECT journey.activate_flow('welcome')",
            "55000",
            "welcome",
        );
    }

    #[pg_test]
    fn validate_lists_every_problem() {
        setup();
        sql(r#"SELECT journey.create_flow('bad', '{
            "triggers": [{"type": "group_joined", "group": "nope"}, {"type": "form_submitted", "form": "noform"},
                         {"type": "event", "event": "noevent"}, {"type": "date"}],
            "start": "a",
            "nodes": {
              "a": {"type": "send_sms", "next": "ghost"},
              "b": {"type": "teleport"},
              "c": {"type": "send_email", "template": "notemplate", "next": {"to": "d", "delay": "soon", "at": "25:00", "days": ["funday"]}},
              "d": {"type": "send_sms", "text": "{% if %}", "next": "e"},
              "e": {"type": "goal", "next": "d"},
              "s": {"type": "split", "branches": [{"percent": 50, "next": "a"}, {"percent": 40, "next": "a"}]}
            }}')"#);
        let all = text(
            "SELECT string_agg(node || ': ' || problem, E'\n') FROM journey.validate_flow('bad')",
        );
        for needle in [
            "a: missing required field \"text\"",
            "a: next points to missing node \"ghost\"",
            "b: unknown node type \"teleport\"",
            "c: field \"delay\"",
            "c: field \"at\"",
            "c: field \"days\"",
            "d: field \"text\": Liquid syntax error",
            "cycle with no delay",
            "unreachable from start",
            "unknown group \"nope\"",
            "unknown form \"noform\"",
            "unknown event type \"noevent\"",
            "unknown template \"notemplate\"",
            "trigger type \"date\" is not yet supported",
            "s: node type \"split\" is not yet supported",
            "s: split percentages sum to 90, not 100",
        ] {
            assert!(all.contains(needle), "expected «{needle}» in:\n{all}");
        }
        sql(r#"SELECT journey.create_flow('empty', '{}')"#);
        let empty = text("SELECT string_agg(problem, E'\n') FROM journey.validate_flow('empty')");
        assert!(
            empty.contains("no trigger") && empty.contains("missing \"start\""),
            "{empty}"
        );
        sql(
            r#"SELECT journey.create_flow('badstart', '{"triggers": [{"type": "manual"}], "start": "zz", "nodes": {"a": {"type": "exit"}}}')"#,
        );
        assert!(
            text("SELECT string_agg(problem, ',') FROM journey.validate_flow('badstart')")
                .contains("unknown node \"zz\"")
        );
        // activation refuses, listing the problems, and changes nothing
        let e = error_of("SELECT journey.activate_flow('bad')");
        assert!(e.starts_with("42P17|flow \"bad\" is incomplete"), "{e}");
        assert_eq!(
            text("SELECT status FROM journey.flows WHERE name = 'bad'"),
            "draft"
        );
        assert_eq!(
            count("SELECT count(*) FROM journey.validate_flow('welcome')"),
            0
        );
    }

    #[pg_test]
    fn render_error_fails_only_that_enrollment() {
        setup();
        sql(
            r#"SELECT journey.create_flow('r', '{"triggers": [{"type": "manual"}], "start": "s",
               "nodes": {"s": {"type": "send_sms", "text": "Code {{ event.code | upcase }} for {{ event.order.id }}"}}}')"#,
        );
        sql("SELECT journey.activate_flow('r')");
        let ok = contact("Ok");
        let bad = contact("Bad");
        sql(&format!(
            "SELECT journey.enroll('r', {ok}, '{{\"code\": \"x\", \"order\": {{\"id\": 7}}}}')"
        ));
        sql(&format!(
            "SELECT journey.enroll('r', {bad}, '{{\"code\": \"y\"}}')"
        ));
        assert_eq!(one::<i32>("SELECT journey.run_due(10, now())"), Some(2));
        assert_eq!(text("SELECT body FROM journey.outbox"), "Code X for 7");
        assert_eq!(
            text(&format!(
                "SELECT status FROM journey.enrollments WHERE contact_id = {bad}"
            )),
            "failed"
        );
        let err = text(&format!(
            "SELECT last_error FROM journey.enrollments WHERE contact_id = {bad}"
        ));
        assert!(err.contains("flow \"r\", node \"s\""), "{err}");
        assert_eq!(count(&format!("SELECT count(*) FROM journey.timeline({bad}) WHERE kind = 'failed' AND detail IS NOT NULL")), 1);
        // a template deleted after activation fails only that enrollment too
        sql("SELECT journey.activate_flow('welcome')");
        sql("DELETE FROM journey.templates");
        sql(&format!("SELECT journey.add_to_group({ok}, 'newsletter')"));
        sql("SELECT journey.run_due(10, now() + interval '2 hours')");
        sql("SELECT journey.run_due(10, now() + interval '4 hours')");
        let err = text(&format!("SELECT last_error FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'welcome'"));
        assert!(
            err.contains("template \"welcome_email\" does not exist"),
            "{err}"
        );
    }

    #[pg_test]
    fn relay_claim_mark_and_report() {
        setup();
        sql("SELECT journey.activate_flow('welcome')");
        for n in ["R1", "R2", "R3"] {
            let c = contact(n);
            sql(&format!("SELECT journey.add_to_group({c}, 'newsletter')"));
        }
        sql("SELECT journey.run_due(10, now())");
        sql("UPDATE journey.outbox SET not_before = now() + interval '1 hour' WHERE recipient = '+1555R3'");
        assert_eq!(
            count("SELECT count(*) FROM journey.claim(ARRAY['email'])"),
            0,
            "channel filter"
        );
        assert_eq!(
            count("SELECT count(*) FROM journey.claim(ARRAY['sms'], 10)"),
            2,
            "not_before respected"
        );
        assert_eq!(
            count("SELECT count(*) FROM journey.claim()"),
            0,
            "leased rows are not claimed again"
        );
        let id = count("SELECT min(id) FROM journey.outbox");
        assert_eq!(
            one::<bool>(&format!("SELECT journey.mark_sent({id}, 'prov-1')")),
            Some(true)
        );
        assert_eq!(
            one::<bool>(&format!("SELECT journey.mark_sent({id}, 'prov-1')")),
            Some(false),
            "second mark_sent is harmless"
        );
        // report: forward only, idempotent by provider event id, unknown id -> false
        assert_eq!(
            one::<bool>("SELECT journey.report('prov-1', 'delivered', 'ev-1')"),
            Some(true)
        );
        assert_eq!(
            one::<bool>("SELECT journey.report('prov-1', 'delivered', 'ev-1')"),
            Some(false)
        );
        assert_eq!(
            one::<bool>("SELECT journey.report('prov-1', 'sent', 'ev-2')"),
            Some(true)
        );
        assert_eq!(
            text(&format!(
                "SELECT status FROM journey.outbox WHERE id = {id}"
            )),
            "delivered"
        );
        assert_eq!(
            one::<bool>("SELECT journey.report('nobody-knows', 'delivered')"),
            Some(false)
        );
        assert_eq!(count("SELECT count(*) FROM journey.delivery_reports"), 2);
        assert_error(
            "SELECT journey.report('prov-1', 'teleported')",
            "22023",
            "teleported",
        );
        // mark_failed: retry with backoff, then terminal
        sql("UPDATE journey.settings SET max_attempts = 2");
        let other = count("SELECT max(id) FROM journey.outbox WHERE status = 'leased'");
        assert_eq!(
            text(&format!("SELECT journey.mark_failed({other}, 'timeout')")),
            "pending"
        );
        assert_eq!(count(&format!("SELECT count(*) FROM journey.outbox WHERE id = {other} AND not_before > now() + interval '29 seconds' AND last_error = 'timeout'")), 1);
        sql(&format!(
            "UPDATE journey.outbox SET not_before = now() - interval '1 second' WHERE id = {other}"
        ));
        assert_eq!(count("SELECT count(*) FROM journey.claim(ARRAY['sms'])"), 1);
        assert_eq!(
            text(&format!(
                "SELECT journey.mark_failed({other}, 'timeout again')"
            )),
            "failed"
        );
        assert_eq!(
            text(&format!("SELECT journey.mark_failed({other}, 'late')")),
            "failed"
        );
        assert_error("SELECT journey.claim(NULL, 0)", "22023", "max");
        assert_error(
            "SELECT journey.claim(NULL, 10, '-1 minute')",
            "22023",
            "lease",
        );
        assert_error("SELECT journey.mark_sent(987654321)", "P0002", "987654321");
    }

    #[pg_test]
    fn bad_input_raises_named_errors_and_changes_nothing() {
        setup();
        for (query, sqlstate, names) in [
            ("SELECT journey.activate_flow('nope')", "42704", "nope"),
            ("SELECT journey.enroll('nope', 1)", "42704", "nope"),
            ("SELECT * FROM journey.flow_stats('nope')", "42704", "nope"),
            (
                "SELECT journey.create_flow('x', '[1, 2]')",
                "22032",
                "\"x\"",
            ),
            (
                "SELECT journey.create_flow('x', '{\"nodes\": []}')",
                "22032",
                "nodes",
            ),
            (
                "SELECT journey.create_flow('x', '{\"triggers\": {}}')",
                "22032",
                "triggers",
            ),
            (
                "SELECT journey.create_flow('welcome', '{}')",
                "42710",
                "welcome",
            ),
            (
                "SELECT journey.create_flow(NULL, '{}')",
                "22004",
                "flow name",
            ),
            (
                "SELECT journey.create_flow('x', NULL)",
                "22004",
                "definition",
            ),
            (
                "SELECT journey.add_to_group(1, 'nogroup')",
                "42704",
                "nogroup",
            ),
            (
                "SELECT journey.add_to_group(424242, 'vip')",
                "23503",
                "424242",
            ),
            (
                "SELECT journey.submit_form('noform', '{}')",
                "42704",
                "noform",
            ),
            ("SELECT journey.emit('noevent', NULL)", "22004", "contact"),
            ("SELECT journey.run_due(0)", "22023", "max_steps"),
            ("SELECT journey.run_due(NULL)", "22004", "max_steps"),
            (
                "SELECT journey.activate_flow('welcome', false, 'maybe')",
                "22023",
                "in_flight",
            ),
            (
                "SELECT journey.upsert_contact('{\"shoe_size\": 9}')",
                "22023",
                "shoe_size",
            ),
            ("SELECT journey.pause_flow('welcome')", "55000", "welcome"),
        ] {
            assert_error(query, sqlstate, names);
        }
        assert_eq!(count("SELECT count(*) FROM journey.flows"), 1);
        assert_eq!(count("SELECT count(*) FROM journey.contacts"), 0);
        // constraints make bad states impossible
        assert!(
            error_of("INSERT INTO journey.flows (name, status) VALUES ('z', 'running')")
                .starts_with("23514")
        );
        assert!(
            error_of("INSERT INTO journey.contacts (time_zone) VALUES ('Mars/Olympus')")
                .starts_with("23514")
        );
        assert!(
            error_of("INSERT INTO journey.event_types (name) VALUES ('with space')")
                .starts_with("23514")
        );
    }

    #[pg_test]
    fn every_table_view_and_function_has_a_comment() {
        let missing = text(
            "SELECT string_agg(what, ', ') FROM (
               SELECT c.relname AS what FROM pg_class c
               WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'v')
                 AND obj_description(c.oid, 'pg_class') IS NULL
               UNION ALL
               SELECT p.oid::regprocedure::text FROM pg_proc p
               WHERE p.pronamespace = 'journey'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL) x",
        );
        assert_eq!(missing, "", "objects without COMMENT");
    }
}
