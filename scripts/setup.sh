#!/usr/bin/env bash
# Idempotent set-up: installs what a fresh machine lacks and skips what is there.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

need_apt=()
for pkg in postgresql-server-dev-15 libclang-dev clang sudo; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q ' 0\.18\.0'; then
  echo "setup: cargo install cargo-pgrx 0.18.0 (a few minutes)"
  cargo install cargo-pgrx --version 0.18.0 --locked
fi

if ! grep -qs "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  echo "setup: cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG"
fi
# journey-relay (relay/) and the SMTP server its tests and the demo start (aiosmtpd)
python3 -c "import aiosmtpd" 2>/dev/null || { echo "setup: pip install aiosmtpd"; python3 -m pip install -q aiosmtpd; }
if [ ! -x "$(dirname "$0")/../target/release/journey-relay" ]; then
  echo "setup: cargo build --release -p journey-relay (a minute)"
  (cd "$(dirname "$0")/.." && cargo build --release -q -p journey-relay)
fi
echo "setup: ok"
