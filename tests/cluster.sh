# Sourceable helpers for integration tests: a throwaway cluster run as an unprivileged user,
# psql shortcuts and assertions.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# A test talks to the cluster it starts, with libpq's defaults: nothing of the caller's
# environment (a PGOPTIONS that hides NOTICEs changes expected output; a PGSERVICE or PGHOSTADDR
# points elsewhere). cluster_start sets PGHOST, PGPORT, PGUSER and PGDATABASE.
unset PGOPTIONS PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE \
      PGSERVICEFILE PGSSLMODE PGAPPNAME PGTZ PGDATESTYLE PGCLIENTENCODING PGCONNECT_TIMEOUT
CLUSTER_DIRS=()

# Runs a command as `postgres` (from /tmp: the clone may sit where `postgres` cannot enter).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd /tmp && runuser -u postgres -- env -u RUST_BACKTRACE "$@"); else env -u RUST_BACKTRACE "$@"; fi
}

# cluster_start DIR PORT [extra postgresql.conf lines...]
cluster_start() {
  local dir=$1 port=$2; shift 2
  rm -rf "$dir"; mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1
  {
    echo "port = $port"
    echo "unix_socket_directories = '$dir'"
    echo "listen_addresses = ''"
    echo "shared_preload_libraries = 'journey'"
    echo "journey.database = 'postgres'"
    echo "journey.naptime = 200"
    echo "fsync = off"
    for line in "$@"; do echo "$line"; done
  } >>"$dir/data/postgresql.conf"
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  CLUSTER_DIRS+=("$dir")
  export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

cluster_stop() {
  local dir=$1
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

cluster_cleanup() {
  for d in "${CLUSTER_DIRS[@]}"; do cluster_stop "$d"; done
}

q() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# The extension, with quiet hours off: a test's sends must not wait for the clock of the run.
create_journey() {
  q "CREATE EXTENSION journey"
  q "UPDATE journey.settings SET quiet_hours_start = '00:00', quiet_hours_end = '00:00'"
}

assert_eq() {
  if [ "$1" == "$2" ]; then
    echo "  PASS $3"
  else
    echo "  FAIL $3: expected [$1], got [$2]"; exit 1
  fi
}

# poll_until "SQL returning t": with a coprocess POLL running `psql -qAt` open, asks SQL every
# 10 ms until it returns t (waits with read's timeout: forking sleep(1) 100 times a second takes
# CPU from what is timed; and between statements, so no snapshot is held while waiting).
poll_until() {
  local done=f
  while [ "$done" != t ]; do
    read -rt 0.01 _ <&"${POLL[0]}" || true
    echo "$1;" >&"${POLL[1]}"
    read -r done <&"${POLL[0]}"
  done
}

# wait_for "SQL returning t" SECONDS MESSAGE
wait_for() {
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(q "$1" 2>/dev/null)" == "t" ] && { echo "  PASS $3"; return 0; }
    sleep 0.1
  done
  echo "  FAIL $3 (waited $2 s for: $1)"; exit 1
}
