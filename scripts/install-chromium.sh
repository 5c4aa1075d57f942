#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium (package chromium) at /usr/bin/chromium, the browser the
# dashboard test drives through playwright-core. Nothing is downloaded outside the system's package manager.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null
  $SUDO apt-get install -y --no-install-recommends chromium >/dev/null
}
[ -x /usr/bin/chromium ]
