#!/usr/bin/env bash
# Start a Docker engine (Debian docker.io) in the background with loopback-only
# networking (no bridge, no iptables), wait until it answers, print its PID.
# Called by docker-setup.sh when `docker info` does not answer; usable by hand too.
# Containers then run with --network host only (no bridge means no port mapping).
#   STORAGE=overlay2|fuse-overlayfs|vfs  (default overlay2)
#   DATA_ROOT=/var/lib/docker            LOG=/tmp/dockerd.log
#   EXTRA="..." extra dockerd flags (e.g. EXTRA="--iptables=true" to test)
# Stop it later with: kill "$(cat "${PIDFILE:-/run/dockerd-ci.pid}")"  (its own PID, nothing broader)
set -euo pipefail
STORAGE="${STORAGE:-overlay2}"
DATA_ROOT="${DATA_ROOT:-/var/lib/docker}"
LOG="${LOG:-/tmp/dockerd.log}"
PIDFILE="${PIDFILE:-/run/dockerd-ci.pid}"
NET_FLAGS="${NET_FLAGS:---iptables=false --ip6tables=false --bridge=none --ip-forward=false --ip-masq=false}"
command -v dockerd >/dev/null || { echo "dockerd missing: apt-get install -y docker.io" >&2; exit 1; }
t0=$(date +%s%N)
# shellcheck disable=SC2086
nohup dockerd --storage-driver="$STORAGE" --data-root="$DATA_ROOT" $NET_FLAGS ${EXTRA:-} \
  -H unix:///var/run/docker.sock --pidfile "$PIDFILE" >"$LOG" 2>&1 &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd ready (pid $(cat "$PIDFILE"), storage $STORAGE) in $(( ($(date +%s%N)-t0)/1000000 )) ms"
    exit 0
  fi
  sleep 0.25
done
echo "dockerd did not become ready; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1
