#!/usr/bin/env bash
# Installs Debian's PostgreSQL server (package postgresql), whose initdb and pg_ctl live in
# /usr/lib/postgresql/<version>/bin/: the PostgreSQL tests start their own throwaway cluster with them.
# The cluster the package creates (and the service it may start) is left alone: the tests never use it.
set -euo pipefail
have_binaries() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && return 0
  done
  return 1
}
have_binaries && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null
  $SUDO apt-get install -y --no-install-recommends postgresql >/dev/null
}
have_binaries
