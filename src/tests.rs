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

    /// The welcome flow active, Dana and Ion enrolled by joining its group.
    fn welcome_dana_and_ion() -> (i64, i64) {
        setup();
        sql("SELECT journey.activate_flow('welcome')");
        let dana = contact("Dana");
        let ion = contact("Ion");
        sql(&format!(
            "SELECT journey.add_to_group(c, 'newsletter') FROM unnest(ARRAY[{dana}, {ion}]) c"
        ));
        (dana, ion)
    }

    #[pg_test]
    fn deleting_a_contact_or_a_flow_deletes_its_enrollments_and_steps() {
        // enrollments and steps carry no foreign keys (speed); triggers do the cascading
        let (dana, _) = welcome_dana_and_ion();
        sql("SELECT journey.run_due(100, now())");
        assert_eq!(count("SELECT count(*) FROM journey.steps"), 2);
        sql(&format!("DELETE FROM journey.contacts WHERE id = {dana}"));
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM journey.enrollments WHERE contact_id = {dana}"
            )),
            0
        );
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM journey.steps WHERE contact_id = {dana}"
            )),
            0
        );
        assert_eq!(count("SELECT count(*) FROM journey.enrollments"), 1);
        sql("DELETE FROM journey.flows WHERE name = 'welcome'");
        assert_eq!(count("SELECT count(*) FROM journey.enrollments"), 0);
        assert_eq!(count("SELECT count(*) FROM journey.steps"), 0);
    }

    #[pg_test]
    fn an_enrollment_without_its_contact_or_version_fails_alone() {
        // without foreign keys such rows can only be written by hand; the batch goes on
        let (dana, _) = welcome_dana_and_ion();
        let noa = contact("Noa");
        sql(&format!(
            "INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at)
             SELECT id, 1, 999999, 'sms', now() FROM journey.flows WHERE name = 'welcome'
             UNION ALL SELECT id, 7, {noa}, 'sms', now() FROM journey.flows WHERE name = 'welcome'"
        ));
        assert_eq!(one::<i32>("SELECT journey.run_due(100, now())"), Some(4));
        assert_eq!(
            text("SELECT last_error FROM journey.enrollments WHERE contact_id = 999999"),
            "contact 999999 does not exist"
        );
        assert!(text(&format!(
            "SELECT last_error FROM journey.enrollments WHERE contact_id = {noa}"
        ))
        .contains("version 7 does not exist"));
        assert_eq!(
            text(&format!(
                "SELECT body FROM journey.outbox WHERE contact_id = {dana}"
            )),
            "Hi Dana"
        );
    }

    #[pg_test]
    fn an_enrollment_changed_by_its_own_batch_is_still_written_back() {
        // A trigger of the site's own touches the enrollment while update_contact runs: its row
        // moves, the write-back by ctid misses it and falls back to the key join.
        setup();
        sql(
            r#"SELECT journey.create_flow('touch', '{"triggers": [{"type": "manual"}], "start": "u",
               "nodes": {"u": {"type": "update_contact", "set": {"attributes.seen": true}, "next": "s"},
                         "s": {"type": "send_sms", "text": "seen"}}}')"#,
        );
        sql("SELECT journey.activate_flow('touch')");
        sql(
            r#"CREATE FUNCTION public.touch_enrollments() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN UPDATE journey.enrollments SET data = data || '{"touched": true}' WHERE contact_id = NEW.id; RETURN NEW; END $$"#,
        );
        sql("CREATE TRIGGER touch AFTER UPDATE ON journey.contacts FOR EACH ROW EXECUTE FUNCTION public.touch_enrollments()");
        let dana = contact("Dana");
        sql(&format!("SELECT journey.enroll('touch', {dana})"));
        assert_eq!(one::<i32>("SELECT journey.run_due(100, now())"), Some(1));
        assert_eq!(
            text("SELECT status || '|' || node || '|' || seq || '|' || (data->>'touched') FROM journey.enrollments"),
            "completed|s|2|true"
        );
        assert_eq!(
            count("SELECT count(*) FROM journey.outbox WHERE body = 'seen'"),
            1
        );
    }

    #[pg_test]
    fn an_outbox_key_written_before_keeps_the_first_row() {
        // The engine inserts outbox rows without ON CONFLICT (keys cannot repeat: they commit
        // with the enrollment's seq); should one exist anyway, the insert is repeated with ON
        // CONFLICT DO NOTHING in the same batch and the first row wins.
        let (dana, ion) = welcome_dana_and_ion();
        let e = count(&format!(
            "SELECT id FROM journey.enrollments WHERE contact_id = {dana}"
        ));
        sql(&format!(
            "INSERT INTO journey.outbox (idempotency_key, channel, contact_id, body) VALUES ('{e}:sms:1', 'sms', {dana}, 'written before')"
        ));
        assert_eq!(one::<i32>("SELECT journey.run_due(100, now())"), Some(2));
        assert_eq!(
            text(&format!(
                "SELECT string_agg(body, ',') FROM journey.outbox WHERE contact_id = {dana}"
            )),
            "written before"
        );
        assert_eq!(
            text(&format!(
                "SELECT body FROM journey.outbox WHERE contact_id = {ion}"
            )),
            "Hi Ion"
        );
        assert_eq!(
            count("SELECT count(*) FROM journey.enrollments WHERE node = 'mail' AND status = 'active'"),
            2
        );
    }

    /// The engine reads the contact's columns one by one (no JSON row): each column, the
    /// attributes, the event data and the flow reach the template under their own names.
    #[pg_test]
    fn every_contact_column_event_key_and_flow_field_renders() {
        setup();
        sql(
            r#"SELECT journey.create_flow('all', '{"triggers": [{"type": "manual"}], "start": "s",
               "nodes": {"s": {"type": "send_sms", "unsubscribe": false, "text": "{{ contact.id }}|{{ contact.external_id }}|{{ contact.email }}|{{ contact.phone }}|{{ contact.first_name }}|{{ contact.last_name }}|{{ contact.birthday }}|{{ contact.time_zone }}|{{ contact.attributes.plan }}|{{ contact.attributes.n | plus: 1 }}|{{ contact.email_opt_out }}|{{ contact.sms_opt_out }}|{{ contact.created_at }}|{{ contact.updated_at }}|{{ event.amount }}|{{ event.order.id }}|{{ flow.name }} v{{ flow.version }}"}}}')"#,
        );
        sql("SELECT journey.activate_flow('all')");
        let id = count(
            r#"SELECT journey.upsert_contact('{"external_id": "x-1", "email": "dana@example.com", "phone": "+15550001",
                 "first_name": "Dana", "last_name": "Levi", "birthday": "1990-05-06", "time_zone": "Asia/Jerusalem",
                 "attributes": {"plan": "pro", "n": 3}}')"#,
        );
        sql(&format!("UPDATE journey.contacts SET created_at = '2026-01-02 03:04:05+00', updated_at = '2026-01-02 03:04:05.25+00' WHERE id = {id}"));
        sql(&format!(
            r#"SELECT journey.enroll('all', {id}, '{{"amount": 12, "order": {{"id": 7}}}}')"#
        ));
        assert_eq!(one::<i32>("SELECT journey.run_due(10, now())"), Some(1));
        assert_eq!(
            text("SELECT body FROM journey.outbox"),
            format!("{id}|x-1|dana@example.com|+15550001|Dana|Levi|1990-05-06|Asia/Jerusalem|pro|4|false|false|2026-01-02T03:04:05+00:00|2026-01-02T03:04:05.250+00:00|12|7|all v1")
        );
        assert_eq!(text("SELECT recipient FROM journey.outbox"), "+15550001");
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
        let err = text("SELECT last_error FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'welcome'");
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
        let token = |id: i64| {
            text(&format!(
                "SELECT lease_token::text FROM journey.outbox WHERE id = {id}"
            ))
        };
        let lease = token(id);
        assert_eq!(
            one::<bool>(&format!(
                "SELECT journey.mark_sent({id}, 'prov-1', gen_random_uuid())"
            )),
            Some(false),
            "another token counts for nothing"
        );
        assert_eq!(
            one::<bool>(&format!(
                "SELECT journey.mark_sent({id}, 'prov-1', '{lease}')"
            )),
            Some(true)
        );
        assert_eq!(
            one::<bool>(&format!(
                "SELECT journey.mark_sent({id}, 'prov-1', '{lease}')"
            )),
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
        let status = |id: i64| {
            text(&format!(
                "SELECT status FROM journey.outbox WHERE id = {id}"
            ))
        };
        let lease = token(other);
        assert_eq!(
            one::<bool>(&format!(
                "SELECT journey.mark_failed({other}, 'timeout', true, '{lease}')"
            )),
            Some(true)
        );
        assert_eq!(status(other), "pending");
        assert_eq!(count(&format!("SELECT count(*) FROM journey.outbox WHERE id = {other} AND not_before > now() + interval '29 seconds' AND last_error = 'timeout'")), 1);
        sql(&format!(
            "UPDATE journey.outbox SET not_before = now() - interval '1 second' WHERE id = {other}"
        ));
        assert_eq!(count("SELECT count(*) FROM journey.claim(ARRAY['sms'])"), 1);
        let lease = token(other);
        assert_eq!(
            one::<bool>(&format!(
                "SELECT journey.mark_failed({other}, 'timeout again', true, '{lease}')"
            )),
            Some(true)
        );
        assert_eq!(status(other), "failed");
        assert_eq!(
            one::<bool>(&format!(
                "SELECT journey.mark_failed({other}, 'late', true, '{lease}')"
            )),
            Some(false)
        );
        assert_eq!(status(other), "failed");
        assert_error("SELECT journey.claim(NULL, 0)", "22023", "max");
        assert_error(
            "SELECT journey.claim(NULL, 10, '-1 minute')",
            "22023",
            "lease",
        );
        assert_error(
            "SELECT journey.mark_sent(987654321, NULL, gen_random_uuid())",
            "P0002",
            "987654321",
        );
    }

    #[pg_test]
    fn bad_input_raises_named_errors_and_changes_nothing() {
        setup();
        sql(
            r#"INSERT INTO journey.forms (name, field_map) VALUES ('contact-us', '{"Email": "email"}')"#,
        );
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
            ("SELECT journey.claim(ARRAY['fax'])", "22023", "fax"),
            ("SELECT journey.run_due(1000000)", "22023", "max_steps"),
            (
                "SELECT journey.mark_failed(987654321, 'x', true, gen_random_uuid())",
                "P0002",
                "987654321",
            ),
            (
                "SELECT journey.report(NULL, 'delivered')",
                "22004",
                "provider_message_id",
            ),
            ("SELECT journey.report('x', NULL)", "22023", "NULL"),
            (
                "SELECT journey.submit_form('contact-us', '[1]')",
                "22023",
                "contact-us",
            ),
            (
                "SELECT journey.define_event('ev', '[{\"name\": \"a\", \"type\": \"date\"}]')",
                "22023",
                "date",
            ),
            (
                "SELECT journey.define_event('ev', '[{\"name\": \"a\", \"pattern\": \"(\"}]')",
                "2201B",
                "pattern",
            ),
            ("SELECT journey.define_event('ev', '{}')", "22023", "ev"),
            (
                "SELECT journey.enroll('welcome', 1, '[1]')",
                "22023",
                "data",
            ),
            (
                "SELECT * FROM journey.validate_flow(NULL)",
                "22004",
                "flow name",
            ),
            ("SELECT journey.update_flow('nope', '{}')", "42704", "nope"),
            (
                "SELECT journey.update_flow('welcome', '\"text\"')",
                "22032",
                "welcome",
            ),
            ("SELECT journey.archive_flow('nope')", "42704", "nope"),
            ("SELECT * FROM journey.timeline(424242)", "23503", "424242"),
            ("SELECT journey.flow_diagram('nope')", "42704", "nope"),
            (
                "SELECT journey.remove_from_group(1, NULL)",
                "22004",
                "group",
            ),
            (
                "SELECT journey.upsert_contact('[]')",
                "22023",
                "contact data",
            ),
            (
                "SELECT journey.upsert_contact('{\"attributes\": 5}')",
                "22023",
                "attributes",
            ),
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
        assert!(error_of("INSERT INTO journey.outbox (idempotency_key, channel, contact_id) VALUES ('k', 'fax', 1)").starts_with("23514"));
        assert!(
            error_of(
                "INSERT INTO journey.templates (name, body) VALUES ('big', repeat('x', 1048576))"
            )
            .starts_with("23514"),
            "a 1 MB template is refused"
        );
        assert_eq!(count("SELECT count(*) FROM journey.event_types"), 0);
        assert_eq!(count("SELECT count(*) FROM journey.form_submissions"), 0);
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

    const SEED_000: &str = r#"{
        "triggers": [{"type": "group_joined", "group": "newsletter"}],
        "start": "sms",
        "nodes": {
            "sms":        {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "next": "check", "stage": "welcome"},
            "check":      {"type": "check_sms", "message": "sms", "wait": "2 hours", "yes": "delivered", "no": "mail"},
            "delivered":  {"type": "goal", "name": "sms delivered"},
            "mail":       {"type": "send_email", "subject": "We missed you", "body": "Hello {{ contact.first_name }}", "next": "check_mail"},
            "check_mail": {"type": "check_email", "message": "mail", "status": "opened", "wait": "1 day", "yes": "opened", "no": "split"},
            "opened":     {"type": "goal", "name": "email opened"},
            "split":      {"type": "split", "branches": [{"percent": 50, "next": "tag_a"}, {"percent": 50, "next": "tag_b"}]},
            "tag_a":      {"type": "update_contact", "set": {"attributes.variant": "a"}, "add_groups": ["vip"]},
            "tag_b":      {"type": "update_contact", "set": {"attributes.variant": "b"}, "remove_groups": ["newsletter"]}
        }}"#;

    #[pg_test]
    fn seed_000_flow_runs_with_the_virtual_clock() {
        setup();
        sql(&format!("SELECT journey.create_flow('seed', '{SEED_000}')"));
        assert_eq!(
            count("SELECT count(*) FROM journey.validate_flow('seed')"),
            0
        );
        sql("SELECT journey.activate_flow('seed')");
        let (a, b, c) = (contact("A"), contact("B"), contact("C"));
        for x in [a, b, c] {
            sql(&format!("SELECT journey.add_to_group({x}, 'newsletter')"));
        }
        sql("SELECT journey.run_due(100, now())");
        assert_eq!(
            count("SELECT count(*) FROM journey.outbox WHERE channel = 'sms'"),
            3
        );
        assert_eq!(count("SELECT count(*) FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'seed' AND e.node = 'check' AND e.waiting IS NOT NULL"), 3);
        // A's SMS is delivered: the report wakes A at once, no polling
        sql(&format!(
            "SELECT journey.mark_sent(id, 'pa', lease_token) FROM journey.claim(ARRAY['sms']) c WHERE contact_id = {a}"
        ));
        assert_eq!(
            one::<bool>("SELECT journey.report('pa', 'delivered', 'e1')"),
            Some(true)
        );
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '1 minute')"),
            Some(1)
        );
        assert_eq!(text(&format!("SELECT e.status || ':' || e.node FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'seed' AND contact_id = {a}")), "completed:delivered");
        // B and C time out after 2 hours: email
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '119 minutes')"),
            Some(0)
        );
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '121 minutes')"),
            Some(2)
        );
        assert_eq!(
            count("SELECT count(*) FROM journey.outbox WHERE channel = 'email'"),
            2
        );
        // B opens the email: goal
        sql(&format!("SELECT journey.mark_sent(id, 'pb', lease_token) FROM journey.claim(ARRAY['email']) c WHERE contact_id = {b}"));
        sql("SELECT journey.report('pb', 'delivered', 'e2')");
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '3 hours')"),
            Some(1),
            "delivered wakes the check, which waits on for opened"
        );
        sql("SELECT journey.report('pb', 'opened', 'e3')");
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '3 hours')"),
            Some(1)
        );
        // C never opens: after 1 day, the split and update_contact
        assert_eq!(
            one::<i32>("SELECT journey.run_due(100, now() + interval '2 days')"),
            Some(1)
        );
        assert_eq!(text("SELECT string_agg(channel || ':' || recipient, ',' ORDER BY id) FROM journey.outbox"),
                   "sms:+1555A,sms:+1555B,sms:+1555C,email:b@example.com,email:c@example.com");
        let variant = text(&format!(
            "SELECT attributes->>'variant' FROM journey.contacts WHERE id = {c}"
        ));
        assert!(variant == "a" || variant == "b", "{variant}");
        assert_eq!(text("SELECT string_agg(goal || ':' || reached || ':' || reached_pct, ',' ORDER BY goal) FROM journey.goal_stats('seed')"),
                   "email opened:1:33.3,sms delivered:1:33.3");
        assert_eq!(text("SELECT string_agg(node || ':' || reached, ',') FROM journey.flow_stats('seed') WHERE node NOT LIKE 'tag_%'"),
                   "sms:3,check:3,delivered:1,mail:2,check_mail:2,opened:1,split:1");
        assert_eq!(count("SELECT sum(reached)::bigint FROM journey.flow_stats('seed') WHERE node LIKE 'tag_%'"), 1);
        assert_eq!(count("SELECT count(*) FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'seed' AND e.status = 'completed'"), 3);
        let diagram = text("SELECT journey.flow_diagram('seed')");
        assert!(diagram.starts_with("flowchart TD"), "{diagram}");
        assert!(
            diagram.contains("n6[\"sms: send_sms<br/>stage: welcome<br/>reached 3, waiting 0\"]"),
            "{diagram}"
        );
        assert!(diagram.contains("n1 -->|\"yes\"| n3"), "{diagram}");
        assert!(diagram.contains("n7 -->|\"50%\"| n8"), "{diagram}");
    }

    #[pg_test]
    fn update_contact_add_groups_fires_group_joined_flows() {
        setup();
        sql(
            r#"SELECT journey.create_flow('tagger', '{"triggers": [{"type": "manual"}], "start": "u",
               "nodes": {"u": {"type": "update_contact", "add_groups": ["newsletter"], "set": {"first_name": "Renamed", "attributes.tier": "gold"}}}}')"#,
        );
        sql("SELECT journey.activate_flow('tagger')");
        sql("SELECT journey.activate_flow('welcome')");
        let c = contact("T");
        sql(&format!("SELECT journey.enroll('tagger', {c})"));
        sql("SET LOCAL lock_timeout = '7s'");
        sql("SELECT journey.run_due(10, now())");
        // the batch's short lock wait for update_contact ends with the batch
        assert_eq!(text("SELECT current_setting('lock_timeout')"), "7s");
        assert_eq!(text(&format!("SELECT first_name || ':' || (attributes->>'tier') FROM journey.contacts WHERE id = {c}")), "Renamed:gold");
        assert_eq!(count("SELECT count(*) FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'welcome'"), 1);
        sql("SELECT journey.run_due(10, now())");
        assert_eq!(text("SELECT body FROM journey.outbox"), "Hi Renamed");
    }

    #[pg_test]
    fn admin_task_webhook_and_whatsapp_write_their_channels() {
        setup();
        sql("UPDATE journey.settings SET admin_email = 'boss@example.com'");
        sql(
            r#"SELECT journey.create_flow('ops', '{"triggers": [{"type": "manual"}], "start": "n",
               "nodes": {"n": {"type": "notify_admin", "subject": "New lead", "text": "{{ contact.first_name }} joined", "next": "t"},
                         "t": {"type": "create_task", "assignee": "sales", "title": "Call {{ contact.first_name }}", "due": "2 days", "next": "w"},
                         "w": {"type": "webhook", "url": "https://hooks.example.com/x", "body": "{\"id\": {{ contact.id }}, \"name\": \"{{ contact.first_name }}\"}", "next": "wa"},
                         "wa": {"type": "send_whatsapp", "text": "Salut {{ contact.first_name }}"}}}')"#,
        );
        sql("SELECT journey.activate_flow('ops')");
        let c = contact("Ops");
        sql(&format!("SELECT journey.enroll('ops', {c})"));
        sql("UPDATE journey.enrollments SET due_at = '2026-06-01 00:00Z'");
        sql("SELECT journey.run_due(10, '2026-06-01 12:00Z')");
        assert_eq!(text("SELECT string_agg(channel || '|' || recipient, ',' ORDER BY id) FROM journey.outbox"),
                   "admin_email|boss@example.com,task|sales,webhook|https://hooks.example.com/x,whatsapp|+1555Ops");
        assert_eq!(
            text("SELECT payload->>'due' FROM journey.outbox WHERE channel = 'task'"),
            "2026-06-03T12:00:00+00:00"
        );
        assert_eq!(
            text("SELECT subject FROM journey.outbox WHERE channel = 'task'"),
            "Call Ops"
        );
        assert_eq!(
            text("SELECT payload->'body'->>'name' FROM journey.outbox WHERE channel = 'webhook'"),
            "Ops"
        );
        // a body that is not JSON after rendering fails only that enrollment
        sql(
            r#"SELECT journey.create_flow('hook', '{"triggers": [{"type": "manual"}], "start": "w",
               "nodes": {"w": {"type": "webhook", "url": "https://x.example.com", "body": "{\"name\": {{ contact.first_name }}}"}}}')"#,
        );
        sql("SELECT journey.activate_flow('hook')");
        sql(&format!("SELECT journey.enroll('hook', {c})"));
        sql("SELECT journey.run_due(10, now())");
        assert!(
            text("SELECT last_error FROM journey.enrollments WHERE status = 'failed'")
                .contains("not JSON")
        );
    }

    #[pg_test]
    fn condition_branches_on_attributes_groups_and_event() {
        setup();
        sql(
            r#"SELECT journey.create_flow('cond', '{"triggers": [{"type": "manual"}], "start": "c",
               "nodes": {"c": {"type": "condition", "if": {"any": [{"in_group": "vip"}, {"field": "event.amount", "op": ">=", "value": 100}]}, "then": "yes", "else": "no"},
                         "yes": {"type": "goal"}, "no": {"type": "exit"}}}')"#,
        );
        sql("SELECT journey.activate_flow('cond')");
        let (vip, rich, poor) = (contact("Vip"), contact("Rich"), contact("Poor"));
        sql(&format!("SELECT journey.add_to_group({vip}, 'vip')"));
        sql(&format!("SELECT journey.enroll('cond', {vip})"));
        sql(&format!(
            "SELECT journey.enroll('cond', {rich}, '{{\"amount\": 150}}')"
        ));
        sql(&format!(
            "SELECT journey.enroll('cond', {poor}, '{{\"amount\": 5}}')"
        ));
        sql("SELECT journey.run_due(10, now())");
        assert_eq!(text("SELECT string_agg(contact_id || ':' || status, ',' ORDER BY contact_id) FROM journey.enrollments"),
                   format!("{vip}:completed,{rich}:completed,{poor}:exited"));
    }

    #[pg_test]
    fn split_is_stable_and_close_to_its_percentages() {
        setup();
        sql(
            r#"SELECT journey.create_flow('ab', '{"triggers": [{"type": "group_joined", "group": "vip"}], "start": "s",
               "nodes": {"s": {"type": "split", "branches": [{"percent": 30, "next": "a"}, {"percent": 70, "next": "b"}]},
                         "a": {"type": "goal"}, "b": {"type": "goal"}}}')"#,
        );
        sql("SELECT journey.activate_flow('ab')");
        sql("INSERT INTO journey.contacts (first_name) SELECT 'c' || g FROM generate_series(1, 10000) g");
        sql("INSERT INTO journey.group_members (group_id, contact_id) SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE g.name = 'vip'");
        assert_eq!(
            one::<i32>("SELECT journey.run_due(10000, now())"),
            Some(10000)
        );
        let a = count("SELECT count(*) FROM journey.steps WHERE node = 'a'");
        assert!((2800..=3200).contains(&a), "branch a got {a} of 10000");
        // stable: the bucket is a pure function of (flow, contact)
        assert_eq!(
            crate::engine::run::split_bucket(7, 42),
            crate::engine::run::split_bucket(7, 42)
        );
    }

    #[pg_test]
    fn wait_event_takes_yes_on_the_event_and_no_on_timeout() {
        setup();
        sql("SELECT journey.define_event('paid', '[]')");
        sql(
            r#"SELECT journey.create_flow('we', '{"triggers": [{"type": "manual"}], "start": "w",
               "nodes": {"w": {"type": "wait_event", "event": "paid", "timeout": "3 days", "yes": "won", "no": "lost"},
                         "won": {"type": "goal"}, "lost": {"type": "exit"}}}')"#,
        );
        sql("SELECT journey.activate_flow('we')");
        let (payer, idle) = (contact("Payer"), contact("Idle"));
        sql(&format!("SELECT journey.enroll('we', {payer})"));
        sql(&format!("SELECT journey.enroll('we', {idle})"));
        assert_eq!(one::<i32>("SELECT journey.run_due(10, now())"), Some(2));
        sql(&format!("SELECT journey.emit('paid', {payer})"));
        assert_eq!(
            one::<i32>("SELECT journey.run_due(10, now() + interval '1 hour')"),
            Some(1),
            "the event wakes the waiting enrollment"
        );
        assert_eq!(
            one::<i32>("SELECT journey.run_due(10, now() + interval '2 days')"),
            Some(0)
        );
        assert_eq!(
            one::<i32>("SELECT journey.run_due(10, now() + interval '3 days 1 minute')"),
            Some(1)
        );
        assert_eq!(text("SELECT string_agg(contact_id || ':' || status, ',' ORDER BY contact_id) FROM journey.enrollments"),
                   format!("{payer}:completed,{idle}:exited"));
    }

    #[pg_test]
    fn quiet_hours_unsubscribe_and_windows_in_the_contacts_zone() {
        setup();
        sql("UPDATE journey.settings SET quiet_hours_start = '21:00', quiet_hours_end = '07:00', sms_unsubscribe_text = 'STOP=stop'");
        sql(
            r#"SELECT journey.create_flow('q', '{"triggers": [{"type": "manual"}], "start": "s",
               "nodes": {"s": {"type": "send_sms", "text": "Promo", "unsubscribe": true, "next": {"to": "u", "delay": "1 day", "at": "10:00", "days": "weekdays"}},
                         "u": {"type": "send_sms", "text": "Urgent ש", "ignore_quiet_hours": true}}}')"#,
        );
        sql("SELECT journey.activate_flow('q')");
        let c = contact("Q");
        sql(&format!(
            "UPDATE journey.contacts SET time_zone = 'Asia/Jerusalem' WHERE id = {c}"
        ));
        sql(&format!("SELECT journey.enroll('q', {c})"));
        sql("UPDATE journey.enrollments SET due_at = '2026-11-20 00:00Z'");
        // Friday 2026-11-20 22:30 in Jerusalem (UTC+2): quiet until 07:00 Saturday
        sql("SELECT journey.run_due(10, '2026-11-20 20:30Z')");
        assert_eq!(
            text("SELECT body || '|' || sms_segments || '|' || not_before FROM journey.outbox"),
            "Promo\nSTOP=stop|1|2026-11-21 05:00:00+00"
        );
        // 1 day later, weekdays only, at 10:00 local: Monday 10:00 (08:00Z)
        assert_eq!(
            text("SELECT due_at::text FROM journey.enrollments"),
            "2026-11-23 08:00:00+00"
        );
        sql("SELECT journey.run_due(10, '2026-11-23 08:00Z')");
        assert_eq!(text("SELECT sms_encoding || '|' || coalesce(not_before::text, 'now') FROM journey.outbox WHERE node = 'u'"), "UCS-2|now");
    }

    /// Seed 002: "days of delay" count from the previous action, so day 0, day 2 and day 5 of a
    /// sequence are delays of 0, 2 and 3 days; a window (weekdays after 09:00) applies to each.
    #[pg_test]
    fn seed_002_cumulative_day_sequence() {
        setup();
        sql(
            r#"SELECT journey.create_flow('seq', '{"triggers": [{"type": "manual"}], "start": "d0",
               "nodes": {"d0": {"type": "send_sms", "text": "day 0", "next": {"to": "d2", "delay": "2 days"}},
                         "d2": {"type": "send_email", "subject": "s", "body": "day 2", "next": {"to": "d5", "delay": "3 days", "at": "09:00", "days": "weekdays"}},
                         "d5": {"type": "create_task", "title": "follow up", "assignee": "sales"}}}')"#,
        );
        sql("SELECT journey.activate_flow('seq')");
        let c = contact("Seq");
        sql(&format!("SELECT journey.enroll('seq', {c})"));
        sql("UPDATE journey.enrollments SET due_at = '2026-11-02 08:00Z'"); // a Monday
        sql("SELECT journey.run_due(10, '2026-11-02 08:00Z')");
        assert_eq!(
            text("SELECT due_at::text FROM journey.enrollments"),
            "2026-11-04 08:00:00+00"
        );
        assert_eq!(
            one::<i32>("SELECT journey.run_due(10, '2026-11-04 07:59Z')"),
            Some(0)
        );
        sql("SELECT journey.run_due(10, '2026-11-04 08:00Z')");
        // day 5 is Saturday 2026-11-07: the weekday window moves it to Monday 09:00
        assert_eq!(
            text("SELECT due_at::text FROM journey.enrollments"),
            "2026-11-09 09:00:00+00"
        );
        sql("SELECT journey.run_due(10, '2026-11-09 09:00Z')");
        assert_eq!(
            text("SELECT string_agg(channel, ',' ORDER BY id) FROM journey.outbox"),
            "sms,email,task"
        );
        assert_eq!(
            text("SELECT string_agg(at::date::text, ',' ORDER BY id) FROM journey.steps"),
            "2026-11-02,2026-11-04,2026-11-09"
        );
    }

    #[pg_test]
    fn wait_node_and_check_defaults() {
        setup();
        sql(
            r#"SELECT journey.create_flow('w', '{"triggers": [{"type": "manual"}], "start": "w",
               "nodes": {"w": {"type": "wait", "delay": "1 hour", "at": "18:00", "next": "s"},
                         "s": {"type": "send_sms", "text": "evening", "next": "c"},
                         "c": {"type": "check_sms", "message": "s", "yes": "g", "no": "m"},
                         "m": {"type": "send_email", "subject": "s", "body": "b", "next": "ce"},
                         "ce": {"type": "check_email", "message": "m", "no": "g"},
                         "g": {"type": "goal"}}}')"#,
        );
        sql("SELECT journey.activate_flow('w')");
        let c = contact("W");
        sql(&format!("SELECT journey.enroll('w', {c})"));
        sql("UPDATE journey.enrollments SET due_at = '2026-06-01 00:00Z'");
        sql("SELECT journey.run_due(10, '2026-06-01 17:30Z')");
        // the wait itself: 17:30 + 1 hour = 18:30, so 18:00 the next day (UTC zone)
        assert_eq!(
            text("SELECT node || ' ' || due_at::text FROM journey.enrollments"),
            "s 2026-06-02 18:00:00+00"
        );
        sql("SELECT journey.run_due(10, '2026-06-02 18:00Z')");
        // check_sms waits 2 hours by default, check_email 1 day
        assert_eq!(
            text("SELECT node || ' ' || due_at::text FROM journey.enrollments"),
            "c 2026-06-02 20:00:00+00"
        );
        sql("SELECT journey.run_due(10, '2026-06-02 20:00Z')");
        assert_eq!(
            text("SELECT node || ' ' || due_at::text FROM journey.enrollments"),
            "ce 2026-06-03 20:00:00+00"
        );
        sql("SELECT journey.run_due(10, '2026-06-03 20:00Z')");
        assert_eq!(text("SELECT status FROM journey.enrollments"), "completed");
    }
}
