#!/usr/bin/env bash
# The Debian package: scripts/package.sh builds it; installed with dpkg (no cargo involved in
# that step) it puts the library, control file and scripts where PostgreSQL 15 finds them, and
# journey-relay, its config (a conffile) and its systemd unit; a fresh cluster runs the welcome
# journey with it and the installed relay sends its messages (--until-idle, the shipped config
# with the site's values as flags) to a local SMTP server and SMS gateway
# (tests/relay_servers.py). (The package stays installed: its files are the ones
# scripts/install.sh installs from the same build.)
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
out=/tmp/journey-package-out; rm -rf "$out"; mkdir -p "$out/smtp" "$out/gw"
PIDS=()
# (every process started here inherits the build lock's descriptor: none may outlive the test)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  cluster_cleanup
}
trap cleanup EXIT
deb=$(bash scripts/package.sh | tail -1)
echo "package: $deb"
assert_eq "postgresql-15-journey" "$(dpkg-deb -f "$deb" Package)" "the package's name"
assert_eq "postgresql-15" "$(dpkg-deb -f "$deb" Depends | cut -d, -f1)" "it depends on the server"
pkglib=$("$PG_BIN/pg_config" --pkglibdir); share=$("$PG_BIN/pg_config" --sharedir)
RELAY=/usr/bin/journey-relay CONF=/etc/journey-relay/journey-relay.toml UNIT=/lib/systemd/system/journey-relay.service
FILES=("$pkglib/journey.so" "$share/extension/journey.control" "$share/extension/journey--0.3.0.sql"
       "$share/extension/journey--0.2.0--0.3.0.sql" "$RELAY" "$CONF" "$UNIT")
for f in "${FILES[@]}"; do
  assert_eq 1 "$(dpkg-deb -c "$deb" | grep -c " \.$f\$")" "it holds $f"
done
assert_eq "$CONF" "$(dpkg-deb -I "$deb" conffiles | tr -d ' ')" "the config is a conffile (an upgrade keeps local edits)"
unit=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ".$UNIT")
for line in "User=journey_relay" "Restart=on-failure" "KillSignal=SIGTERM" "ExecStart=$RELAY --config $CONF"; do
  assert_eq 1 "$(grep -cx "$line" <<<"$unit")" "the unit: $line"
done
stop=$(sed -n 's/^TimeoutStopSec=//p' <<<"$unit")
lease=$(sed -n 's/^lease *= *\([0-9]*\).*/\1/p' relay/journey-relay.example.toml)
[ "$stop" -gt "$lease" ] && echo "  PASS the stop timeout ($stop s) outlasts the lease ($lease s) a SIGTERMed relay finishes" \
  || { echo "  FAIL TimeoutStopSec=$stop, lease $lease"; exit 1; }
if [ "$(id -u)" -ne 0 ]; then echo "package_test: installing needs root; built only"; exit 0; fi
dpkg -i "$deb" >/tmp/journey-package-dpkg.log 2>&1 || { cat /tmp/journey-package-dpkg.log; exit 1; }
assert_eq "install ok installed" "$(dpkg-query -W -f='${Status}' postgresql-15-journey)" "dpkg installed it"
for f in "${FILES[@]}"; do
  assert_eq 1 "$(dpkg -L postgresql-15-journey | grep -cx "$f")" "dpkg -L lists $f"
done
assert_eq "journey_relay" "$(getent passwd journey_relay | cut -d: -f1)" "the system user journey_relay exists"
assert_eq "640 root:journey_relay" "$(stat -c '%a %U:%G' "$CONF")" "the config is readable to the relay's user only"
echo "# edited on this server" >>"$CONF"
dpkg -i "$deb" >>/tmp/journey-package-dpkg.log 2>&1 </dev/null || { cat /tmp/journey-package-dpkg.log; exit 1; }
assert_eq "# edited on this server" "$(tail -1 "$CONF")" "installing again keeps the local edit of the config (a conffile)"
assert_eq "640 root:journey_relay" "$(stat -c '%a %U:%G' "$CONF")" "and its owner and mode"
sed -i '$d' "$CONF"
"$RELAY" --help >"$out/help.txt" && grep -q -- "--until-idle" "$out/help.txt" && echo "  PASS $RELAY --help runs" \
  || { echo "  FAIL $RELAY --help"; cat "$out/help.txt"; exit 1; }
