#!/usr/bin/env bash
# Ships one bundle a day off-site, in a single HTTP call: the newest dump of every database in
# BACKUP_DIR (made by backup.sh), a SHA256SUMS file and a short BUNDLE note, as one .tar.gz.
#
# The off-site service accepts one call per day, so this script never makes a second call for
# the same day on its own:
# - it records the attempt in BACKUP_DIR/.shipped/<day> before calling;
# - after a success, later runs that day do nothing and exit 0;
# - if the call failed, or its answer was lost, later runs refuse (exit 3): the service may
#   have counted it. Check with the service, then run again with --force.
# - only when curl could not even connect (nothing was sent) is the record removed, so the
#   next run may try again.
#
# Usage: ship-daily.sh [--force] [--dry-run] [--output FILE]
#   --force        call even though today's record says a call was already made
#   --dry-run      build and check the bundle, make no call, record nothing
#   --output FILE  also keep a copy of the bundle at FILE
# Environment:
#   BACKUP_DIR             the folder backup.sh writes (required)
#   BACKUP_UPLOAD_URL      where the bundle goes (required unless --dry-run)
#   BACKUP_UPLOAD_METHOD   PUT (default) or POST; the body is the bundle itself
#   BACKUP_UPLOAD_TOKEN    optional; sent as "Authorization: Bearer ..."
#   BACKUP_SHIP_DAY        the day to ship for, YYYY-MM-DD (default: today, UTC)
set -euo pipefail

log() { printf 'ship-daily: %s\n' "$*" >&2; }
usage() { sed -n '/^# Usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

force=0 dry_run=0 output=""
while (($# > 0)); do
  case "$1" in
    --force) force=1 ;;
    --dry-run) dry_run=1 ;;
    --output) (($# > 1)) || usage; output="$2"; shift ;;
    *) usage ;;
  esac
  shift
done

[[ -n "${BACKUP_DIR:-}" && -d "$BACKUP_DIR" ]] || { log "BACKUP_DIR is not set or not a folder"; exit 2; }
method="${BACKUP_UPLOAD_METHOD:-PUT}"
[[ "$method" == PUT || "$method" == POST ]] || { log "BACKUP_UPLOAD_METHOD must be PUT or POST"; exit 2; }
if ((!dry_run)) && [[ -z "${BACKUP_UPLOAD_URL:-}" ]]; then
  log "BACKUP_UPLOAD_URL is not set"
  exit 2
fi
day="${BACKUP_SHIP_DAY:-$(date -u +%F)}"
[[ "$day" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || { log "BACKUP_SHIP_DAY must look like 2024-12-31"; exit 2; }

# backup.sh prunes under this lock, and two shipments must not both pass the check below:
# hold it from here to the end.
exec 9>"$BACKUP_DIR/.lock"
flock --wait 900 9 || { log "a backup run holds $BACKUP_DIR/.lock"; exit 1; }

record_dir="$BACKUP_DIR/.shipped"
record="$record_dir/$day"
if ((!dry_run)) && [[ -f "$record" ]]; then
  if [[ "$(head -c 2 "$record")" == "ok" ]]; then
    log "already shipped for $day: $(<"$record")"
    exit 0
  fi
  if ((!force)); then
    log "a call for $day was already made and its outcome is unknown: $(<"$record")"
    log "the service may have counted it; confirm with it, then rerun with --force"
    exit 3
  fi
  log "--force: calling again for $day despite: $(<"$record")"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ship-daily.XXXXXX")"
trap 'rm -rf "$work"' EXIT

files=()
for dir in "$BACKUP_DIR"/*/; do
  db="$(basename "$dir")"
  newest="$(find "$dir" -maxdepth 1 -name "${db}_*.dump" -printf '%f\n' | sort | tail -n 1)"
  [[ -n "$newest" ]] || continue
  # A dump that no longer matches its checksum must not be the one copy kept off-site.
  if ! (cd "$dir" && sha256sum --check --status "$newest.sha256"); then
    log "$db/$newest does not match $newest.sha256; not shipping a damaged dump"
    exit 1
  fi
  files+=("$db/$newest")
done
((${#files[@]} > 0)) || { log "no dump in $BACKUP_DIR to ship"; exit 1; }

(cd "$BACKUP_DIR" && sha256sum "${files[@]}") >"$work/SHA256SUMS"
printf 'valerix backup bundle\nday: %s\ncreated: %s\n' "$day" "$(date -u +%FT%TZ)" >"$work/BUNDLE"
bundle="$work/valerix-backup-$day.tar.gz"
tar -czf "$bundle" -C "$work" BUNDLE SHA256SUMS -C "$BACKUP_DIR" "${files[@]}"
bundle_sum="$(sha256sum <"$bundle")"
bundle_sum="${bundle_sum%% *}"
log "bundle for $day: ${files[*]} ($(stat -c %s "$bundle") bytes, sha256 $bundle_sum)"
if [[ -n "$output" ]]; then
  cp "$bundle" "$output"
fi

if ((dry_run)); then
  log "--dry-run: no call made"
  exit 0
fi

mkdir -p "$record_dir"
printf 'attempted %s sha256 %s\n' "$(date -u +%FT%TZ)" "$bundle_sum" >"$record"
sync "$record" 2>/dev/null || true

# The token goes through a header file, never onto curl's command line.
headers="$work/headers"
: >"$headers"
chmod 600 "$headers"
printf 'Content-Type: application/gzip\nX-Backup-Day: %s\nX-Backup-Sha256: %s\n' "$day" "$bundle_sum" >>"$headers"
if [[ -n "${BACKUP_UPLOAD_TOKEN:-}" ]]; then
  printf 'Authorization: Bearer %s\n' "$BACKUP_UPLOAD_TOKEN" >>"$headers"
fi

set +e
status="$(curl --silent --show-error --fail-with-body --retry 0 \
  --connect-timeout 30 --max-time 1800 \
  --request "$method" --header "@$headers" --upload-file "$bundle" \
  --output "$work/response" --write-out '%{http_code}' \
  "$BACKUP_UPLOAD_URL")"
rc=$?
set -e

if ((rc == 0)); then
  printf 'ok %s http %s sha256 %s\n' "$(date -u +%FT%TZ)" "$status" "$bundle_sum" >"$record"
  log "shipped for $day (HTTP $status)"
  exit 0
fi
if ((rc == 6 || rc == 7)); then
  # Name not resolved or connection refused: the service never saw a request.
  rm -f "$record"
  log "could not reach the backup service (curl exit $rc); no call was made, run again later"
  exit 1
fi
printf 'unknown %s curl-exit %s http %s sha256 %s\n' "$(date -u +%FT%TZ)" "$rc" "${status:-none}" "$bundle_sum" >"$record"
log "the call for $day failed (curl exit $rc, HTTP ${status:-none}): $(head -c 500 "$work/response" 2>/dev/null || true)"
exit 3
