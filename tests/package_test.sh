#!/usr/bin/env bash
# The Debian package: scripts/package.sh builds it; installed with dpkg (no cargo involved in
# that step) it puts the library, control file and scripts where PostgreSQL 15 finds them, and a
# fresh cluster runs the welcome journey with it. (The package stays installed: its files are
# the ones scripts/install.sh installs from the same build.)
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
deb=$(bash scripts/package.sh | tail -1)
echo "package: $deb"
assert_eq "postgresql-15-journey" "$(dpkg-deb -f "$deb" Package)" "the package's name"
assert_eq "postgresql-15" "$(dpkg-deb -f "$deb" Depends)" "it depends on the server"
pkglib=$("$PG_BIN/pg_config" --pkglibdir); share=$("$PG_BIN/pg_config" --sharedir)
for f in "$pkglib/journey.so" "$share/extension/journey.control" "$share/extension/journey--0.3.0.sql" "$share/extension/journey--0.2.0--0.3.0.sql"; do
  assert_eq 1 "$(dpkg-deb -c "$deb" | grep -c " \.$f\$")" "it holds $f"
done
if [ "$(id -u)" -ne 0 ]; then echo "package_test: installing needs root; built only"; exit 0; fi
dpkg -i "$deb" >/tmp/journey-package-dpkg.log 2>&1 || { cat /tmp/journey-package-dpkg.log; exit 1; }
assert_eq "install ok installed" "$(dpkg-query -W -f='${Status}' postgresql-15-journey)" "dpkg installed it"
assert_eq 1 "$(dpkg -L postgresql-15-journey | grep -c "journey.so$")" "dpkg owns the library"

echo "package: a fresh cluster with the installed package"
cluster_start /tmp/journey-package-test 5491
create_journey
q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"sms\",
   \"nodes\": {\"sms\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}\"}}}')" >/dev/null
q "SELECT journey.activate_flow('welcome')" >/dev/null
q "SELECT journey.add_to_group(journey.upsert_contact('{\"first_name\": \"Dana\", \"phone\": \"+15550000001\"}'), 'newsletter')" >/dev/null
wait_for "SELECT count(*) = 1 FROM journey.outbox WHERE body = 'Hi Dana'" 15 "the worker sent the welcome SMS"
assert_eq "0.3.0" "$(q "SELECT extversion FROM pg_extension WHERE extname = 'journey'")" "extension version"
echo "package_test: ok"
