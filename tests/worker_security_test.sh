#!/usr/bin/env bash
# Issue #11, item 3: the worker resolves every name in pg_catalog and journey (its session's
# search_path is pg_catalog, journey, pg_temp), so functions another role plants in public
# never run as the worker; and it runs as journey.worker_role, here a non-superuser role given
# the admin kind. (Before 0.3.0 the worker ran as the bootstrap superuser with the default
# search_path, and the engine's SQL called to_char(date, text) and unnest(text[]), which a
# role with CREATE on public could define there: it became superuser.)
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
cluster_start /tmp/journey-worker-security-test 5485 "journey.worker_role = 'jworker'"
export PGOPTIONS="-c client_min_messages=warning"

# The role does not exist yet: the worker fails to connect (logged) and is restarted until it does.
q "CREATE ROLE jworker LOGIN"
create_journey
q "SELECT journey.grant_role('jworker', 'admin')"
q "CREATE ROLE mallory LOGIN; GRANT CREATE ON SCHEMA public TO mallory"
q "CREATE TABLE public.hostile_ran (ran_as name, fn text); GRANT INSERT ON public.hostile_ran TO PUBLIC"
PGUSER=mallory psql -X -qAt -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE FUNCTION public.pwn(fn text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.hostile_ran VALUES (current_user, fn);
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE mallory SUPERUSER';
  END IF;
END $$;
GRANT EXECUTE ON FUNCTION public.pwn(text) TO PUBLIC;
-- exact matches where pg_catalog has only a cast or a polymorphic candidate
CREATE FUNCTION public.to_char(date, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.pwn('to_char'); RETURN to_char($1::timestamp, $2); END $$;
CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.pwn('unnest'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE FUNCTION public.nullif(jsonb, jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM public.pwn('nullif'); RETURN $1; END $$;
SQL

q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"sms\",
   \"nodes\": {\"sms\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}, born {{ contact.birthday }}\", \"next\": \"tag\"},
              \"tag\": {\"type\": \"update_contact\", \"set\": {\"attributes.greeted\": true}}}}')" >/dev/null
q "SELECT journey.activate_flow('welcome')" >/dev/null

echo "worker: runs as journey.worker_role, resolves nothing in public"
dana=$(q "SELECT journey.upsert_contact('{\"first_name\": \"Dana\", \"phone\": \"+15550001\", \"birthday\": \"1990-05-06\"}')")
q "SELECT journey.add_to_group($dana, 'newsletter')" >/dev/null
wait_for "SELECT count(*) = 1 FROM journey.outbox WHERE body = 'Hi Dana, born 1990-05-06'" 30 "the worker sent the SMS"
wait_for "SELECT status = 'completed' FROM journey.enrollments WHERE contact_id = $dana" 10 "and ran the update_contact node"
assert_eq "jworker" "$(q "SELECT usename FROM pg_stat_activity WHERE backend_type = 'journey worker'")" "the worker's session runs as jworker"
assert_eq "f" "$(q "SELECT rolsuper FROM pg_roles WHERE rolname = 'jworker'")" "which is not a superuser"
assert_eq "" "$(q "SELECT string_agg(ran_as || ':' || fn, ',') FROM public.hostile_ran")" "no function planted in public ran"
assert_eq "f" "$(q "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'")" "mallory is not superuser"
echo "worker_security_test: ok"
