# Sourceable: installing journey's files next to servers that may be running the library.
# `cargo pgrx install` and `cargo pgrx test` overwrite $pkglibdir/journey.so in place; a
# running server that preloaded the old file would then execute the new bytes and die
# (signal 11). So scripts/install.sh copies each file beside its target and renames it over
# (running servers keep the old file's inode), and detach_library gives the installed file a
# new inode before `cargo pgrx test` writes into it. Both say which running servers still use
# the old library: they load the new one when restarted.
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

# Prints the pids of running PostgreSQL processes that have $1 mapped.
library_users() {
  grep -ls "$1" /proc/[0-9]*/maps 2>/dev/null | cut -d/ -f3 | tr '\n' ' ' || true
}

note_library_users() {
  local users
  users=$(library_users "$1")
  if [ -n "$users" ]; then
    echo "note: replacing $1 while processes $users run the old one (they keep it until their server restarts)" >&2
  fi
}

# Installs file $1 as $2 by copying it beside $2 and renaming it over $2.
install_file() {
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.new.$$"
  mv -f "$2.new.$$" "$2"
}

# Gives the installed library a new inode with the same bytes.
detach_library() {
  local lib
  lib="$("$PG_CONFIG" --pkglibdir)/journey.so"
  [ -f "$lib" ] || return 0
  note_library_users "$lib"
  install_file "$lib" "$lib"
}
