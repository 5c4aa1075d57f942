#!/usr/bin/env bash
# Installs nngcat (Debian package nng-utils), the reference nng peer the interop tests talk to.
set -euo pipefail
command -v nngcat >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends nng-utils >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null
  $SUDO apt-get install -y --no-install-recommends nng-utils >/dev/null
}
command -v nngcat >/dev/null
