#!/usr/bin/env bash
# Frequent local backups: one pg_dump (custom format) per database into BACKUP_DIR, keeping
# the newest BACKUP_KEEP dumps of each. Meant to run every few minutes (the Kubernetes
# CronJob runs it every 15); ship-daily.sh sends the newest of them off-site once a day.
#
# Usage: backup.sh --all | DATABASE...
#   --all       every database that accepts connections, except templates and "postgres"
# Environment:
#   BACKUP_DIR   where dumps go (required); one folder per database
#   BACKUP_KEEP  dumps kept per database (default 96: a day at one every 15 minutes)
#   PGHOST, PGPORT, PGUSER, PGPASSWORD, ...  the connection, as for every PostgreSQL tool
#
# A dump appears under its final name only once pg_dump finished and pg_restore could read
# its table of contents, with a .sha256 beside it; a crash leaves only a hidden .partial file.
set -euo pipefail

usage() { sed -n '/^# Usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
log() { printf 'backup: %s\n' "$*" >&2; }

[[ -n "${BACKUP_DIR:-}" ]] || { log "BACKUP_DIR is not set"; exit 2; }
keep="${BACKUP_KEEP:-96}"
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || { log "BACKUP_KEEP must be a positive whole number, got '$keep'"; exit 2; }
(($# > 0)) || usage

databases=()
if [[ "$1" == "--all" ]]; then
  (($# == 1)) || usage
  mapfile -t databases < <(psql -X -A -t -v ON_ERROR_STOP=1 --dbname postgres -c \
    "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' ORDER BY 1")
  ((${#databases[@]} > 0)) || { log "no database to back up"; exit 1; }
else
  [[ "$1" != -* ]] || usage
  databases=("$@")
fi

mkdir -p "$BACKUP_DIR"
# One backup run at a time, and ship-daily.sh never bundles while a run prunes.
exec 9>"$BACKUP_DIR/.lock"
flock --wait 600 9 || { log "another backup or shipment holds $BACKUP_DIR/.lock"; exit 1; }

failed=0
for db in "${databases[@]}"; do
  if [[ ! "$db" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]]; then
    log "skipping '$db': name not usable as a folder"
    failed=1
    continue
  fi
  dir="$BACKUP_DIR/$db"
  mkdir -p "$dir"
  stamp="$(date -u +%Y%m%dT%H%M%S.%3NZ)"
  name="${db}_${stamp}.dump"
  partial="$dir/.${name}.partial"

  if pg_dump --format=custom --compress=6 --file="$partial" --dbname="$db" \
    && pg_restore --list "$partial" >/dev/null; then
    sum="$(sha256sum <"$partial")"
    printf '%s  %s\n' "${sum%% *}" "$name" >"$dir/$name.sha256"
    mv "$partial" "$dir/$name"
    log "$db -> $dir/$name ($(stat -c %s "$dir/$name") bytes)"
  else
    rm -f "$partial"
    log "$db: pg_dump failed"
    failed=1
    continue
  fi

  # Names sort by time; drop all but the newest $keep.
  mapfile -t old < <(find "$dir" -maxdepth 1 -name "${db}_*.dump" -printf '%f\n' | sort | head -n "-$keep")
  for f in "${old[@]}"; do
    rm -f "$dir/$f" "$dir/$f.sha256"
    log "$db: pruned $f"
  done
done

exit "$failed"
