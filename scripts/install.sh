#!/usr/bin/env bash
# Set-up, then a release build of journey installed into the machine's PostgreSQL 15; the build
# log goes to target/install.log and is shown only when the build fails. The files are built
# into a package (`cargo pgrx package`) and each is renamed into place, so a server running
# the old library keeps it (scripts/library.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
source scripts/library.sh
mkdir -p target
if ! cargo pgrx package --pg-config "$PG_CONFIG" >target/install.log 2>&1; then
  tail -50 target/install.log; echo "install failed"; exit 1
fi
root=target/release/journey-pg15
note_library_users "$("$PG_CONFIG" --pkglibdir)/journey.so"
(cd "$root" && find . -type f) | while read -r f; do
  install_file "$root/${f#./}" "/${f#./}"
done
