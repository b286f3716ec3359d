#!/usr/bin/env bash
# Builds the project image from the working tree on top of the local base images that
# docker-setup.sh makes (no registry here). Layers are cached: only a changed package-lock.json
# re-runs `npm ci`; a source change re-runs the TypeScript build only. Prints the image tag.
#   IMAGE=local/snowtap:dev  BASE=...  BUILD_BASE=...   (defaults below)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
NODE_VERSION="$(node --version)"
IMAGE="${IMAGE:-local/snowtap:dev}"
BASE="${BASE:-local/snowtap-node:$NODE_VERSION}"
BUILD_BASE="${BUILD_BASE:-local/snowtap-node-build:$NODE_VERSION}"
LOG="${LOG:-${TMPDIR:-/tmp}/snowtap-docker-build.log}"
# The legacy builder: Debian's engine ships without buildx; --network host because the
# engine runs without a bridge (npm inside the build reaches the registry through the host).
if ! DOCKER_BUILDKIT=0 docker build --force-rm --network host --build-arg "BASE=$BASE" \
  --build-arg "BUILD_BASE=$BUILD_BASE" -t "$IMAGE" "$ROOT" >"$LOG" 2>&1; then
  echo "docker build failed; last lines of $LOG:" >&2
  tail -40 "$LOG" >&2
  exit 1
fi
echo "$IMAGE"