if command -v systemd-analyze >/dev/null; then
  # (the binary it names exists now; verify loads the unit as systemd would)
  if systemd-analyze verify "$UNIT" >"$out/verify.log" 2>&1; then echo "  PASS systemd-analyze verify $UNIT"
  else echo "  (systemd-analyze verify could not check the unit here:)"; sed 's/^/    /' "$out/verify.log" | head -5; fi
fi

echo "package: a fresh cluster with the installed package"
cluster_start /tmp/journey-package-test 5491
create_journey
q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"sms\",
   \"nodes\": {\"sms\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}\", \"next\": \"mail\"},
              \"mail\": {\"type\": \"send_email\", \"subject\": \"Welcome {{ contact.first_name }}\", \"body\": \"Hello {{ contact.first_name }}\"}}}')" >/dev/null
q "SELECT journey.activate_flow('welcome')" >/dev/null
q "SELECT journey.add_to_group(journey.upsert_contact('{\"first_name\": \"Dana\", \"phone\": \"+15550000001\", \"email\": \"dana@example.com\"}'), 'newsletter')" >/dev/null
wait_for "SELECT count(*) = 1 FROM journey.outbox WHERE body = 'Hi Dana'" 15 "the worker sent the welcome SMS"
wait_for "SELECT count(*) = 1 FROM journey.outbox WHERE body = 'Hello Dana'" 15 "and the welcome e-mail"
assert_eq "0.3.0" "$(q "SELECT extversion FROM pg_extension WHERE extname = 'journey'")" "extension version"

echo "package: the installed journey-relay sends them"
python3 -c "import aiosmtpd" 2>/dev/null || pip install -q aiosmtpd
SMTP=5735 GW=5736 LISTEN=5737
python3 tests/relay_servers.py smtp $SMTP "$out/smtp" >"$out/smtp.log" 2>&1 & PIDS+=($!)
python3 tests/relay_servers.py gateway $GW "$out/gw" >"$out/gw.log" 2>&1 & PIDS+=($!)
for port in $SMTP $GW; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
q "CREATE ROLE journey_relay LOGIN"
q "SELECT journey.grant_role('journey_relay', 'relay')" >/dev/null
# the shipped config with this site's values as flags (a flag wins over the file); run as the
# package's user, as the unit runs it
runuser -u journey_relay -- "$RELAY" --config "$CONF" --until-idle --poll-interval 0.1 \
  --database-url "host=$PGHOST port=$PGPORT user=journey_relay dbname=postgres" \
  --smtp-url "smtp://127.0.0.1:$SMTP" --sms-url "http://127.0.0.1:$GW/2010-04-01/Accounts/AC123/Messages.json" \
  --listen "127.0.0.1:$LISTEN" --callback-url "http://127.0.0.1:$LISTEN" 2>"$out/relay.log" \
  || { echo "  FAIL the relay exited $?"; cat "$out/relay.log"; exit 1; }
assert_eq "sent sent" "$(q "SELECT string_agg(status, ' ' ORDER BY id) FROM journey.outbox")" "both messages are marked sent"
assert_eq "+15550000001 Hi Dana" "$(python3 -c "import json; r = json.loads(open('$out/gw/log.jsonl').readline()); print(r['to'], r['body'])")" "the gateway received the SMS"
assert_eq "dana@example.com Welcome Dana" "$(python3 -c "import json; r = json.loads(open('$out/smtp/log.jsonl').readline()); print(r['to'], r['subject'])")" "the SMTP server received the e-mail"
echo "package_test: ok"
