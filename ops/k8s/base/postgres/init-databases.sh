#!/usr/bin/env bash
# Creates one database, owned by a login role of the same name, per Valerix role.
#
# The PostgreSQL image runs this from /docker-entrypoint-initdb.d once, when the data
# directory is new. It is safe to run again by hand (existing roles and databases are left
# alone), e.g. to add a database to a running server.
#
# Which databases: VALERIX_DATABASES (space-separated names) or, when unset, one per file
# named db-<name> in VALERIX_DB_SECRETS_DIR (default /run/secrets/postgres; Kubernetes mounts
# the valerix-postgres Secret there). Each role's password: the content of db-<name> in that
# folder or, failing that, VALERIX_DB_PASSWORD (local compose only).
# Connection: psql's usual PG* variables; POSTGRES_USER as the image sets it.
set -euo pipefail

secrets_dir="${VALERIX_DB_SECRETS_DIR:-/run/secrets/postgres}"

names=()
if [[ -n "${VALERIX_DATABASES:-}" ]]; then
  read -r -a names <<<"$VALERIX_DATABASES"
else
  shopt -s nullglob
  for file in "$secrets_dir"/db-*; do
    names+=("${file##*/db-}")
  done
fi
if ((${#names[@]} == 0)); then
  echo "init-databases: no database named (set VALERIX_DATABASES or add db-<name> files to $secrets_dir)" >&2
  exit 1
fi

for name in "${names[@]}"; do
  # Names go into SQL through format(%I), but keep them to plain identifiers anyway so a
  # stray file name cannot create a database nobody can type.
  if [[ ! "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
    echo "init-databases: '$name' is not a plain lower-case identifier" >&2
    exit 1
  fi
  if [[ -f "$secrets_dir/db-$name" ]]; then
    password="$(<"$secrets_dir/db-$name")"
  elif [[ -n "${VALERIX_DB_PASSWORD:-}" ]]; then
    password="$VALERIX_DB_PASSWORD"
  else
    echo "init-databases: no password for '$name' ($secrets_dir/db-$name or VALERIX_DB_PASSWORD)" >&2
    exit 1
  fi

  # The password travels in the environment (psql's \getenv), never on a command line.
  VALERIX_INIT_PASSWORD="$password" psql -v ON_ERROR_STOP=1 -X -q \
    ${POSTGRES_USER:+--username "$POSTGRES_USER"} --dbname postgres \
    --set=name="$name" <<'SQL'
\getenv password VALERIX_INIT_PASSWORD
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
  echo "init-databases: database $name ready"
done
