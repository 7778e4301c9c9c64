#!/usr/bin/env bash
# Installs what the ops checks (tests/ops) run, on a Debian 12 machine, from Debian's own
# packages only; the npm side (kubernetes-models) comes with `npm ci`. Installs only what is
# missing, so a second run does nothing.
#   ShellCheck         lints every script under ops/
#   promtool           checks the Prometheus config and rules and runs their unit tests
#                      (Debian ships it in the prometheus package; the server is not started
#                      where policy-rc.d forbids it, and is not used)
#   pg_dump, pg_restore, psql   the backup-and-restore test, against the local PostgreSQL
#   curl, flock        ship-daily.sh
#   kubectl kustomize  renders the overlays; any kubectl since 1.14 has it. Debian's
#                      kubernetes-client (1.20) is installed only when no kubectl is present.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1; }

have shellcheck || missing+=(shellcheck)
have promtool || missing+=(prometheus)
{ have pg_dump && have pg_restore && have psql; } || missing+=(postgresql-client)
have curl || missing+=(curl)
have flock || missing+=(util-linux)
have sha256sum || missing+=(coreutils)
if ! { have kubectl && kubectl kustomize --help >/dev/null 2>&1; }; then
  missing+=(kubernetes-client)
fi

if ((${#missing[@]} > 0)); then
  echo "ci-setup: installing ${missing[*]}"
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "ci-setup: shellcheck $(shellcheck --version | sed -n 's/^version: //p')," \
  "$(promtool --version 2>&1 | head -n 1 | cut -d' ' -f1-3)," \
  "pg_dump $(pg_dump --version | awk '{print $3}')," \
  "kubectl kustomize $(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p')"
