#!/usr/bin/env bash
# Restores one database from a dump made by backup.sh or from a daily bundle made by
# ship-daily.sh, after checking its SHA-256. The restore runs in a single transaction: it
# either fully succeeds or leaves the target as it was.
#
# Usage: restore.sh [--list] [--database NAME] [--owner ROLE] [--clean] ARCHIVE [TARGET]
#   ARCHIVE          a .dump (its .sha256 beside it is checked when present) or a .tar.gz bundle
#   TARGET           database name or postgres:// URL to restore into; it must exist
#   --list           show what ARCHIVE holds and exit
#   --database NAME  which database of a bundle to restore (needed when it holds several)
#   --owner ROLE     create the objects as ROLE (e.g. the app's role when connected as postgres)
#   --clean          drop the target's existing objects first (to restore over live data)
# Environment: PGHOST, PGPORT, PGUSER, PGPASSWORD, ... as for every PostgreSQL tool.
#
# Owners and grants of the source are not restored: objects belong to --owner, or else to the
# user that connects, so a dump restores into any database on any server.
set -euo pipefail

log() { printf 'restore: %s\n' "$*" >&2; }
usage() { sed -n '/^# Usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

list=0 clean=0 source_db="" owner=""
args=()
while (($# > 0)); do
  case "$1" in
    --list) list=1 ;;
    --clean) clean=1 ;;
    --database) (($# > 1)) || usage; source_db="$2"; shift ;;
    --owner) (($# > 1)) || usage; owner="$2"; shift ;;
    -*) usage ;;
    *) args+=("$1") ;;
  esac
  shift
done
((${#args[@]} >= 1 && ${#args[@]} <= 2)) || usage
archive="${args[0]}"
target="${args[1]:-}"
((list)) || [[ -n "$target" ]] || usage
[[ -f "$archive" ]] || { log "no such file: $archive"; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/restore.XXXXXX")"
trap 'rm -rf "$work"' EXIT

case "$archive" in
  *.tar.gz | *.tgz)
    tar -xzf "$archive" -C "$work"
    [[ -f "$work/SHA256SUMS" ]] || { log "$archive is not a Valerix bundle (no SHA256SUMS)"; exit 1; }
    (cd "$work" && sha256sum --check --quiet SHA256SUMS) || { log "$archive: checksum mismatch"; exit 1; }
    mapfile -t dumps < <(sed 's/^[0-9a-f]*  //' "$work/SHA256SUMS")
    if ((list)); then
      cat "$work/BUNDLE" 2>/dev/null || true
      printf '%s\n' "${dumps[@]}"
      exit 0
    fi
    if [[ -z "$source_db" ]]; then
      ((${#dumps[@]} == 1)) || { log "the bundle holds several databases; choose one with --database: ${dumps[*]%%/*}"; exit 2; }
      dump="$work/${dumps[0]}"
    else
      dump=""
      for d in "${dumps[@]}"; do
        [[ "${d%%/*}" == "$source_db" ]] && dump="$work/$d"
      done
      [[ -n "$dump" ]] || { log "the bundle holds no database '$source_db': ${dumps[*]%%/*}"; exit 2; }
    fi
    ;;
  *.dump)
    if [[ -f "$archive.sha256" ]]; then
      (cd "$(dirname "$archive")" && sha256sum --check --quiet "$(basename "$archive").sha256") \
        || { log "$archive does not match $archive.sha256"; exit 1; }
    else
      log "warning: no $archive.sha256 beside the dump; restoring it unchecked"
    fi
    if ((list)); then
      pg_restore --list "$archive"
      exit 0
    fi
    dump="$archive"
    ;;
  *)
    log "ARCHIVE must be a .dump or a .tar.gz bundle: $archive"
    exit 2
    ;;
esac

options=(--exit-on-error --single-transaction --no-owner --no-privileges)
((clean)) && options+=(--clean --if-exists)
[[ -z "$owner" ]] || options+=(--role="$owner")
shown="$target"
# Never print a password from a connection URL.
[[ "$shown" == *://*@* ]] && shown="${shown%%://*}://${shown#*@}"
log "restoring $(basename "$dump") into $shown"
pg_restore "${options[@]}" --dbname="$target" "$dump"
tables="$(psql -X -A -t -v ON_ERROR_STOP=1 --dbname="$target" -c \
  "SELECT count(*) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')")"
log "done: $tables tables in the target"
