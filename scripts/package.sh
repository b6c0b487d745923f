#!/usr/bin/env bash
# Builds the Debian package postgresql-15-journey (the library, the control file, the install
# and upgrade scripts, as `cargo pgrx package` lays them out under the system's PostgreSQL 15
# paths; journey-relay as /usr/bin/journey-relay, its example config as the conffile
# /etc/journey-relay/journey-relay.toml and its systemd unit, packaging/) with dpkg-deb, for
# servers that install extensions with their package manager and have no Rust toolchain:
#   bash scripts/package.sh   ->   target/postgresql-15-journey_<version>_<arch>.deb
# Install it with `dpkg -i` (or `apt install ./…deb`); it depends on postgresql-15. Installing
# creates the system user journey_relay; the service is not enabled until its config is edited.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
source scripts/library.sh
mkdir -p target
if ! cargo pgrx package --pg-config "$PG_CONFIG" >target/package.log 2>&1; then
  tail -50 target/package.log; echo "package: the build failed"; exit 1
fi
if ! cargo build --release -p journey-relay >>target/package.log 2>&1; then
  tail -50 target/package.log; echo "package: the relay's build failed"; exit 1
fi
version=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
arch=$(dpkg --print-architecture)
name=postgresql-15-journey
stage=target/deb/${name}_${version}_${arch}
rm -rf "$stage"; mkdir -p "$stage/DEBIAN"
cp -a target/release/journey-pg15/. "$stage/"
install -D -m 0755 target/release/journey-relay "$stage/usr/bin/journey-relay"
install -D -m 0640 relay/journey-relay.example.toml "$stage/etc/journey-relay/journey-relay.toml"
install -D -m 0644 packaging/journey-relay.service "$stage/lib/systemd/system/journey-relay.service"
echo /etc/journey-relay/journey-relay.toml >"$stage/DEBIAN/conffiles"
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$stage/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: journey developers <journey@example.com>
Depends: postgresql-15, libc6, libgcc-s1, adduser
Section: database
Priority: optional
Installed-Size: $size
Description: customer journeys inside PostgreSQL 15
 journey runs marketing and CRM automation flows inside PostgreSQL: audience tables whose
 triggers enroll contacts, flows defined as jsonb, a background worker that advances due
 steps, and an outbox relays send from. Add journey to shared_preload_libraries, restart,
 then CREATE EXTENSION journey.
 .
 journey-relay sends the outbox (SMTP, an SMS/WhatsApp gateway, signed webhooks) and records
 delivery callbacks; edit /etc/journey-relay/journey-relay.toml, then
 systemctl enable --now journey-relay.
CONTROL
out=target/${name}_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$stage" "$out" >/dev/null
echo "$out"
