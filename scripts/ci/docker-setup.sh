#!/usr/bin/env bash
# CI (and a developer's first run): a Docker engine and the registry-free base images that
# the image test builds on. One-shot and idempotent; each step is skipped when already done.
#   1. Debian's docker.io when dockerd is missing (~16 s)
#   2. dockerd with loopback-only networking (no bridge, no iptables; containers use the host
#      network) when `docker info` does not answer
#   3. base images made from this machine's node (no registry is reachable here):
#      local/snowtap-node:<node version> (runtime) and local/snowtap-node-build:<version> (npm + sh)
#   4. the project image (scripts/ci/docker-build.sh) for a warm cache; SKIP_PROJECT_IMAGE=1 leaves
#      it to test/interop/deploy-docker.test.ts, which builds it anyway (so a build error is a test failure)
# testcontainers then needs TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
# (test/support/docker.ts sets both unless they are set already).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s)
if ! command -v dockerd >/dev/null; then
  echo "docker-setup: installing docker.io"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  STORAGE="${STORAGE:-overlay2}" "$HERE/dockerd-start.sh"
fi
NODE_VERSION="$(node --version)"
for kind in runtime build; do
  tag="local/snowtap-node:$NODE_VERSION"
  [ "$kind" = build ] && tag="local/snowtap-node-build:$NODE_VERSION"
  docker image inspect "$tag" >/dev/null 2>&1 || "$HERE/make-node-image.sh" "$kind" "$tag"
done
if [ "${SKIP_PROJECT_IMAGE:-0}" != 1 ]; then
  "$HERE/docker-build.sh" >/dev/null
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^local/snowtap' || true
echo "docker-setup: done in $(($(date +%s) - t0)) s"
